"""`jobtrail serve` as deployed (its own process, real Redis, real HTTP): every route's answer
equals the same numbers recomputed from the demo's events by the pure fold; auth on and off; a
dependency down is a 503 with the reason."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from jobtrail.retry_curve import retry_curve
from projections.model import Position, ReadModel
from schemas.job_event import JobEventType
from streams.demo.workload import Workload, WorkloadConfig
from tests.conftest import REPO_ROOT
from tests.integration.stores import couchbase_store, delete_redis_prefix, redis_store

TOKEN = "s3cret-token"
EVENTS = list(Workload(WorkloadConfig(jobs=1200), seed=11).events())
HISTORY_JOBS = sorted({event.job_id for event in EVENTS})[:40]


@dataclass
class Server:
    url: str
    fold: ReadModel


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def get(url: str, token: str | None = TOKEN, timeout: float = 10) -> tuple[int, Any]:
    request = urllib.request.Request(url)
    if token:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return response.status, json.load(response)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def serve(env: dict[str, str], port: int | None = None) -> tuple[subprocess.Popen[bytes], str]:
    port = port or free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "jobtrail.cli", "serve", "--port", str(port)],
        env={**os.environ, **env}, cwd=REPO_ROOT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            urllib.request.urlopen(url + "/openapi.json", timeout=1).read()
            return process, url
        except OSError as error:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise AssertionError(f"jobtrail serve did not answer: {error}") from error
            time.sleep(0.2)


@pytest.fixture(scope="module")
def server(redis_url: str, kafka_bootstrap: str, couchbase_connstr: str) -> Iterator[Server]:
    store = redis_store(redis_url)
    items = [(Position("job-events", 0, n), event) for n, event in enumerate(EVENTS)]
    generation = store.current_generation()
    for start in range(0, len(items), 2000):
        store.apply_batch(items[start : start + 2000], generation)
    fold = ReadModel()
    for position, event in items:
        fold.apply(event, position)
    # The Couchbase read model (job histories) of the first HISTORY_JOBS jobs.
    documents = couchbase_store(couchbase_connstr)
    kept = [event for event in EVENTS if event.job_id in HISTORY_JOBS]
    documents.apply_batch([(Position("job-events", 0, n), e) for n, e in enumerate(kept)],
                          documents.current_generation())  # fmt: skip
    env = {"JOBTRAIL_REDIS_URL": redis_url, "JOBTRAIL_REDIS_PREFIX": store.settings.prefix,
           "JOBTRAIL_API_TOKEN": TOKEN, "JOBTRAIL_BOOTSTRAP_SERVERS": kafka_bootstrap,
           "JOBTRAIL_COUCHBASE_CONNSTR": couchbase_connstr,
           "JOBTRAIL_COUCHBASE_PREFIX": documents.settings.prefix}  # fmt: skip
    process, url = serve(env)
    try:
        yield Server(url, fold.normalized())
    finally:
        process.terminate()
        process.wait(10)
        delete_redis_prefix(redis_url, store.settings.prefix)
        documents.drop(documents.current_generation())


def test_job_names_equal_the_fold(server: Server) -> None:
    status, names = get(server.url + "/api/job-names")
    assert status == 200
    assert [n["name"] for n in names] == sorted(server.fold.names)
    for answer in names:
        view = server.fold.names[answer["name"]]
        states = {state: count for state, count in view.counts.items() if count}
        assert answer["states"] == states
        assert answer["jobs"] == len(view.jobs) == sum(states.values())
        assert answer["active"] == len(view.active)
        finished = sum(states.get(s, 0) for s in ("completed", "failed", "cancelled"))
        assert (answer["failure_rate"]["hits"], answer["failure_rate"]["total"]) == (
            states.get("failed", 0),
            finished,
        )


def test_a_job_name_its_jobs_newest_first_and_its_latest_invocation(server: Server) -> None:
    name = "resize-image"
    view = server.fold.names[name]
    status, detail = get(f"{server.url}/api/job-names/{name}")
    assert status == 200
    assert detail["active_job_ids"] == sorted(view.active)
    assert view.latest is not None
    assert (detail["latest"]["job_id"], detail["latest"]["data"]) == (
        view.latest.job_id,
        view.latest.data,
    )
    newest_first = [job for job, _ in sorted(view.jobs.items(), key=lambda kv: (kv[1], kv[0]),
                                             reverse=True)]  # fmt: skip
    status, page = get(f"{server.url}/api/job-names/{name}/jobs?page=1&size=7")
    assert status == 200
    assert page["job_ids"] == newest_first[7:14]
    assert page["total"] == len(view.jobs)
    completed = [job for job in newest_first if server.fold.jobs[job].state == "completed"]
    status, page = get(f"{server.url}/api/job-names/{name}/jobs?state=completed&page=2&size=5")
    assert status == 200
    assert (page["job_ids"], page["total"]) == (completed[10:15], len(completed))
    for state in {str(job.state) for job in server.fold.jobs.values()}:
        listed: list[str] = []
        while True:
            url = f"{server.url}/api/job-names/{name}/jobs?state={state}&page={len(listed) // 500}"
            status, page = get(url + "&size=500")
            assert status == 200
            listed += page["job_ids"]
            if len(page["job_ids"]) < 500:
                break
        in_state = [job for job in newest_first if server.fold.jobs[job].state == state]
        assert listed == in_state, state


def test_the_retry_curve_equals_the_recomputation(server: Server) -> None:
    for name, view in server.fold.names.items():
        expected = retry_curve(view.retries, min_jobs=10)
        status, curve = get(f"{server.url}/api/job-names/{name}/retries?min_jobs=10")
        assert status == 200
        assert curve["suggested_limit"] == expected.suggested_limit
        assert curve["evidence"] == expected.evidence
        assert [(p["failed_at_least"], p["success"]["hits"], p["success"]["total"])
                for p in curve["points"]] == [
            (p.failed_at_least, p.chance.hits, p.chance.total) for p in expected.points
        ]  # fmt: skip


def test_a_job_equals_the_fold(server: Server) -> None:
    for job_id in list(server.fold.jobs)[:25]:
        view = server.fold.jobs[job_id]
        status, job = get(f"{server.url}/api/jobs/{job_id}")
        assert status == 200
        assert (job["job_name"], job["state"], job["attempts"], job["failures"], job["data"]) == (
            view.job_name,
            str(view.state),
            view.attempts,
            view.failures,
            view.data,
        )


def test_a_job_has_its_full_history_with_attempts(server: Server) -> None:
    for job_id in HISTORY_JOBS:
        events = [e for e in EVENTS if e.job_id == job_id]
        status, job = get(f"{server.url}/api/jobs/{job_id}")
        assert status == 200 and job["history_unavailable"] is None, job
        history = job["history"]
        assert [e["event_id"] for e in history["events"]] == [e.event_id for e in events]
        assert history["data"] == events[0].data
        ends = {e.attempt: e for e in events if e.type.ends_attempt}
        starts = {e.attempt: e for e in events if e.type is JobEventType.ACTIVE}
        assert [a["attempt"] for a in history["attempts"]] == sorted(set(starts) | set(ends))
        for attempt in history["attempts"]:
            n = attempt["attempt"]
            assert attempt["outcome"] == (ends[n].type.value if n in ends else None)
            if n in ends and n in starts:
                duration = ends[n].occurred_at - starts[n].occurred_at
                assert attempt["duration_ms"] == round(duration.total_seconds() * 1000)
    status, alone = get(f"{server.url}/api/jobs/{HISTORY_JOBS[0]}/history")
    assert status == 200 and alone["job_id"] == HISTORY_JOBS[0]
    outside = next(job for job in server.fold.jobs if job not in HISTORY_JOBS)
    status, job = get(f"{server.url}/api/jobs/{outside}")
    assert status == 200 and job["history"] is None
    assert "no job" in job["history_unavailable"]


def test_errors_of_a_job_name_since_a_time(server: Server) -> None:
    # The analytics model is not projected here: the route answers an empty page, not an error.
    status, page = get(f"{server.url}/api/errors?job_name=send-email&since=2026-01-01T00:00:00Z")
    assert status == 200 and page["total"] == 0 and page["job_name"] == "send-email"
    assert get(f"{server.url}/api/errors?since=yesterday")[0] == 422


def test_unknown_things_are_404_and_bad_parameters_422(server: Server) -> None:
    status, answer = get(server.url + "/api/job-names/no-such-name")
    assert (status, answer["detail"]) == (404, "no job name 'no-such-name' in the read model")
    assert get(server.url + "/api/jobs/no-such-job")[0] == 404
    assert get(server.url + "/api/job-names/resize-image/jobs?page=-1")[0] == 422
    assert get(server.url + "/api/job-names/resize-image/retries?threshold=2")[0] == 422
    assert get(server.url + "/api/job-names/resize-image/jobs?state=nope")[0] == 422


def test_the_token_guards_every_route_but_health(server: Server) -> None:
    assert get(server.url + "/api/job-names", token=None)[0] == 401
    assert get(server.url + "/api/job-names", token="wrong")[0] == 401
    assert get(server.url + "/api/jobs/x", token=None)[0] == 401
    status, health = get(server.url + "/api/health", token=None)
    assert (status, health["healthy"]) == (200, True), health
    assert [d["name"] for d in health["dependencies"]] == ["redis", "kafka"]
    assert {c["name"] for c in health["components"]} >= {
        "processors",
        "embedder",
        "project-redis",
        "project-couchbase",
    }
    status, schema = get(server.url + "/openapi.json", token=None)
    assert status == 200
    assert "/api/job-names/{name}/retries" in schema["paths"]


def test_without_a_token_the_routes_are_open(redis_url: str) -> None:
    env = {"JOBTRAIL_REDIS_URL": redis_url, "JOBTRAIL_API_TOKEN": "",
           "JOBTRAIL_REDIS_PREFIX": "test-no-such-prefix:"}  # fmt: skip
    process, url = serve(env)
    try:
        status, names = get(url + "/api/job-names", token=None)
        assert (status, names) == (200, [])
    finally:
        process.terminate()
        process.wait(10)


def test_redis_down_is_a_503_with_the_reason(kafka_bootstrap: str) -> None:
    process, url = serve({"JOBTRAIL_REDIS_URL": f"redis://127.0.0.1:{free_port()}/0",
                          "JOBTRAIL_REDIS_TIMEOUT_S": "1",
                          "JOBTRAIL_BOOTSTRAP_SERVERS": kafka_bootstrap})  # fmt: skip
    try:
        status, health = get(url + "/api/health", token=None)
        assert (status, health["healthy"]) == (503, False)
        deps = {d["name"]: d for d in health["dependencies"]}
        assert deps["kafka"]["healthy"] and not deps["redis"]["healthy"]
        assert "Connection" in deps["redis"]["detail"]
        status, answer = get(url + "/api/categories", token=None, timeout=60)
        assert status == 503 and "did not answer" in answer["detail"]
        with urllib.request.urlopen(url + "/metrics", timeout=10) as response:
            assert response.status == 200  # the scrape answers, without the read model's figures
            assert "jobtrail_category_occurrences{" not in response.read().decode()
    finally:
        process.terminate()
        process.wait(10)


def test_kafka_down_is_a_503_with_the_reason(redis_url: str) -> None:
    process, url = serve({"JOBTRAIL_REDIS_URL": redis_url,
                          "JOBTRAIL_BOOTSTRAP_SERVERS": f"127.0.0.1:{free_port()}"})  # fmt: skip
    try:
        status, health = get(url + "/api/health", token=None)
        assert (status, health["healthy"]) == (503, False)
        deps = {d["name"]: d for d in health["dependencies"]}
        assert deps["redis"]["healthy"] and not deps["kafka"]["healthy"]
        assert "did not answer" in deps["kafka"]["detail"]
    finally:
        process.terminate()
        process.wait(10)
