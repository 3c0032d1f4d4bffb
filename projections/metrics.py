"""Prometheus metrics of a projector, labelled by projection (never by job or partition id)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True, slots=True)
class ProjectorMetrics:
    applied: Counter
    duplicates: Counter
    undecodable: Counter
    rejected: Counter
    store_errors: Counter
    store_faults: Counter
    repositions: Counter
    apply_seconds: Histogram
    batch_size: Histogram
    lag: Gauge
    generation: Gauge

    def zeroed(self, projection: str) -> ProjectorMetrics:
        """The projection's counters at 0 from the start: a panel over a rate of store errors or
        undecodable records reads 0, not "no data", until the first one."""
        for counter in (self.applied, self.duplicates, self.undecodable, self.store_errors,
                        self.store_faults):  # fmt: skip
            counter.labels(projection)
        return self

    @classmethod
    def create(cls, registry: CollectorRegistry = REGISTRY) -> ProjectorMetrics:
        label = ["projection"]
        return cls(
            applied=Counter(
                "jobtrail_projection_events_applied", "Events applied to the read model",
                label, registry=registry,
            ),
            duplicates=Counter(
                "jobtrail_projection_duplicates_skipped",
                "Redelivered or replayed events skipped by the offset guard", label,
                registry=registry,
            ),
            undecodable=Counter(
                "jobtrail_projection_undecodable", "Records skipped because they do not decode",
                label, registry=registry,
            ),
            rejected=Counter(
                "jobtrail_projection_rejected",
                "Events skipped because they break the contract (processors.validation)",
                [*label, "reason"], registry=registry,
            ),
            store_errors=Counter(
                "jobtrail_projection_store_errors",
                "Batches that failed because the store did not answer or refused (retried)",
                label, registry=registry,
            ),
            store_faults=Counter(
                "jobtrail_projection_store_faults",
                "Batches the store refused with an error a wait will not fix (retried; alert)",
                label, registry=registry,
            ),
            repositions=Counter(
                "jobtrail_projection_repositions",
                "Times the projector re-read its positions from the store, by cause"
                " (outage, behind: the store lost writes, generation: a rebuild switched)",
                [*label, "cause"], registry=registry,
            ),
            apply_seconds=Histogram(
                "jobtrail_projection_apply_seconds", "Time to apply one batch to the store",
                label, registry=registry,
                buckets=(0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
            ),
            batch_size=Histogram(
                "jobtrail_projection_batch_size", "Records per applied batch", label,
                registry=registry, buckets=(1, 10, 50, 100, 250, 500, 1000, 2000, 5000),
            ),
            lag=Gauge(
                "jobtrail_projection_lag", "Records in the log not yet applied", label,
                registry=registry,
            ),
            generation=Gauge(
                "jobtrail_projection_generation", "Generation the projector writes", label,
                registry=registry,
            ),
        )  # fmt: skip
