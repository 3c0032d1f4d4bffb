"""Building each store adapter against the test services, with a prefix of its own."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import redis

from projections.couchbase import CouchbaseStore
from projections.memory import MemoryStore
from projections.ports import JobEventStore
from projections.redis import RedisStore
from projections.settings import CouchbaseSettings, RedisSettings
from tests.conftest import unique_prefix


def redis_store(url: str, prefix: str | None = None) -> RedisStore:
    store = RedisStore(RedisSettings(url=url, prefix=prefix or unique_prefix(":")))
    store.setup()
    return store


def couchbase_store(connstr: str, prefix: str | None = None) -> CouchbaseStore:
    store = CouchbaseStore(CouchbaseSettings(connstr=connstr, prefix=prefix or unique_prefix("::")))
    store.setup()
    return store


def delete_redis_prefix(url: str, prefix: str) -> None:
    client = redis.Redis.from_url(url)
    keys = list(client.scan_iter(match=prefix + "*", count=5000))
    for start in range(0, len(keys), 5000):
        client.unlink(*keys[start : start + 5000])


@contextmanager
def store_of(kind: str, redis_url: str, couchbase_connstr: str) -> Iterator[JobEventStore]:
    if kind == "memory":
        yield MemoryStore()
    elif kind == "redis":
        store = redis_store(redis_url)
        try:
            yield store
        finally:
            delete_redis_prefix(redis_url, store.settings.prefix)
    else:
        cb = couchbase_store(couchbase_connstr)
        try:
            yield cb
        finally:
            for generation in range(1, 4):
                cb.drop(generation)
