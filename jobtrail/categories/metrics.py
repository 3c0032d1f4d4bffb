"""Per-category counts for Prometheus, read from the read model at scrape time (never counters a
consumer bumps: a replay rebuilds the read model, it does not double the figures)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from jobtrail.categories.service import CategoryService


class CategoryCollector(Collector):
    def __init__(self, service: CategoryService) -> None:
        self.service = service

    def collect(self) -> Iterator[GaugeMetricFamily]:
        occurrences = GaugeMetricFamily(
            "jobtrail_category_occurrences",
            "Occurrences of the errors in each category (uncategorized, not_embedded included)",
            labels=["category"],
        )
        fingerprints = GaugeMetricFamily(
            "jobtrail_category_fingerprints", "Distinct errors in each category",
            labels=["category"],
        )  # fmt: skip
        for name, totals in self.service.view().totals.items():
            occurrences.add_metric([name], totals.occurrences)
            fingerprints.add_metric([name], totals.fingerprints)
        yield occurrences
        yield fingerprints
