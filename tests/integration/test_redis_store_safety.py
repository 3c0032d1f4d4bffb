"""The Redis projection against a Redis of the test's own that loses writes or refuses them:
restarted from an older snapshot, out of memory, a read-only replica, busy with a long script, a
key of the wrong type. The projector keeps running through each, and the final state equals the
pure fold of the log."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest
import redis

from projections.projector import Projector
from projections.redis import RedisStore
from projections.settings import ProjectorSettings, RedisSettings
from streams.settings import KafkaSettings
from tests.integration.own_redis import OwnRedis, free_port, own_redis
from tests.integration.test_projection_pipeline import produce, reference_fold

__all__ = ["own_redis"]  # the fixture, imported to be found


def open_store(server: OwnRedis) -> RedisStore:
    store = RedisStore(RedisSettings(url=server.url, prefix="safety:", timeout_s=2.0))
    store.setup()
    return store


def applied(store: RedisStore) -> int:
    """Records the store holds as applied (from its own offsets, which may go back in time)."""
    offsets = store.client.hgetall(store.namespace(store.current_generation()) + "offsets")
    return sum(int(offset) + 1 for offset in offsets.values())


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


@contextmanager
def projecting(store: RedisStore, kafka: KafkaSettings) -> Iterator[Projector]:
    """A projector running in a thread until the block ends; it must never exit on its own."""
    projector = Projector(store, kafka, ProjectorSettings(batch_size=500, retry_max_s=0.5))
    projector.start()
    errors: list[BaseException] = []

    def run() -> None:
        try:
            projector.run()
        except BaseException as exc:  # surfaced by the test below
            errors.append(exc)

    runner = threading.Thread(target=run, daemon=True)
    runner.start()
    try:
        yield projector
        assert runner.is_alive() and not errors, errors
    finally:
        projector.stopping.set()
        runner.join(60)
        projector.close()
    assert not errors, errors


def test_a_restart_from_an_older_snapshot_reapplies_what_was_lost(
    kafka: KafkaSettings, own_redis: OwnRedis
) -> None:
    store = open_store(own_redis)
    with projecting(store, kafka) as projector:
        produce(kafka, 10_000, seed=11)
        wait_until(lambda: applied(store) == 10_000, 90, "the first 10,000 events")
        own_redis.client().save()  # the snapshot the store will come back from
        produce(kafka, 10_000, seed=12)
        wait_until(lambda: applied(store) == 20_000, 90, "the next 10,000 events")
        # The projector idles between batches meanwhile: nothing tells it the store restarted.
        own_redis.shutdown_nosave()
        own_redis.start()
        assert applied(store) == 10_000  # the second 10,000 are gone from the store
        produce(kafka, 5_000, seed=13)
        wait_until(lambda: applied(store) == 25_000, 120, "all 25,000 events")
        assert projector.stats.behind >= 1  # it noticed, and repositioned from the store
    assert store.snapshot(store.current_generation()) == reference_fold(kafka)


def test_a_restart_mid_stream_reapplies_what_was_lost(
    kafka: KafkaSettings, own_redis: OwnRedis
) -> None:
    store = open_store(own_redis)
    produce(kafka, 40_000, seed=14)
    with projecting(store, kafka):
        wait_until(lambda: applied(store) >= 5_000, 90, "5,000 events")
        own_redis.client().save()
        wait_until(lambda: applied(store) >= 15_000, 90, "15,000 events")
        own_redis.shutdown_nosave()  # while batches are in flight
        own_redis.start()
        wait_until(lambda: applied(store) == 40_000, 180, "all 40,000 events")
    assert store.snapshot(store.current_generation()) == reference_fold(kafka)


@pytest.mark.parametrize("refusal", ["oom", "readonly", "busy", "wrongtype"])
def test_error_replies_pause_the_projector_which_then_applies_everything_once(
    kafka: KafkaSettings, own_redis: OwnRedis, refusal: str
) -> None:
    store = open_store(own_redis)
    produce(kafka, 30_000, seed=15)
    with projecting(store, kafka) as projector:
        wait_until(lambda: applied(store) > 0, 90, "the first batch")
        lift = refuse(own_redis, store, refusal)
        try:
            wait_until(lambda: projector.stats.store_errors >= 3, 60, "refused batches")
            stalled_at = projector.stats.applied
            time.sleep(1.0)
            assert projector.stats.applied == stalled_at < 30_000  # nothing applied meanwhile
        finally:
            lift()
        wait_until(lambda: applied(store) == 30_000, 120, "all 30,000 events")
        wait_until(lambda: projector.stats.applied == 30_000, 30, "the last batch settled")
        assert (projector.stats.store_faults > 0) == (refusal == "wrongtype")
        assert projector.stats.duplicates == 0  # refused batches applied nothing
    assert store.snapshot(store.current_generation()) == reference_fold(kafka)


def refuse(server: OwnRedis, store: RedisStore, refusal: str) -> Callable[[], object]:
    """Makes Redis refuse the projector's batches; returns what lifts the refusal."""
    admin = server.client()
    if refusal == "oom":
        admin.config_set("maxmemory", 1)
        return lambda: admin.config_set("maxmemory", 0)
    if refusal == "readonly":
        admin.replicaof("127.0.0.1", free_port())  # a master that never answers
        return lambda: admin.replicaof("NO", "ONE")
    if refusal == "busy":
        # A script that runs for seconds: past busy-reply-threshold, every other command is
        # answered BUSY until it ends.
        admin.config_set("busy-reply-threshold", 50)
        spinner = threading.Thread(target=spin, args=(server.client(), 4.0), daemon=True)
        spinner.start()
        return lambda: spinner.join(30)
    # An operator (or a bug) left a key of the wrong type: a fault no wait fixes, until fixed.
    offsets = store.namespace(store.current_generation()) + "offsets"
    swap = admin.pipeline(transaction=True)  # in one step: a missing hash reads as "behind"
    swap.rename(offsets, offsets + ".saved")
    swap.set(offsets, "not a hash")
    swap.execute()

    def fix() -> None:
        admin.rename(offsets + ".saved", offsets)  # replaces the string

    return fix


SPIN = """
local function now() local t = redis.call('TIME'); return t[1] + t[2] / 1e6 end
local until_ = now() + tonumber(ARGV[1])
while now() < until_ do end
return 1
"""


def spin(client: redis.Redis, seconds: float) -> None:
    client.eval(SPIN, 0, seconds)
