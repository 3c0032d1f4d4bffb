"""Prometheus metrics of an embedder, labelled by model (a handful of values)."""

from __future__ import annotations

from dataclasses import dataclass

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge, Histogram


@dataclass(frozen=True, slots=True)
class EmbedderMetrics:
    texts: Counter
    cache_hits: Counter
    rejected: Counter
    provider_errors: Counter
    batch_size: Histogram
    latency: Histogram
    circuit_open: Gauge

    def zeroed(self, model: str) -> EmbedderMetrics:
        """Every series of `model` and of the known DLQ reasons at 0 from the start: a panel
        over a rate of errors or rejections reads 0, not "no data", until the first one."""
        for counter in (self.texts, self.cache_hits, self.provider_errors):
            counter.labels(model)
        self.circuit_open.labels(model).set(0)
        for reason in ("empty_text", "provider_refused"):
            self.rejected.labels(reason)
        return self

    @classmethod
    def create(cls, registry: CollectorRegistry = REGISTRY) -> EmbedderMetrics:
        label = ["model"]
        return cls(
            texts=Counter(
                "jobtrail_embed_texts", "Texts embedded (a rate: texts/s)", label, registry=registry
            ),
            cache_hits=Counter(
                "jobtrail_embed_cache_hits",
                "Requests skipped: the fingerprint already has a vector for the model",
                label,
                registry=registry,
            ),
            rejected=Counter(
                "jobtrail_embed_rejected", "Requests sent to the DLQ", ["reason"], registry=registry
            ),
            provider_errors=Counter(
                "jobtrail_embed_provider_errors",
                "Batches the provider failed (kept, retried)",
                label,
                registry=registry,
            ),
            batch_size=Histogram(
                "jobtrail_embed_batch_size",
                "Texts per provider call",
                buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512),
                registry=registry,
            ),
            latency=Histogram(
                "jobtrail_embed_latency_seconds",
                "Provider call duration per batch",
                label,
                buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
                registry=registry,
            ),
            circuit_open=Gauge(
                "jobtrail_embed_circuit_open",
                "1 while the circuit breaker pauses consumption",
                label,
                registry=registry,
            ),
        )
