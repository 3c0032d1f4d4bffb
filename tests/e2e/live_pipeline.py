"""The whole pipeline as `make up` runs it, on a topic, Redis and Couchbase prefix of its own and
on the metrics ports Prometheus scrapes (infra/prometheus/prometheus.yml): a live demo, the
processors, an embedder, the three projections and `jobtrail serve` on 8080, each its own process.
Shared by the tests that need the running product: the dashboards' queries and the web UI."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from streams.admin import TopicAdmin
from streams.settings import KafkaSettings
from tests.conftest import REPO_ROOT, catalog_of, unique_prefix
from tests.integration.stores import couchbase_store, delete_redis_prefix

API_PORT = 8080
METRICS_PORTS = (8000, 8001, 8002, 8003, 8004, 8005, API_PORT)
TOKEN = "ui-test-token"
COMPONENTS = {
    "processors": ["processors"],
    "embedder": ["embed"],
    "project-redis": ["project", "redis"],
    "project-couchbase": ["project", "couchbase"],
    "project-analytics": ["project", "analytics"],
    "api": ["serve", "--port", str(API_PORT)],
    # Event time from now on, at a pace the two CPUs keep up with while everything runs.
    "demo": ["demo", "--jobs", "1000000", "--rate", "150", "--start", "now", "--seed", "7",
             "--metrics-port", "8000"],
}  # fmt: skip


@dataclass
class LivePipeline:
    url: str
    env: dict[str, str]
    logs: Path
    processes: dict[str, subprocess.Popen[bytes]]

    def check_alive(self) -> None:
        for name, process in self.processes.items():
            if process.poll() is not None:
                raise AssertionError(f"{name} exited ({process.returncode}):\n{self.tail(name)}")

    def tail(self, name: str, lines: int = 30) -> str:
        text = (self.logs / f"{name}.log").read_text(errors="replace")
        return "\n".join(text.splitlines()[-lines:])


def busy_ports() -> list[int]:
    busy = []
    for port in METRICS_PORTS:
        with socket.socket() as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            try:
                probe.bind(("127.0.0.1", port))
            except OSError:
                busy.append(port)
    return busy


@contextmanager
def live_pipeline(
    kafka_bootstrap: str, redis_url: str, couchbase_connstr: str, logs: Path
) -> Iterator[LivePipeline]:
    busy = busy_ports()
    assert not busy, f"ports {busy} are taken: stop `make up` (make down) before these tests"
    kafka = KafkaSettings(bootstrap_servers=kafka_bootstrap, topic_prefix=unique_prefix("."),
                          connect_timeout_s=15)  # fmt: skip
    redis_prefix, couchbase_prefix = unique_prefix(":"), unique_prefix("::")
    env = {**os.environ, "JOBTRAIL_BOOTSTRAP_SERVERS": kafka_bootstrap,
           "JOBTRAIL_TOPIC_PREFIX": kafka.topic_prefix, "JOBTRAIL_REDIS_URL": redis_url,
           "JOBTRAIL_REDIS_PREFIX": redis_prefix, "JOBTRAIL_COUCHBASE_CONNSTR": couchbase_connstr,
           "JOBTRAIL_COUCHBASE_PREFIX": couchbase_prefix, "JOBTRAIL_API_TOKEN": TOKEN,
           "JOBTRAIL_CATEGORIES_REFRESH_S": "2", "JOBTRAIL_EMBED_BATCH_WAIT_S": "0.2",
           "JOBTRAIL_PROCESSORS_DATA_DIR": str(logs / "faust")}  # fmt: skip
    admin = TopicAdmin(kafka)
    admin.create(catalog_of(kafka).all())
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name, args in COMPONENTS.items():
            with (logs / f"{name}.log").open("wb") as log:
                processes[name] = subprocess.Popen(
                    [sys.executable, "-m", "jobtrail.cli", *args], env=env, cwd=REPO_ROOT,
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )  # fmt: skip
        pipeline = LivePipeline(f"http://127.0.0.1:{API_PORT}", env, logs, processes)
        deadline = time.monotonic() + 90
        while True:
            pipeline.check_alive()
            try:
                urllib.request.urlopen(pipeline.url + "/openapi.json", timeout=2).read()
                break
            except OSError:
                assert time.monotonic() < deadline, "jobtrail serve did not answer in 90 s"
                time.sleep(0.5)
        yield pipeline
    finally:
        stop_all(processes)
        # Each clean-up on its own: one that fails leaves the others done.
        for cleanup in (
            lambda: delete_redis_prefix(redis_url, redis_prefix),
            lambda: drop_documents(couchbase_connstr, couchbase_prefix),
            lambda: admin.delete(
                n for n in admin.metadata().topics if n.startswith(kafka.topic_prefix)
            ),
        ):
            try:
                cleanup()
            except Exception as exc:  # report, go on
                print(f"clean-up failed: {exc!r}")


def stop_all(processes: dict[str, subprocess.Popen[bytes]]) -> None:
    """SIGTERM to each component's process group (its children too), SIGKILL after 30 s."""
    for process in processes.values():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + 30
    for process in processes.values():
        try:
            process.wait(max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait(10)


def drop_documents(connstr: str, prefix: str) -> None:
    documents = couchbase_store(connstr, prefix)
    documents.drop(documents.current_generation())
