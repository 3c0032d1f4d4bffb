"""Rebuilds that fail mid-way, against the real broker and stores: a transient store error is
retried and the replay resumed from the store's offsets; a Redis that restarts from an older
snapshot is replayed again from where it stands; a rebuild killed with SIGKILL leaves a marker that
`jobtrail rebuild STORE --status` reports and the next rebuild resumes. Every ending equals the
pure fold, and no generation is left behind."""

from __future__ import annotations

import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from typing import Any

import pytest
import redis

from projections.ports import PendingBatch, ProjectionStore, StoreUnavailableError
from projections.rebuild import rebuild
from projections.rebuild_ledger import ledger_for
from projections.rebuild_status import rebuild_status
from projections.redis import RedisStore
from projections.settings import RedisSettings
from streams.settings import KafkaSettings
from tests.conftest import REPO_ROOT, unique_prefix
from tests.integration.own_redis import OwnRedis, own_redis
from tests.integration.stores import couchbase_store, delete_redis_prefix, redis_store
from tests.integration.test_projection_pipeline import (
    comparable,
    produce,
    project_until_idle,
    projector_env,
    reference_fold,
)

__all__ = ["own_redis"]  # the fixture, shared


@pytest.fixture(params=["redis", "couchbase"])
def store(
    request: pytest.FixtureRequest, redis_url: str, couchbase_connstr: str
) -> Iterator[ProjectionStore]:
    if request.param == "redis":
        opened = redis_store(redis_url)
        yield opened
        delete_redis_prefix(redis_url, opened.settings.prefix)
    else:
        cb = couchbase_store(couchbase_connstr)
        yield cb
        for generation in range(1, 6):
            cb.drop(generation)
        ledger_for(cb).clear()


def make_flaky(store: ProjectionStore, failing_calls: set[int]) -> list[int]:
    """Makes the store's n-th submit_batch (for n in `failing_calls`) raise a transient error,
    as a store that timed out would. Returns the list of failed call numbers (filled in)."""
    failed: list[int] = []
    calls = [0]
    base = type(store)

    def submit_batch(self: Any, items: Sequence[Any], generation: int, **kw: Any) -> PendingBatch:
        calls[0] += 1
        if calls[0] in failing_calls:
            failed.append(calls[0])
            raise StoreUnavailableError(f"injected outage on batch {calls[0]}")
        result: PendingBatch = base.submit_batch(self, items, generation, **kw)
        return result

    store.__class__ = type(f"Flaky{base.__name__}", (base,), {"submit_batch": submit_batch})
    return failed


def no_leftovers(store: ProjectionStore, report_generation: int) -> None:
    ledger = ledger_for(store)
    assert ledger.read() is None
    assert store.current_generation() == report_generation
    for generation in range(1, ledger.last_generation() + 1):
        if generation != report_generation:
            assert store.applied_offsets(generation) == {}, generation


def test_a_transient_store_error_mid_rebuild_is_retried_and_resumed(
    kafka: KafkaSettings, store: ProjectionStore
) -> None:
    produce(kafka, 10_000 if store.name == "redis" else 4_000, seed=11)
    project_until_idle(store, kafka, idle_s=2)
    failed = make_flaky(store, {3, 4, 7})
    report = rebuild(store, kafka, batch_size=500, drop_grace_s=0.1, outage_s=30)
    assert failed == [3, 4, 7] and report.restarts == 3
    assert store.snapshot(report.new_generation) == comparable(store, reference_fold(kafka))
    no_leftovers(store, report.new_generation)


def test_a_redis_restarted_from_an_older_snapshot_mid_rebuild_is_replayed_again(
    kafka: KafkaSettings, own_redis: OwnRedis
) -> None:
    events = 30_000
    produce(kafka, events, seed=12)
    store = RedisStore(RedisSettings(url=own_redis.url, prefix=unique_prefix(":")))
    store.setup()
    project_until_idle(store, kafka, idle_s=2)
    generation = store.current_generation() + 1  # the one the rebuild will fill
    restarted = threading.Event()

    def applied() -> int:
        try:
            offsets = store.applied_offsets(generation)
        except StoreUnavailableError:
            return 0
        return sum(offset + 1 for offset in offsets.values())

    def saboteur() -> None:
        deadline = time.monotonic() + 120
        while applied() < events // 5 and time.monotonic() < deadline:
            time.sleep(0.002)
        own_redis.client().save()  # the snapshot the restart comes back with
        while applied() < events // 2 and time.monotonic() < deadline:
            time.sleep(0.002)
        own_redis.shutdown_nosave()  # everything since the snapshot is lost
        time.sleep(0.5)
        own_redis.start()
        restarted.set()

    thread = threading.Thread(target=saboteur)
    thread.start()
    report = rebuild(store, kafka, batch_size=250, drop_grace_s=0.1, outage_s=60)
    thread.join(60)
    assert restarted.is_set() and report.new_generation == generation
    assert report.restarts >= 1
    assert store.snapshot(generation) == reference_fold(kafka)
    no_leftovers(store, generation)


def store_env(kafka: KafkaSettings, store: ProjectionStore) -> dict[str, str]:
    return projector_env(kafka, store)


def test_a_rebuild_killed_with_sigkill_is_reported_then_resumed(
    kafka: KafkaSettings, store: ProjectionStore
) -> None:
    events = 40_000 if store.name == "redis" else 8_000
    produce(kafka, events, seed=13)
    project_until_idle(store, kafka, idle_s=2)
    env = store_env(kafka, store)
    command = [sys.executable, "-m", "jobtrail.cli", "rebuild", store.name]
    ledger = ledger_for(store)
    worker = subprocess.Popen([*command, "--batch-size", "250"], env=env, cwd=REPO_ROOT,
                              stderr=subprocess.DEVNULL)  # fmt: skip
    deadline = time.monotonic() + 120
    marker = None
    while time.monotonic() < deadline:
        marker = ledger.read()
        done = store.applied_offsets(marker.generation) if marker else {}
        if sum(offset + 1 for offset in done.values()) > events // 4:
            break
        time.sleep(0.005)
    worker.send_signal(signal.SIGKILL)  # mid-batch, mid-write: no chance to clean up
    worker.wait(30)
    assert marker is not None
    orphan = marker.generation

    status = rebuild_status(store, kafka)
    assert status.rebuild_state == "orphaned" and status.marker is not None
    roles = {g.generation: g.role for g in status.generations}
    assert roles[orphan] == "rebuilding" and roles[status.current] == "current"
    assert next(g for g in status.generations if g.generation == orphan).behind > 0
    shown = subprocess.run([*command, "--status"], env=env, cwd=REPO_ROOT, capture_output=True,
                           text=True, timeout=60, check=True)  # fmt: skip
    assert "orphaned" in shown.stdout and f"generation {orphan}" in shown.stdout

    again = subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True,
                           timeout=300, check=True)  # fmt: skip
    assert f"rebuilt generation {orphan} (resumed" in again.stderr
    assert store.snapshot(orphan) == comparable(store, reference_fold(kafka))
    no_leftovers(store, orphan)
    shown = subprocess.run([*command, "--status"], env=env, cwd=REPO_ROOT, capture_output=True,
                           text=True, timeout=60, check=True)  # fmt: skip
    assert "rebuild: none recorded" in shown.stdout


def test_a_live_rebuild_refuses_a_second_one(kafka: KafkaSettings, redis_url: str) -> None:
    store = redis_store(redis_url)
    try:
        produce(kafka, 200, seed=14)
        client = redis.Redis.from_url(redis_url)
        # A marker whose owner is this very process (alive), as another host's would look.
        ledger = ledger_for(store)
        from projections.rebuild_ledger import RebuildMarker

        ledger.write(RebuildMarker(5, 1, "elsewhere:1", time.time(), time.time()))
        from projections.rebuild import RebuildInProgressError

        with pytest.raises(RebuildInProgressError):
            rebuild(store, kafka, drop_grace_s=0)
        assert client.exists(store.settings.prefix + "rebuild")
    finally:
        delete_redis_prefix(redis_url, store.settings.prefix)
