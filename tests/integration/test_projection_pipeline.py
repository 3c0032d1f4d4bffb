"""Projectors against the real broker and stores: exact equality with the pure fold, through
crashes, store outages and a rebuild."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from projections.memory import MemoryStore
from projections.model import ReadModel
from projections.ports import ProjectionStore
from projections.projector import Projector
from projections.rebuild import rebuild
from projections.settings import ProjectorSettings
from projections.sources import decode_batch
from schemas.codec import SingleObjectCodec
from streams.demo.workload import Workload, WorkloadConfig
from streams.producer import JobEventProducer
from streams.reader import read_messages
from streams.settings import KafkaSettings
from tests.conftest import REPO_ROOT, catalog_of
from tests.integration.stores import couchbase_store, delete_redis_prefix, redis_store

INFRA = Path(os.environ.get("JOBTRAIL_INFRA_DIR", REPO_ROOT / ".infra-data"))


def produce(kafka: KafkaSettings, events: int, seed: int = 1) -> None:
    with JobEventProducer(kafka) as producer:
        producer.send_all(Workload(WorkloadConfig(jobs=None, events=events), seed=seed).events())


def reference_fold(kafka: KafkaSettings) -> ReadModel:
    """The pure fold of exactly what the log holds, at the positions the log gives."""
    topic = catalog_of(kafka).job_events.name
    memory = MemoryStore()
    messages = list(read_messages(kafka, topic, idle_s=3))
    items = decode_batch(messages, SingleObjectCodec()).items
    memory.apply_batch(items, memory.current_generation())
    return memory.snapshot(memory.current_generation())


def comparable(store: ProjectionStore, model: ReadModel) -> ReadModel:
    if store.name == "couchbase":
        model.names = {}
    return model


def project_until_idle(
    store: ProjectionStore, kafka: KafkaSettings, idle_s: float = 3
) -> Projector:
    projector = Projector(store, kafka, ProjectorSettings(batch_size=2000)).start()
    try:
        projector.run(idle_stop_s=idle_s)
    finally:
        projector.close()
    return projector


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
        for generation in range(1, 4):
            cb.drop(generation)


def test_100k_demo_events_project_exactly_as_the_pure_fold(
    kafka: KafkaSettings, store: ProjectionStore
) -> None:
    produce(kafka, 100_000)
    projector = project_until_idle(store, kafka)
    assert projector.stats.applied == 100_000 and projector.stats.undecodable == 0
    expected = reference_fold(kafka)
    assert store.snapshot(store.current_generation()) == comparable(store, expected)
    # and a second pass over the same log changes nothing
    again = project_until_idle(store, kafka, idle_s=2)
    assert again.stats.applied == 0
    assert store.snapshot(store.current_generation()) == comparable(store, expected)


def projector_env(kafka: KafkaSettings, store: ProjectionStore) -> dict[str, str]:
    env = {
        **os.environ,
        "JOBTRAIL_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "JOBTRAIL_TOPIC_PREFIX": kafka.topic_prefix,
        "JOBTRAIL_PROJECTOR_BATCH_SIZE": "500",
    }
    settings = store.settings  # type: ignore[attr-defined]
    if store.name == "redis":
        env |= {"JOBTRAIL_REDIS_URL": settings.url, "JOBTRAIL_REDIS_PREFIX": settings.prefix}
    else:
        env |= {
            "JOBTRAIL_COUCHBASE_CONNSTR": settings.connstr,
            "JOBTRAIL_COUCHBASE_PREFIX": settings.prefix,
        }
    return env


def test_kill_9_mid_stream_loses_and_doubles_nothing(
    kafka: KafkaSettings, store: ProjectionStore
) -> None:
    events = 60_000 if store.name == "redis" else 12_000
    produce(kafka, events, seed=2)
    env = projector_env(kafka, store)
    command = [sys.executable, "-m", "jobtrail.cli", "project", store.name, "--metrics-port", "0"]
    generation = store.current_generation()

    def applied() -> int:
        return sum(offset + 1 for offset in store.applied_offsets(generation).values())

    killed_at = []
    for round_ in range(1, 4):
        worker = subprocess.Popen(command, env=env, cwd=REPO_ROOT, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 120
        while applied() < round_ * events // 5 and time.monotonic() < deadline:
            time.sleep(0.02)
        worker.send_signal(signal.SIGKILL)  # mid-batch, mid-write: no chance to clean up
        worker.wait(30)
        killed_at.append(applied())
    assert all(0 < at < events for at in killed_at), killed_at
    final = subprocess.run(
        [*command, "--idle-stop-s", "4"], env=env, cwd=REPO_ROOT, capture_output=True, text=True,
        timeout=600, check=True,
    )  # fmt: skip
    assert "applied" in final.stderr
    assert applied() == events
    assert store.snapshot(generation) == comparable(store, reference_fold(kafka))


def server_pid(store: ProjectionStore) -> int:
    name = "redis/redis.pid" if store.name == "redis" else "couchbase/couchbase.pid"
    return int((INFRA / name).read_text().strip())


def test_a_store_outage_pauses_the_projector_which_then_catches_up(
    kafka: KafkaSettings, store: ProjectionStore
) -> None:
    events = 100_000 if store.name == "redis" else 20_000
    produce(kafka, events, seed=3)
    settings = ProjectorSettings(batch_size=500, retry_max_s=1.0)
    projector = Projector(store, kafka, settings).start()
    runner = threading.Thread(target=projector.run, kwargs={"idle_stop_s": 6.0})
    runner.start()
    deadline = time.monotonic() + 60
    while projector.stats.applied == 0 and time.monotonic() < deadline:
        time.sleep(0.01)
    pid = server_pid(store)
    os.kill(pid, signal.SIGSTOP)  # the server stops answering, keeping its data
    try:
        time.sleep(6.0)
        stalled_at = projector.stats.applied
        time.sleep(2.0)
        assert projector.stats.applied == stalled_at < events  # nothing applied while down
    finally:
        os.kill(pid, signal.SIGCONT)
    runner.join(300)
    projector.close()
    assert projector.stats.store_errors > 0
    # The batch in flight when the server stopped may have been applied after all (a timeout
    # is ambiguous); the store's own offsets, not the projector's counters, say what is done.
    assert sum(o + 1 for o in store.applied_offsets(store.current_generation()).values()) == events
    assert store.snapshot(store.current_generation()) == comparable(store, reference_fold(kafka))


def test_a_rebuild_while_the_live_projector_runs_yields_the_same_state(
    kafka: KafkaSettings, store: ProjectionStore
) -> None:
    produce(kafka, 20_000, seed=4)
    live = Projector(store, kafka, ProjectorSettings(batch_size=500)).start()
    runner = threading.Thread(target=live.run, kwargs={"idle_stop_s": 8.0})
    runner.start()
    more = threading.Thread(target=produce, args=(kafka, 10_000, 5))
    more.start()  # the log keeps growing during the rebuild
    report = rebuild(store, kafka, batch_size=2000, drop_grace_s=0.5)
    more.join()
    produce(kafka, 2_000, seed=6)  # after the switch: the live projector must carry on in it
    runner.join(300)
    live.close()
    assert store.current_generation() == report.new_generation != report.old_generation
    assert live.stats.repositions >= 1  # it noticed the switch and moved to the new generation
    assert store.applied_offsets(report.old_generation) == {}  # dropped
    assert store.snapshot(report.new_generation) == comparable(store, reference_fold(kafka))
