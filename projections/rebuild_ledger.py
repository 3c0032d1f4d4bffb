"""Where a rebuild records itself in the store it rebuilds: `<prefix>rebuild`.

The marker names the generation being built (and the one readers used when it started), who
builds it and when it last showed signs of life. It is written before the first batch and removed
after the old generation is dropped, so a rebuild killed at any point leaves a marker behind: the
next rebuild (or `jobtrail rebuild STORE --status`) finds the orphan, and resumes it from the
offsets the store recorded for it, or drops it.

The port (`ProjectionStore`) knows nothing of rebuilds; this module holds one small adapter per
store technology, over the store's own client.
"""

from __future__ import annotations

import json
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass
from typing import Any, Protocol, TypeVar

from projections.ports import ProjectionStore, StoreUnavailableError

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class RebuildMarker:
    generation: int  # being built
    old_generation: int  # what readers used when the rebuild started
    owner: str  # "host:pid"
    started_at: float  # unix time
    heartbeat_at: float  # unix time, refreshed while replaying

    def to_json(self) -> str:
        return json.dumps(asdict(self))

    @classmethod
    def from_json(cls, raw: str | bytes) -> RebuildMarker:
        data = json.loads(raw)
        return cls(**{name: data[name] for name in cls.__slots__})


def this_owner() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def owner_alive(marker: RebuildMarker, *, stale_after_s: float, now: float) -> bool:
    """Whether the rebuild that wrote `marker` may still be running: on this host the process
    answers; elsewhere its heartbeat is recent."""
    host, _, pid = marker.owner.rpartition(":")
    if host == socket.gethostname() and pid.isdigit():
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True  # someone else's live process
        return True
    return now - marker.heartbeat_at < stale_after_s


class RebuildLedger(Protocol):
    def read(self) -> RebuildMarker | None: ...

    def write(self, marker: RebuildMarker) -> None: ...

    def clear(self) -> None: ...

    def last_generation(self) -> int:
        """The highest generation number the store ever handed out (0: none)."""
        ...


def ledger_for(store: ProjectionStore[Any]) -> RebuildLedger:
    from projections.analytics.redis_store import AnalyticsRedisStore
    from projections.memory import MemoryStore
    from projections.redis import RedisStore

    if isinstance(store, RedisStore):
        return _RedisLedger(store)
    if isinstance(store, AnalyticsRedisStore):
        return _RedisLedger(store.generations)
    if isinstance(store, MemoryStore):
        return _MemoryLedger(store)
    from projections.couchbase import CouchbaseStore

    if isinstance(store, CouchbaseStore):
        return _CouchbaseLedger(store)
    raise TypeError(f"no rebuild ledger for {type(store).__name__}")


class _RedisLedger:
    def __init__(self, store: Any) -> None:
        self._store = store
        self._key = f"{store.settings.prefix}rebuild"
        self._counter = f"{store.settings.prefix}generations"

    def read(self) -> RebuildMarker | None:
        with _redis_guard():
            raw = self._store.client.get(self._key)
        return None if raw is None else RebuildMarker.from_json(raw)

    def write(self, marker: RebuildMarker) -> None:
        with _redis_guard():
            self._store.client.set(self._key, marker.to_json())

    def clear(self) -> None:
        with _redis_guard():
            self._store.client.delete(self._key)

    def last_generation(self) -> int:
        with _redis_guard():
            return int(self._store.client.get(self._counter) or 0)


@contextmanager
def _redis_guard() -> Iterator[None]:
    import redis

    try:
        yield
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        raise StoreUnavailableError(f"redis: {exc}") from exc
    except redis.exceptions.ResponseError as exc:  # OOM, READONLY, BUSY, LOADING
        raise StoreUnavailableError(f"redis: {exc}") from exc


class _CouchbaseLedger:
    def __init__(self, store: Any) -> None:
        self._store = store
        self._key = f"{store.settings.prefix}rebuild"
        self._counter = f"{store.settings.prefix}generations"

    def _get(self, key: str) -> dict[str, Any] | None:
        from couchbase.exceptions import DocumentNotFoundException

        def read() -> dict[str, Any] | None:
            try:
                content: dict[str, Any] = self._store.collection.get(key).content_as[dict]
            except DocumentNotFoundException:
                return None
            return content

        return _couchbase_guard(read)

    def read(self) -> RebuildMarker | None:
        doc = self._get(self._key)
        return None if doc is None else RebuildMarker.from_json(json.dumps(doc))

    def write(self, marker: RebuildMarker) -> None:
        _couchbase_guard(lambda: self._store.collection.upsert(self._key, asdict(marker)))

    def clear(self) -> None:
        from couchbase.exceptions import DocumentNotFoundException

        def remove() -> None:
            with suppress(DocumentNotFoundException):
                self._store.collection.remove(self._key)

        _couchbase_guard(remove)

    def last_generation(self) -> int:
        doc = self._get(self._counter)
        return 0 if doc is None else int(doc["last"])


def _couchbase_guard(call: Callable[[], T]) -> T:
    from couchbase.exceptions import CouchbaseException

    try:
        return call()
    except CouchbaseException as exc:
        raise StoreUnavailableError(f"couchbase: {type(exc).__name__}: {exc}") from exc


class _MemoryLedger:
    def __init__(self, store: Any) -> None:
        self._store = store

    def read(self) -> RebuildMarker | None:
        marker: RebuildMarker | None = getattr(self._store, "rebuild_marker", None)
        return marker

    def write(self, marker: RebuildMarker) -> None:
        self._store.rebuild_marker = marker

    def clear(self) -> None:
        self._store.rebuild_marker = None

    def last_generation(self) -> int:
        return max(self._store._generations, default=0)


def now() -> float:
    return time.time()
