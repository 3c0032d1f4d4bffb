"""Prometheus metrics of the stream processors. Labels are topics, reasons and outcomes: bounded
vocabularies, never a job id or a fingerprint."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True, slots=True)
class ProcessorMetrics:
    events_in: Counter
    events_out: Counter
    dead_letters: Counter
    dedup: Counter
    duplicates: Counter
    truncated_letters: Counter
    late_edges: Counter
    expired_attempts: Counter
    rewinds: Counter
    latency: Histogram
    lag: Gauge
    watermark: Gauge

    @classmethod
    def create(cls, registry: CollectorRegistry = REGISTRY) -> ProcessorMetrics:
        return cls._create(registry).zeroed()

    def zeroed(self) -> ProcessorMetrics:
        """Every series of a known label at 0 from the start: a panel or an alert over a rate of
        dead letters or late edges reads 0, not "no data", until the first one happens."""
        from processors.validation import REASONS

        for reason in REASONS:
            self.dead_letters.labels(reason)
        for handling in ("counted", "dropped", "early", "forgotten"):
            self.late_edges.labels(handling)
        for dimension in ("worker", "job_name"):
            self.expired_attempts.labels(dimension)
        for result in ("new", "seen"):
            self.dedup.labels(result)
        return self

    @classmethod
    def _create(cls, registry: CollectorRegistry) -> ProcessorMetrics:
        return cls(
            events_in=Counter(
                "jobtrail_processor_events_in", "Records consumed", ["topic"], registry=registry
            ),
            events_out=Counter(
                "jobtrail_processor_events_out", "Records produced", ["topic"], registry=registry
            ),
            dead_letters=Counter(
                "jobtrail_processor_dead_letters",
                "Job events sent to the dead-letter topic",
                ["reason"],
                registry=registry,
            ),
            dedup=Counter(
                "jobtrail_processor_fingerprints",
                "Fingerprint sightings: new (a vectorize request went out) or seen",
                ["result"],
                registry=registry,
            ),
            duplicates=Counter(
                "jobtrail_processor_duplicate_events",
                "Job events dropped because their event_id was already counted (a re-send)",
                registry=registry,
            ),
            truncated_letters=Counter(
                "jobtrail_processor_dead_letters_truncated",
                "Dead letters sent with a truncated value (the whole one exceeds the size limit)",
                registry=registry,
            ),
            expired_attempts=Counter(
                "jobtrail_processor_expired_attempts",
                "Attempts that started an attempt-expiry ago and never ended: no longer counted"
                " as running, per dimension",
                ["dimension"],
                registry=registry,
            ),
            late_edges=Counter(
                "jobtrail_processor_late_attempt_edges",
                "Attempt edges counted out of event-time order: late (after the watermark passed"
                " them: counted, or dropped past the horizon), early (a horizon ahead of it), or"
                " forgotten (older than the ends a key remembers: a replay, not applied)",
                ["handling"],
                registry=registry,
            ),
            rewinds=Counter(
                "jobtrail_processor_rewinds",
                "Partitions rewound because the consumer skipped records (see the log)",
                ["topic"],
                registry=registry,
            ),
            latency=Histogram(
                "jobtrail_processor_latency_seconds",
                "From a job event's append to the log to the end of its processing",
                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
                registry=registry,
            ),
            lag=Gauge(
                "jobtrail_processor_consumer_lag",
                "Records not yet processed, over the partitions this worker owns",
                ["topic"],
                registry=registry,
            ),
            watermark=Gauge(
                "jobtrail_processor_watermark_seconds",
                "Event time up to which attempt outcomes are released (seconds since the epoch)",
                registry=registry,
            ),
        )
