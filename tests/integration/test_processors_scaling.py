"""Two workers at once share the partitions: 1 -> 2 -> 1 workers while events keep coming, and
the outcomes and requests equal the recomputation, under either guarantee (at least once: a copy
is the same value; exactly once: each comes once, though every rebalance aborts the transactions
open and the tables are rebuilt from the changelogs)."""

from __future__ import annotations

import signal
import time
from collections import Counter
from pathlib import Path

import pytest

from processors.fingerprint import fingerprint
from processors.outcomes import recompute
from schemas.derived import decode_vectorize_request
from streams.demo.workload import Workload, WorkloadConfig
from streams.producer import JobEventProducer
from streams.settings import KafkaSettings
from tests.conftest import catalog_of
from tests.integration.test_processors import (
    assert_each_once,
    delivered_outcomes,
    free_port,
    log_tail,
    processors_kafka,
    records,
    scraped,
    worker,
)

__all__ = ["processors_kafka"]  # the fixture, used by name

SLICE = 500  # events per send of the second half (a quarter second apart)
B_SHARE = 1_500  # job events b consumes before it leaves


def consumed(port: int, topic: str) -> float:
    return scraped(port, f'jobtrail_processor_events_in_total{{topic="{topic}"}}')


def wait_for(condition: object, what: str, data_dir: Path, timeout_s: float = 180) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"{what}; the newest log ends:\n{log_tail(data_dir)}"
        time.sleep(0.1)


@pytest.mark.timeout(600)
@pytest.mark.parametrize("guarantee", ["at_least_once", "exactly_once"])
def test_one_then_two_then_one_worker_under_load(
    processors_kafka: KafkaSettings, tmp_path: Path, guarantee: str
) -> None:
    kafka = processors_kafka
    env = {"JOBTRAIL_PROCESSORS_PROCESSING_GUARANTEE": guarantee}
    catalog = catalog_of(kafka)
    source = catalog.job_events.name
    events = list(Workload(WorkloadConfig(jobs=None, events=24_000), seed=21).events())
    first, second = events[:12_000], events[12_000:]
    with JobEventProducer(kafka) as producer:
        producer.send_all(first)

    port_a, port_b = free_port(), free_port()
    dir_a, dir_b = tmp_path / "a", tmp_path / "b"
    dir_a.mkdir()
    dir_b.mkdir()
    a = worker(kafka, dir_a, idle_stop_s=8, metrics_port=port_a, extra_env=env)
    b = None
    try:
        wait_for(lambda: consumed(port_a, source) >= 3_000, "worker a never got going", dir_a)
        # b joins: the partitions are shared
        b = worker(kafka, dir_b, metrics_port=port_b, extra_env=env)
        # The second half goes out in slices while both run, and b leaves mid-way: the load is
        # on when b takes its share and when a takes it back.
        with JobEventProducer(kafka) as producer:
            for start in range(0, len(second), SLICE):
                producer.send_all(second[start : start + SLICE])
                if b.poll() is None and consumed(port_b, source) >= B_SHARE:
                    b.send_signal(signal.SIGTERM)  # leaves: its partitions go back to a
                time.sleep(0.25)
        wait_for(lambda: b.poll() is not None or consumed(port_b, source) >= B_SHARE,
                 "worker b never took a share", dir_b)  # fmt: skip
        b.send_signal(signal.SIGTERM)
        assert b.wait(timeout=120) == 0, log_tail(dir_b)
        assert a.wait(timeout=300) == 0, log_tail(dir_a)
    finally:
        for process in (a, b):
            if process is not None and process.poll() is None:
                process.kill()
                process.wait()

    streamed, total = delivered_outcomes(kafka)
    assert streamed == recompute(events)

    requested = Counter(
        decode_vectorize_request(value).fingerprint
        for value in records(kafka, catalog.vectorize_requests.name)
    )
    errors = {
        fingerprint(e.error).sha256 for e in events if e.error is not None and e.type == "FAILED"
    }
    assert set(requested) == errors
    assert records(kafka, catalog.job_events_dlq.name) == []
    print(f"{guarantee}: {total} outcomes for {len(streamed)} attempts; "
          f"{sum(requested.values())} requests for {len(errors)} errors")  # fmt: skip
    if guarantee == "exactly_once":
        assert_each_once(total, len(streamed), requested)
