"""What `make up` does, end to end: topics, the demo into Kafka, metrics in Prometheus, tail."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid

from streams.admin import TopicAdmin
from streams.settings import KafkaSettings
from tests.conftest import REPO_ROOT
from tests.integration.stores import delete_redis_prefix

METRICS_PORT = "8000"  # scraped by infra/prometheus/prometheus.yml


def prometheus_value(base: str, query: str) -> float | None:
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': query})}"
    with urllib.request.urlopen(url, timeout=5) as response:
        result = json.load(response)["data"]["result"]
    return float(result[0]["value"][1]) if result else None


def watch_until(
    prometheus_url: str, query: str, process: subprocess.Popen[str], expected: int, wait_s: float
) -> float | None:
    """The query's value once it equals `expected`, or the last one seen when the process ends
    or the wait is over; then the process must end cleanly."""
    seen = None
    deadline = time.monotonic() + wait_s
    while time.monotonic() < deadline and process.poll() is None and seen != expected:
        seen = prometheus_value(prometheus_url, query)
        time.sleep(1)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return seen


def test_demo_flows_into_kafka_and_prometheus(
    kafka_bootstrap: str, prometheus_url: str, redis_url: str
) -> None:
    prefix = f"e2e-{uuid.uuid4().hex[:8]}."
    env = {
        **os.environ,
        "JOBTRAIL_BOOTSTRAP_SERVERS": kafka_bootstrap,
        "JOBTRAIL_TOPIC_PREFIX": prefix,
    }

    def jobtrail(*args: str, **kwargs: object) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [sys.executable, "-m", "jobtrail.cli", *args],
            env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )  # fmt: skip

    settings = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=prefix)
    try:
        applied = jobtrail("topics", "apply")
        assert applied.wait(60) == 0, applied.stderr.read() if applied.stderr else ""

        # Slow enough (about 12 s) for Prometheus to scrape it at least twice.
        demo = jobtrail("demo", "--jobs", "300", "--rate", "110", "--metrics-port", METRICS_PORT)
        query = f'jobtrail_producer_events_sent_total{{topic="{prefix}job-events"}}'
        scraped = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and demo.poll() is None and not scraped:
            scraped = prometheus_value(prometheus_url, query)
            time.sleep(1)
        _, err = demo.communicate(timeout=120)
        assert demo.returncode == 0, err
        assert scraped and scraped > 0, "Prometheus never scraped the demo's producer metrics"

        sent = int(re.search(r"sent (\d+) events for 300 jobs", err.replace("\n", " ")).group(1))  # type: ignore[union-attr]
        tail = jobtrail("tail", "--from-beginning", "--max", "0", "--idle-s", "3")
        out, tail_err = tail.communicate(timeout=120)
        assert tail.returncode == 0, tail_err
        lines = [json.loads(line) for line in out.splitlines()]
        assert len(lines) == sent
        assert sum(1 for e in lines if e["type"] == "QUEUED") == 300
        assert len({e["event_id"] for e in lines}) == sent

        # The stream processors take them in; Prometheus sees how many.
        env["JOBTRAIL_PROCESSORS_IDLE_AFTER_S"] = "2"
        env["JOBTRAIL_PROCESSORS_DATA_DIR"] = str(REPO_ROOT / ".infra-data" / f"faust-{prefix}")
        processors = jobtrail("processors", "--idle-stop-s", "12", "--metrics-port", "8001")
        query = f'jobtrail_processor_events_in_total{{topic="{prefix}job-events"}}'
        seen = watch_until(prometheus_url, query, processors, sent, wait_s=60)
        assert seen == sent, f"Prometheus saw {seen} processed events, the demo sent {sent}"

        # The Redis projection folds them; Prometheus sees what it applied.
        env["JOBTRAIL_REDIS_PREFIX"] = prefix
        env["JOBTRAIL_REDIS_URL"] = redis_url
        projector = jobtrail("project", "redis", "--idle-stop-s", "12", "--metrics-port", "8002")
        query = 'jobtrail_projection_events_applied_total{projection="redis"}'
        seen = watch_until(prometheus_url, query, projector, sent, wait_s=40)
        assert seen == sent, f"Prometheus saw {seen} applied events, the demo sent {sent}"
        stats = jobtrail("stats")
        out, _ = stats.communicate(timeout=60)
        assert stats.returncode == 0 and "send-email" in out
    finally:
        admin = TopicAdmin(settings)
        admin.delete(name for name in admin.metadata().topics if name.startswith(prefix))
        delete_redis_prefix(redis_url, prefix)
