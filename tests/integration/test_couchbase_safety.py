"""The Couchbase projection within Couchbase Server's limits, against a strict mock of the test's
own (tests/integration/own_couchbase.py): what Server refuses, the mock refuses, so a store that
would fail in production fails here. Also: documents refused for good are dead-lettered while the
batch goes on, an outage is retryable, and a store restored from a backup while the projector
runs is repositioned from, never skipped over."""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Sequence
from dataclasses import replace
from datetime import timedelta
from typing import Any, ClassVar

import pytest
from couchbase import subdocument as sd
from couchbase.auth import PasswordAuthenticator
from couchbase.cluster import Cluster
from couchbase.collection import Collection
from couchbase.exceptions import (
    CouchbaseException,
    InvalidArgumentException,
    InvalidValueException,
)
from couchbase.options import ClusterOptions, MutateInOptions
from prometheus_client import REGISTRY

import projections.couchbase as couchbase_module
from projections.couchbase import CouchbaseStore
from projections.couchbase_docs import Mutation
from projections.couchbase_limits import KEY_LIMIT
from projections.memory import MemoryStore
from projections.model import ReadModel
from projections.ports import BatchResult, Item, StoreBehindError, StoreUnavailableError
from projections.settings import CouchbaseSettings
from schemas.job_event import JobEvent, JobEventType
from streams.demo.workload import Workload, WorkloadConfig
from streams.settings import KafkaSettings
from tests.factories import positioned
from tests.integration.own_couchbase import OwnCouchbase, own_couchbase, strict_mock_classes
from tests.integration.test_projection_pipeline import produce, reference_fold
from tests.integration.test_redis_store_safety import projecting, wait_until
from tests.integration.test_store_contract import reference, with_resent_copies

__all__ = ["own_couchbase", "strict_mock_classes"]  # the fixtures, imported to be found

EVENTS = list(Workload(WorkloadConfig(jobs=300), seed=33).events())


def collection_of(server: OwnCouchbase) -> Collection:
    cluster = Cluster(
        server.connstr, ClusterOptions(PasswordAuthenticator("Administrator", "password"))
    )
    cluster.wait_until_ready(timedelta(seconds=20))
    return cluster.bucket("default").default_collection()


def open_store(server: OwnCouchbase, cls: type[CouchbaseStore] = CouchbaseStore) -> CouchbaseStore:
    store = cls(CouchbaseSettings(connstr=server.connstr, prefix="safety::", timeout_s=2.0))
    store.setup()
    return store


def without_names(model: ReadModel) -> ReadModel:
    model.names = {}  # Couchbase keeps no per-name aggregates
    return model


def apply_all(store: CouchbaseStore, items: Sequence[Item], size: int = 200) -> BatchResult:
    applied = duplicates = 0
    for start in range(0, len(items), size):
        result = store.apply_batch(items[start : start + size], store.current_generation())
        applied, duplicates = applied + result.applied, duplicates + result.duplicates
    return BatchResult(applied, duplicates)


def test_the_strict_mock_refuses_what_server_refuses(own_couchbase: OwnCouchbase) -> None:
    collection = collection_of(own_couchbase)
    key = "limits::" + uuid.uuid4().hex
    collection.upsert(key, {"a": 1})
    collection.mutate_in(key, [sd.upsert(f"f{i}", i) for i in range(16)])
    with pytest.raises(InvalidArgumentException):
        collection.mutate_in(key, [sd.upsert(f"f{i}", i) for i in range(17)])
    collection.upsert("k" * KEY_LIMIT, {"a": 1})
    with pytest.raises(InvalidArgumentException):
        collection.upsert("k" * (KEY_LIMIT - 1) + "é", {"a": 1})  # 251 bytes
    with pytest.raises(InvalidArgumentException):
        collection.upsert(key + "nan", {"progress": math.nan})  # json.dumps writes NaN
    with pytest.raises(InvalidValueException):
        collection.mutate_in(key, [sd.upsert("progress", math.inf)])
    with pytest.raises(CouchbaseException) as too_large:
        collection.mutate_in(key, [sd.upsert("blob", "x" * (20 * 1024 * 1024))])
    assert too_large.value.error_code == 104  # value_too_large


def long_ids(events: list[JobEvent]) -> list[JobEvent]:
    """Job ids whose keys pass Server's 250 bytes (multi-byte characters included)."""
    return [replace(e, job_id=e.job_id + "-" + "ß" * 150) for e in events]


class SplitStore(CouchbaseStore):
    spec_limit = 4  # forces updates across several mutate_in calls, behind their intent


def test_the_store_folds_within_servers_limits(own_couchbase: OwnCouchbase) -> None:
    items = positioned(long_ids(EVENTS))
    for cls in (CouchbaseStore, SplitStore):
        store = open_store(own_couchbase, cls)
        store.settings = CouchbaseSettings(
            connstr=own_couchbase.connstr, prefix=f"fold-{cls.__name__}::"
        )
        apply_all(store, items)
        assert store.snapshot(store.current_generation()) == without_names(reference(items))


def test_resent_event_ids_count_once_through_split_updates(own_couchbase: OwnCouchbase) -> None:
    resent = positioned(with_resent_copies(EVENTS, every=10))
    store = open_store(own_couchbase, SplitStore)
    result = apply_all(store, resent)
    assert result == BatchResult(len(EVENTS), len(resent) - len(EVENTS))
    assert store.snapshot(store.current_generation()) == without_names(reference(resent))


class CrashingStore(SplitStore):
    """Dies (once per job) after the first call of a split update: a crash between calls."""

    crashed: ClassVar[set[str]] = set()

    def _mutate_calls(self, key: str, calls: list[list[Mutation]], cas: int) -> None:
        if len(calls) > 1 and key not in self.crashed:
            self.crashed.add(key)
            self.collection.mutate_in(key, couchbase_module._specs(calls[0]),
                                      MutateInOptions(cas=cas))  # fmt: skip
            raise StoreUnavailableError("crashed between calls")
        super()._mutate_calls(key, calls, cas)


def test_an_update_interrupted_between_calls_is_finished_then_planned_again(
    own_couchbase: OwnCouchbase,
) -> None:
    items = positioned(EVENTS)
    store = open_store(own_couchbase, CrashingStore)
    generation = store.current_generation()
    start = 0
    while start < len(items):
        batch = items[start : start + 200]
        try:
            store.apply_batch(batch, generation)
            start += 200
        except StoreUnavailableError:
            continue  # the projector retries the same batch
    assert CrashingStore.crashed  # the crash happened, more than once
    assert store.snapshot(generation) == without_names(reference(items))


def poisoned(items: list[Item], at: int) -> list[Item]:
    """`items` with the event at index `at` carrying 21 MB of input: no document can hold it."""
    position, event = items[at]
    assert event is not None
    huge = replace(event, type=JobEventType.QUEUED, data="x" * (21 * 1024 * 1024))
    return [*items[:at], (position, huge), *items[at + 1 :]]


@pytest.mark.parametrize("check", ["client", "server"])
def test_a_document_refused_for_good_is_dead_lettered_and_the_batch_goes_on(
    own_couchbase: OwnCouchbase, check: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    if check == "server":  # without the store's own check: the mock (Server) refuses the write
        monkeypatch.setattr(couchbase_module, "_problem", lambda existing, plan: None)
    items: list[Item] = list(positioned(EVENTS))
    first = next(i for i, (_, e) in enumerate(items) if e is not None and e.type.value == "QUEUED")
    bad = poisoned(items, first)
    store = open_store(own_couchbase)
    before = dead_letters_metric("too_large")
    apply_all(store, bad)
    generation = store.current_generation()
    rest = items[:first] + items[first + 1 :]
    memory = MemoryStore()
    memory.apply_batch(rest, memory.current_generation(), log_starts=starts_of(rest))
    assert store.snapshot(generation) == without_names(memory.snapshot(1))
    letters = store.dead_letters(generation)["letters"]
    position, event = bad[first]
    assert event is not None
    assert list(letters.values()) == [
        {"source": position.source, "offset": position.offset, "job_id": event.job_id,
         "event_id": event.event_id, "reason": "too_large"}
    ]  # fmt: skip
    assert dead_letters_metric("too_large") == before + 1
    apply_all(store, bad)  # a replay records and counts nothing twice
    assert len(store.dead_letters(generation)["letters"]) == 1
    assert dead_letters_metric("too_large") == before + 1


def starts_of(items: Sequence[Item]) -> dict[str, int]:
    starts: dict[str, int] = {}
    for position, _ in items:
        starts.setdefault(position.source, position.offset)
    return starts


def dead_letters_metric(reason: str) -> float:
    value = REGISTRY.get_sample_value(
        "jobtrail_projection_dead_letters_total", {"store": "couchbase", "reason": reason}
    )
    return value or 0.0


def test_an_outage_is_retryable_and_an_emptied_store_is_behind(
    own_couchbase: OwnCouchbase,
) -> None:
    items = positioned(EVENTS)
    store = open_store(own_couchbase)
    generation = store.current_generation()
    store.apply_batch(items[:300], generation)
    own_couchbase.stop()
    with pytest.raises(StoreUnavailableError):
        store.apply_batch(items[300:600], generation)
    own_couchbase.start()  # on the same ports, empty: every write is lost
    fresh = open_store(own_couchbase)
    with pytest.raises(StoreBehindError):
        fresh.apply_batch(items[300:600], fresh.current_generation())
    apply_all(fresh, items)
    assert fresh.snapshot(fresh.current_generation()) == without_names(reference(items))


class LockedStore(CouchbaseStore):
    """Batches and a restore exclude each other: Couchbase has no atomic multi-document
    restore, so the test restores between two batches, as a failover to an older copy does."""

    def __init__(self, settings: CouchbaseSettings | None = None) -> None:
        super().__init__(settings)
        self.lock = threading.Lock()

    def apply_batch(self, *args: Any, **kwargs: Any) -> BatchResult:
        with self.lock:
            return super().apply_batch(*args, **kwargs)


def documents(store: CouchbaseStore) -> dict[str, dict[str, Any]]:
    """Every document of the current generation, by key (a backup)."""
    generation = store.current_generation()
    keys = store._index_keys(generation, "jobs") + store._index_keys(generation, "fps")
    keys += [
        store.key(generation, "job::" + j)
        for j in store._ids(store._index_keys(generation, "jobs"))
    ]
    keys += [
        store.key(generation, "fp::" + f) for f in store._ids(store._index_keys(generation, "fps"))
    ]
    keys += [store.key(generation, name) for name in ("offsets", "dead-letters")]
    found = {key: store._read(key)[0] for key in keys}
    return {key: doc for key, doc in found.items() if doc is not None}


def restore(store: LockedStore, backup: dict[str, dict[str, Any]]) -> None:
    with store.lock:
        for key in documents(store).keys() - backup.keys():
            store.collection.remove(key)
        for key, doc in backup.items():
            store.collection.upsert(key, doc)


def applied(store: CouchbaseStore) -> int:
    return sum(o + 1 for o in store.applied_offsets(store.current_generation()).values())


def test_a_restore_from_an_older_backup_while_the_projector_runs_reapplies_what_was_lost(
    kafka: KafkaSettings, own_couchbase: OwnCouchbase
) -> None:
    store = open_store(own_couchbase, LockedStore)
    assert isinstance(store, LockedStore)
    with projecting(store, kafka) as projector:  # type: ignore[arg-type]  # any store
        produce(kafka, 4_000, seed=41)
        wait_until(lambda: applied(store) == 4_000, 120, "the first 4,000 events")
        backup = documents(store)
        produce(kafka, 4_000, seed=42)
        wait_until(lambda: applied(store) == 8_000, 120, "the next 4,000 events")
        restore(store, backup)
        assert applied(store) == 4_000  # the second 4,000 are gone from the store
        produce(kafka, 2_000, seed=43)
        wait_until(lambda: applied(store) == 10_000, 180, "all 10,000 events")
        assert projector.stats.behind >= 1  # it noticed, and repositioned from the store
    assert store.snapshot(store.current_generation()) == without_names(reference_fold(kafka))
