"""`jobtrail dlq list|show|replay` and /api/dead-letters against the real broker: counts by reason,
letters shown, and a replay that sends the original bytes back (event ids kept), skipping
truncated letters."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from confluent_kafka import Producer

from schemas.codec import SingleObjectCodec
from streams.dead_letters import REPLAYED_HEADER
from streams.dlq import DeadLetter, DeadLetterWriter
from streams.reader import read_to_end
from streams.settings import KafkaSettings
from tests.conftest import REPO_ROOT, catalog_of
from tests.factories import make_event
from tests.integration.test_api import get, serve


def jobtrail(kafka: KafkaSettings, *args: str) -> str:
    env = {**os.environ, "COLUMNS": "200", "JOBTRAIL_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
           "JOBTRAIL_TOPIC_PREFIX": kafka.topic_prefix}  # fmt: skip
    done = subprocess.run([sys.executable, "-m", "jobtrail.cli", *args], env=env, cwd=REPO_ROOT,
                          capture_output=True, text=True, timeout=120, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_list_show_and_replay_dead_letters(kafka: KafkaSettings, redis_url: str) -> None:
    catalog = catalog_of(kafka)
    source = catalog.job_events.name
    codec = SingleObjectCodec()
    events = [make_event(event_id=f"dead-{n}", job_id=f"job-{n}") for n in range(5)]
    producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
    writer = DeadLetterWriter(producer, catalog.job_events_dlq.name, max_bytes=200_000)
    for n, event in enumerate(events):
        reason = "missing_job_name" if n < 3 else "oversized_field"
        writer.write(DeadLetter(reason, f"detail {n}", source, 0, n, event.job_id.encode(),
                                codec.encode(event)))  # fmt: skip
    big = make_event(event_id="dead-big", job_id="job-big")
    writer.write(
        DeadLetter(
            "oversized_field",
            "too big",
            source,
            0,
            9,
            b"job-big",
            codec.encode(big) + b"x" * 300_000,
        )
    )  # fmt: skip: truncated to fit
    assert producer.flush(30) == 0

    listed = jobtrail(kafka, "dlq", "list")
    assert "missing_job_name=3 oversized_field=3" in listed
    shown = [json.loads(line) for line in jobtrail(kafka, "dlq", "show", "--max", "0").split("\n")
             if line.startswith("{")]  # fmt: skip
    assert sorted(s["reason"] for s in shown) == ["missing_job_name"] * 3 + ["oversized_field"] * 3
    assert sum(1 for s in shown if s["truncated_from"]) == 1

    assert "would send 2" in jobtrail(kafka, "dlq", "replay", "--reason", "oversized_field",
                                      "--dry-run")  # fmt: skip
    assert sum(1 for _ in read_to_end(kafka, source)) == 0
    out = jobtrail(kafka, "dlq", "replay", "--topic", catalog.job_events_dlq.name)
    assert "sent 5 letters back" in out and "skipped 1 truncated" in out
    replayed = list(read_to_end(kafka, source))
    assert sorted(codec.decode(m.value() or b"").event_id for m in replayed) == [
        e.event_id for e in events
    ]  # the same bytes: the same event ids
    assert all(dict(m.headers() or [])[REPLAYED_HEADER] for m in replayed)

    env = {"JOBTRAIL_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
           "JOBTRAIL_TOPIC_PREFIX": kafka.topic_prefix, "JOBTRAIL_REDIS_URL": redis_url,
           "JOBTRAIL_API_TOKEN": ""}  # fmt: skip
    process, url = serve(env)
    try:
        status, answer = get(url + "/api/dead-letters", token=None)
    finally:
        process.terminate()
        process.wait(10)
    assert status == 200
    assert answer[0] == {"topic": catalog.job_events_dlq.name, "letters": 6, "truncated": 1,
                         "by_reason": {"missing_job_name": 3, "oversized_field": 3}}  # fmt: skip
    assert answer[1]["letters"] == 0
