"""The analytics projection against the real broker and Redis, and its routes over real HTTP.

The demo's events, their attempt outcomes (a hundred of them emitted twice, as after a processor
crash) and error vectors of two models are produced to the three topics. Two projector processes'
worth of members (two Projectors in one group) fold them into Redis, one of them stopped and
restarted mid-way; the stored model must equal the pure fold of what the topics hold, the error
counts must equal the job read model's, and a rebuild into a fresh generation must give the same
model again. `jobtrail serve` then answers every analytics route from that model.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from confluent_kafka import Producer

from jobtrail.concurrency_curve import concurrency_curve
from processors.fingerprint import fingerprint
from processors.outcomes import recompute
from projections.analytics import histogram
from projections.analytics.model import AnalyticsModel, fold, queue_key, split_queue_key
from projections.analytics.redis_store import AnalyticsRedisStore
from projections.model import Position, ReadModel
from projections.projector import Projector
from projections.rebuild import rebuild
from projections.settings import ProjectorSettings, RedisSettings
from projections.sources import analytics_source
from schemas.derived import ErrorVector, encode_attempt_outcome, encode_error_vector
from schemas.job_event import JobEvent, JobEventType
from streams.demo.workload import Workload, WorkloadConfig
from streams.producer import JobEventProducer
from streams.reader import read_to_end
from streams.settings import KafkaSettings
from tests.conftest import catalog_of, unique_prefix
from tests.factories import make_event
from tests.integration.stores import delete_redis_prefix
from tests.integration.test_api import get, serve

DEMO = list(Workload(WorkloadConfig(jobs=1500), seed=21).events())


def _abandoned() -> list[JobEvent]:
    """Three jobs that never end, from the demo's first minute: one never started, one whose
    attempt never ended, one stalled. Every demo job ends, so these are the stuck ones."""
    at = DEMO[0].occurred_at
    base = {"job_name": "send-email", "queue": "emails", "error": None, "will_retry": None,
            "data": None, "progress": None, "attempt": 1}  # fmt: skip
    return [
        make_event(**base, event_id="ab-1", job_id="stuck-queued", type=JobEventType.QUEUED,
                   occurred_at=at),
        make_event(**base, event_id="ab-2", job_id="stuck-active", type=JobEventType.QUEUED,
                   occurred_at=at),
        make_event(**base, event_id="ab-3", job_id="stuck-active", type=JobEventType.ACTIVE,
                   occurred_at=at + timedelta(seconds=1)),
        make_event(**base, event_id="ab-4", job_id="stuck-stalled", type=JobEventType.QUEUED,
                   occurred_at=at),
        make_event(**base, event_id="ab-5", job_id="stuck-stalled", type=JobEventType.ACTIVE,
                   occurred_at=at + timedelta(seconds=1)),
        make_event(**base, event_id="ab-6", job_id="stuck-stalled", type=JobEventType.STALLED,
                   occurred_at=DEMO[-1].occurred_at),
    ]  # fmt: skip


EVENTS = DEMO + _abandoned()


@dataclass
class Projected:
    kafka: KafkaSettings
    store: AnalyticsRedisStore
    reference: AnalyticsModel  # the pure fold of what the topics hold
    redis_env: dict[str, str]


def produce(kafka: KafkaSettings) -> None:
    catalog = catalog_of(kafka)
    with JobEventProducer(kafka) as producer:
        for event in EVENTS:
            producer.send(event)
    raw = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    outcomes = list(recompute(EVENTS).values())
    for outcome in outcomes + outcomes[:100]:
        raw.produce(catalog.attempt_outcomes.name, key=outcome.job_id.encode(),
                    value=encode_attempt_outcome(outcome))  # fmt: skip
    prints = sorted({fingerprint(e.error).sha256 for e in EVENTS if e.error is not None})
    for n, fp in enumerate(prints):
        for model, vector in (("m-small", (n / 10, 1.0)), ("m-large", (1.0, 0.5, 0.25, n))):
            value = encode_error_vector(ErrorVector(fp, model, tuple(float(v) for v in vector)))
            raw.produce(catalog.error_vectors.name, key=f"{fp}:{model}".encode(), value=value)
    assert raw.flush(30) == 0


def reference_fold(kafka: KafkaSettings) -> AnalyticsModel:
    source = analytics_source(kafka)
    items: list[tuple[Position, object]] = []
    for topic in source.topics:
        items += source.decode(list(read_to_end(kafka, topic))).items
    return fold(items)  # type: ignore[arg-type]


def run_until_idle(projector: Projector[object]) -> None:
    try:
        projector.run(idle_stop_s=5)
    finally:
        projector.close()


def stop_after(projector: Projector[object], batches: int) -> None:
    while projector.stats.batches < batches:
        time.sleep(0.005)
    projector.stopping.set()


@pytest.fixture(scope="module")
def projected(kafka_bootstrap: str, redis_url: str) -> Iterator[Projected]:
    from streams.admin import TopicAdmin

    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_prefix("."),
                          connect_timeout_s=15)  # fmt: skip
    admin = TopicAdmin(kafka)
    admin.create(catalog_of(kafka).all())
    prefix = unique_prefix(":")
    store = AnalyticsRedisStore(RedisSettings(url=redis_url, prefix=prefix))
    store.setup()
    try:
        # Two members of one group, both assigned before the records come: shared entities (a
        # job name's concurrency, an error) are written by both at once, and the optimistic
        # transaction must lose no update (without it, this test fails).
        projectors = [
            Projector(
                store, kafka, ProjectorSettings(batch_size=300), source=analytics_source(kafka)
            )
            for _ in range(2)
        ]
        members = [threading.Thread(target=run_until_idle, args=(p.start(),)) for p in projectors]
        for member in members:
            member.start()
        deadline = time.monotonic() + 60
        while not all(p._assignment for p in projectors) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert all(p._assignment for p in projectors), "both members should own partitions"
        produce(kafka)
        for member in members:
            member.join(180)
        assert all(p.stats.applied > 0 for p in projectors), [p.stats for p in projectors]
        env = {"JOBTRAIL_REDIS_URL": redis_url, "JOBTRAIL_REDIS_PREFIX": prefix}
        yield Projected(kafka, store, reference_fold(kafka), env)
    finally:
        delete_redis_prefix(redis_url, prefix)
        admin.delete(n for n in admin.metadata().topics if n.startswith(kafka.topic_prefix))


def test_the_stored_model_equals_the_fold_of_the_topics(projected: Projected) -> None:
    store = projected.store
    assert store.snapshot(store.current_generation()) == projected.reference


def test_error_counts_equal_the_job_read_models(projected: Projected) -> None:
    jobs = ReadModel()
    for n, event in enumerate(EVENTS):
        jobs.apply(event, Position("e", 0, n))
    stored = projected.store.snapshot(projected.store.current_generation())
    assert {fp: e.count for fp, e in stored.errors.items()} == {
        fp: v.count for fp, v in jobs.fingerprints.items()
    }
    assert all(set(e.models) == {"m-small", "m-large"} for e in stored.errors.values())


def test_a_rebuild_gives_the_same_model(projected: Projected) -> None:
    store = projected.store
    before = store.current_generation()
    report = rebuild(store, projected.kafka, source=analytics_source(projected.kafka),
                     batch_size=900, drop_grace_s=0.1)  # fmt: skip
    assert report.new_generation != before == report.old_generation
    assert store.current_generation() == report.new_generation
    assert store.snapshot(report.new_generation) == projected.reference


def test_a_projector_stopped_mid_way_resumes_from_the_store(
    projected: Projected, redis_url: str
) -> None:
    prefix = unique_prefix(":")
    store = AnalyticsRedisStore(RedisSettings(url=redis_url, prefix=prefix))
    store.setup()
    kafka = projected.kafka
    try:
        # Its own group (a second deployment of the projection), stopped after three batches.
        first = Projector(store, kafka, ProjectorSettings(batch_size=500),
                          source=analytics_source(kafka))  # fmt: skip
        first.group_id += "-resume"
        first.start()
        threading.Thread(target=stop_after, args=(first, 3), daemon=True).start()
        first.run()
        first.close()
        applied = sum(o + 1 for o in store.applied_offsets(store.current_generation()).values())
        total = sum(o + 1 for o in projected.reference.offsets.values())
        assert 0 < applied < total
        second = Projector(store, kafka, ProjectorSettings(batch_size=2000),
                           source=analytics_source(kafka))  # fmt: skip
        second.group_id += "-resume"
        second.start()
        second.run(idle_stop_s=4)
        second.close()
        assert store.snapshot(store.current_generation()) == projected.reference
    finally:
        delete_redis_prefix(redis_url, prefix)


@pytest.fixture(scope="module")
def api_url(projected: Projected) -> Iterator[str]:
    kafka = projected.kafka.bootstrap_servers
    process, url = serve(
        {**projected.redis_env, "JOBTRAIL_API_TOKEN": "", "JOBTRAIL_BOOTSTRAP_SERVERS": kafka}
    )
    try:
        yield url
    finally:
        process.terminate()
        process.wait(10)


def test_concurrency_routes_equal_the_curve_of_the_fold(projected: Projected, api_url: str) -> None:
    concurrency = projected.reference.concurrency
    worker = sorted(concurrency.by_worker)[0]
    for path, levels in (
        ("/api/job-names/send-email/concurrency", concurrency.by_job_name["send-email"]),
        (f"/api/workers/{worker}/concurrency", concurrency.by_worker[worker]),
    ):
        curve = concurrency_curve(levels, concurrency.max_level)
        status, answer = get(api_url + path, token=None)
        assert status == 200
        assert [(p["label"], p["failure_rate"]["hits"], p["failure_rate"]["total"])
                for p in answer["levels"]] == [
            (p.label, p.failure.hits, p.failure.total) for p in curve.points
        ]  # fmt: skip
        assert answer["baseline"]["level"] == 1
    assert get(api_url + "/api/workers/nobody/concurrency", token=None)[0] == 404


def test_errors_are_listed_by_count_and_shown_with_vectors(
    projected: Projected, api_url: str
) -> None:
    errors = projected.reference.errors
    status, page = get(api_url + "/api/errors?size=5", token=None)
    assert status == 200 and page["total"] == len(errors)
    counts = sorted((e.count for e in errors.values()), reverse=True)
    assert [e["count"] for e in page["errors"]] == counts[:5]
    top = page["errors"][0]["fingerprint"]
    status, detail = get(f"{api_url}/api/errors/{top}?vectors=true", token=None)
    assert status == 200
    stats = errors[top]
    assert (detail["template"], detail["sample"], detail["count"]) == (
        stats.template, stats.sample, stats.count)  # fmt: skip
    assert {j["job_id"] for j in detail["latest_jobs"]} == set(stats.latest_jobs)
    assert detail["vectors"]["m-large"][:3] == [1.0, 0.5, 0.25]
    assert get(api_url + "/api/errors/" + "0" * 64, token=None)[0] == 404


def test_queues_and_gaps_answer_from_the_model(projected: Projected, api_url: str) -> None:
    status, queues = get(api_url + "/api/queues", token=None)
    assert status == 200
    finished = sum(row["completed"] + row["failed"] + row["cancelled"] for row in queues)
    terminal = {e.job_id for e in EVENTS if e.type.value in ("COMPLETED", "CANCELLED")
                or (e.type.value == "FAILED" and e.will_retry is False)}  # fmt: skip
    assert finished == len(terminal)
    reference = projected.reference.queues
    assert {(row["queue"], row["job_name"]) for row in queues} == {
        split_queue_key(key) for key in reference
    }
    for row in queues:
        stats = reference[queue_key(row["queue"], row["job_name"])]
        states = stats.states
        waiting = sum(states.get(s, 0) for s in ("queued", "retrying", "stalled"))
        assert (row["waiting"], row["active"], row["completed"], row["failed"]) == (
            waiting, states.get("active", 0), states.get("completed", 0), states.get("failed", 0)
        )  # fmt: skip
        for answer, hist in ((row["waiting_time_ms"], stats.waiting),
                             (row["run_time_ms"], stats.running)):  # fmt: skip
            assert [answer[q] for q in ("p50", "p95", "p99")] == [
                histogram.quantile_ms(hist, q) for q in (0.5, 0.95, 0.99)
            ]
    status, gaps = get(api_url + "/api/gaps", token=None)
    assert status == 200
    open_now = {j for j, t in projected.reference.jobs.items() if t.open}
    assert open_now == {"stuck-queued", "stuck-active", "stuck-stalled"}
    assert gaps["open_jobs"] == 3
    listed = {job["job_id"]: job for job in gaps["jobs"]}
    assert set(listed) == open_now
    assert listed["stuck-stalled"]["threshold_s"] is None
    assert listed["stuck-active"]["state"] == "active"
    assert listed["stuck-active"]["age_s"] > listed["stuck-active"]["threshold_s"] >= 60


def test_errors_filtered_by_job_name_and_time(projected: Projected, api_url: str) -> None:
    errors = {fp: e for fp, e in projected.reference.errors.items() if e.count}
    name = "send-email"
    mine = {fp: e.job_names[name] for fp, e in errors.items() if name in e.job_names}
    status, page = get(f"{api_url}/api/errors?job_name={name}&size=500", token=None)
    assert status == 200 and page["total"] == len(mine) > 0
    assert sorted(e["fingerprint"] for e in page["errors"]) == sorted(mine)
    assert [mine[e["fingerprint"]] for e in page["errors"]] == sorted(mine.values(), reverse=True)
    middle = sorted(e.last_seen for e in errors.values())[len(errors) // 2]
    since = datetime.fromtimestamp(middle / 1000, UTC).isoformat().replace("+00:00", "Z")
    status, page = get(f"{api_url}/api/errors?since={since}&size=500", token=None)
    recent = {fp for fp, e in errors.items() if e.last_seen >= middle}
    assert status == 200 and page["total"] == len(recent)
    assert {e["fingerprint"] for e in page["errors"]} == recent
