"""Store adapters by name, imported lazily (the couchbase SDK is an optional extra)."""

from __future__ import annotations

from enum import StrEnum

from jobtrail.errors import ConfigurationError
from projections.ports import ProjectionStore


class StoreKind(StrEnum):
    REDIS = "redis"
    COUCHBASE = "couchbase"


def open_store(kind: StoreKind) -> ProjectionStore:
    if kind is StoreKind.REDIS:
        from projections.redis import RedisStore

        return RedisStore()
    try:
        from projections.couchbase import CouchbaseStore
    except ImportError as exc:
        raise ConfigurationError(
            "the Couchbase projection needs the couchbase SDK: pip install 'jobtrail[couchbase]'"
        ) from exc
    return CouchbaseStore()
