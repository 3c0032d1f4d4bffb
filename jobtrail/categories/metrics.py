"""Per-category counts for Prometheus, read from the read model at scrape time (never counters a
consumer bumps: a replay rebuilds the read model, it does not double the figures)."""

from __future__ import annotations

from collections.abc import Iterator

import structlog
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from jobtrail.categories.service import CategoryService

log = structlog.get_logger("jobtrail.categories.metrics")


class CategoryCollector(Collector):
    def __init__(self, service: CategoryService) -> None:
        self.service = service

    def describe(self) -> Iterator[GaugeMetricFamily]:
        # Registration describes a collector; without this it would collect, which reads Redis
        # and builds the classifier (a model load) before the server even listens.
        yield from self._families()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        occurrences, fingerprints = self._families()
        try:
            totals = self.service.view().totals
        except Exception as exc:  # Redis down, a bad first file: no samples, the reason logged
            log.warning("category metrics unavailable", error=str(exc))
            totals = {}
        for name, total in totals.items():
            occurrences.add_metric([name], total.occurrences)
            fingerprints.add_metric([name], total.fingerprints)
        yield occurrences
        yield fingerprints

    @staticmethod
    def _families() -> tuple[GaugeMetricFamily, GaugeMetricFamily]:
        occurrences = GaugeMetricFamily(
            "jobtrail_category_occurrences",
            "Occurrences of the errors in each category (uncategorized, not_embedded included)",
            labels=["category"],
        )
        fingerprints = GaugeMetricFamily(
            "jobtrail_category_fingerprints", "Distinct errors in each category",
            labels=["category"],
        )  # fmt: skip
        return occurrences, fingerprints
