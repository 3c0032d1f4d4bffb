"""Projections by name: each read model's store with the source that feeds it. The adapters are
imported lazily (the couchbase SDK is an optional extra)."""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from jobtrail.errors import ConfigurationError
from projections.ports import JobEventStore, ProjectionStore
from projections.sources import JobEventSource, RecordSource, analytics_source, couchbase_source
from streams.settings import KafkaSettings


class StoreKind(StrEnum):
    REDIS = "redis"
    COUCHBASE = "couchbase"
    ANALYTICS = "analytics"


# Prometheus port of each projection's consumer (infra/prometheus/prometheus.yml scrapes them).
METRICS_PORTS = {StoreKind.REDIS: 8002, StoreKind.COUCHBASE: 8003, StoreKind.ANALYTICS: 8005}


@dataclass(frozen=True, slots=True)
class Projection:
    store: ProjectionStore[Any]
    source: RecordSource[Any]


def open_projection(kind: StoreKind, kafka: KafkaSettings) -> Projection:
    if kind is StoreKind.ANALYTICS:
        from projections.analytics.redis_store import AnalyticsRedisStore

        return Projection(AnalyticsRedisStore(), analytics_source(kafka))
    if kind is StoreKind.COUCHBASE:  # job documents, and error documents with their vectors
        return Projection(open_store(kind), couchbase_source(kafka))
    return Projection(open_store(kind), JobEventSource(kafka))


def open_store(kind: StoreKind) -> JobEventStore:
    """The job read model's store of `kind` (redis or couchbase)."""
    if kind is StoreKind.REDIS:
        from projections.redis import RedisStore

        return RedisStore()
    if kind is StoreKind.ANALYTICS:
        raise ConfigurationError("the analytics model is not a job read model")
    try:
        from projections.couchbase import CouchbaseStore
    except ImportError as exc:
        raise ConfigurationError(
            "the Couchbase projection needs the couchbase SDK: pip install 'jobtrail[couchbase]'"
        ) from exc
    return CouchbaseStore()
