"""`make bench-projections`: projection throughput beside the stores' own references.

  1. redis-benchmark, pipelined SET (-P 64): what Redis itself does on this machine;
  2. the Redis projection: `Projector` from job-events into Redis, events/s;
  3. a bare Couchbase SDK upsert loop (the same thread count as the projection);
  4. the Couchbase projection, events/s;
  5. the time to rebuild the Redis projection from all events (1,000,000 by default).
All against the local services, in one run.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

from bench.common import Measurement, Stopwatch, write_result
from projections.couchbase import CouchbaseStore
from projections.projector import Projector
from projections.rebuild import rebuild
from projections.redis import RedisStore
from projections.settings import CouchbaseSettings, ProjectorSettings, RedisSettings
from streams.admin import TopicAdmin
from streams.demo.workload import Workload, WorkloadConfig
from streams.producer import JobEventProducer
from streams.settings import KafkaSettings
from streams.topics import topic_catalog

REDIS_TARGET = 30_000
REBUILD_TARGET_S = 60.0


def redis_benchmark(requests: int) -> Measurement:
    if shutil.which("redis-benchmark") is None:
        raise SystemExit("redis-benchmark not found: apt-get install redis-tools")
    out = subprocess.run(
        ["redis-benchmark", "-t", "set", "-n", str(requests), "-P", "64", "-q", "-r", "100000"],
        capture_output=True, text=True, check=True, timeout=600,
    ).stdout  # fmt: skip
    match = re.search(r"SET: ([\d.]+) requests per second", out)
    if match is None:
        raise SystemExit(f"unexpected redis-benchmark output: {out!r}")
    per_s = float(match.group(1))
    return Measurement("redis-benchmark SET, pipelined -P 64", requests, requests / per_s)


def produce(kafka: KafkaSettings, events: int) -> None:
    print(f"producing {events:,} demo events to {kafka.topic_prefix}job-events ...", flush=True)
    with JobEventProducer(kafka) as producer:
        producer.send_all(Workload(WorkloadConfig(jobs=None, events=events), seed=11).events())


def project(store: RedisStore | CouchbaseStore, kafka: KafkaSettings, events: int) -> Measurement:
    projector = Projector(store, kafka, ProjectorSettings(batch_size=2000)).start()
    try:
        stats = projector.run(idle_stop_s=2.0)
    finally:
        projector.close()
    if stats.applied != events:
        raise SystemExit(f"{store.name} projection applied {stats.applied} of {events}")
    # From the first records consumed to the last batch applied: joining the group and the
    # idle wait at the end are not projection work.
    seconds = stats.last_applied_at - stats.first_consumed_at
    return Measurement(f"{store.name} projection (consume, decode, apply)", events, seconds)


def couchbase_upserts(store: CouchbaseStore, documents: int) -> Measurement:
    collection = store.collection
    body = {"job_id": "x", "state": "completed", "attempts": 1, "history": [{"type": "QUEUED"}] * 4}
    keys = [f"bench::{uuid.uuid4().hex}::{i}" for i in range(documents)]
    with ThreadPoolExecutor(store.settings.concurrency) as pool, Stopwatch() as watch:
        list(pool.map(lambda key: collection.upsert(key, body), keys))
    with ThreadPoolExecutor(store.settings.concurrency) as pool:
        list(pool.map(collection.remove, keys))
    return Measurement(
        f"bare Couchbase SDK upsert ({store.settings.concurrency} threads)",
        documents,
        watch.seconds,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000, help="events for Redis")
    parser.add_argument("--couchbase-events", type=int, default=50_000)
    args = parser.parse_args()

    run = uuid.uuid4().hex[:8]
    big = KafkaSettings(topic_prefix=f"bench-proj-{run}.")
    small = KafkaSettings(topic_prefix=f"bench-projcb-{run}.")
    admins = [TopicAdmin(big), TopicAdmin(small)]
    for admin, kafka in zip(admins, (big, small), strict=True):
        admin.create([topic_catalog(kafka.topic_prefix).job_events])
    redis_store = RedisStore(RedisSettings(prefix=f"bench-{run}:"))
    redis_store.setup()
    couchbase = CouchbaseStore(CouchbaseSettings(prefix=f"bench-{run}::"))
    couchbase.setup()
    try:
        produce(big, args.events)
        produce(small, args.couchbase_events)
        results = [redis_benchmark(1_000_000)]
        print("projecting into redis ...", flush=True)
        results.append(project(redis_store, big, args.events))
        print("rebuilding the redis projection ...", flush=True)
        started = time.perf_counter()
        report = rebuild(redis_store, big, drop_grace_s=0.0)
        rebuild_s = report.replay_seconds
        total_rebuild_s = time.perf_counter() - started
        results.append(
            Measurement("redis rebuild (replay, apply, switch)", report.records, rebuild_s)
        )
        results.append(couchbase_upserts(couchbase, 20_000))
        print("projecting into couchbase ...", flush=True)
        results.append(project(couchbase, small, args.couchbase_events))
    finally:
        for admin, kafka in zip(admins, (big, small), strict=True):
            admin.delete([topic_catalog(kafka.topic_prefix).job_events.name])
        for generation in range(1, 4):
            redis_store.drop(generation)
            couchbase.drop(generation)

    print(f"\n{'run':52} {'events/s':>12} {'µs/event':>10}")
    for result in results:
        print(f"{result.name:52} {result.events_per_s:12,.0f} {result.us_per_event:10.2f}")
    redis_rate = results[1].events_per_s
    print(
        f"\nredis projection: {redis_rate:,.0f} events/s (target {REDIS_TARGET:,}:"
        f" {'met' if redis_rate >= REDIS_TARGET else 'missed'}), "
        f"{redis_rate / results[0].events_per_s:.2f} of redis-benchmark's SET rate"
    )
    print(
        f"redis rebuild of {report.records:,} events: {rebuild_s:.1f} s, dropping the old"
        f" generation included {total_rebuild_s:.1f} s (target < {REBUILD_TARGET_S:.0f} s:"
        f" {'met' if rebuild_s < REBUILD_TARGET_S else 'missed'})"
    )
    print(
        f"couchbase projection: {results[4].events_per_s:,.0f} events/s,"
        f" {results[4].events_per_s / results[3].events_per_s:.2f} of bare SDK upserts"
    )
    path = write_result(
        "projections",
        {
            "results": [r.as_dict() for r in results],
            "redis_target_events_per_s": REDIS_TARGET,
            "rebuild_target_s": REBUILD_TARGET_S,
            "rebuild_with_drop_s": round(total_rebuild_s, 2),
        },
    )
    print(f"results written to {path}")


if __name__ == "__main__":
    main()
