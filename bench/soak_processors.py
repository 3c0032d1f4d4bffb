"""`make soak-processors`: the processors under a hot job name for a long run, with crashes and a
second worker coming and going. Not a test (20 minutes by default); it prints its figures and
exits non-zero when a check fails.

- Load: the demo simulator played in real time (event time = wall time), with one job name
  ("hot") taking most arrivals: --rate attempt ends a second for it (100 by default), beside the
  demo's other names.
- Worker A runs throughout and is killed with SIGKILL every --kill-every-s seconds (5 minutes),
  then started again at once, as a supervisor would. Worker B joins at 30% of the run and leaves
  (SIGTERM) at 60%.
- Every 10 s: each worker's resident memory (RSS) and the job-events lag.
- The dedup window and the horizon are shortened (2 minutes, 1 minute) so that the state they
  bound reaches its plateau within the run.
- At the end the producer stops, the workers drain and stop, and three checks are made:
  1. every attempt outcome equals `processors.outcomes.recompute` of the events sent (copies
     the same);
  2. the largest record on any table changelog stays far below the broker's 1 MB limit (--max-
     record-kb, 256 by default), the hot name's concurrency row above all;
  3. memory plateaus: worker A's peak RSS in the last third of the run is within 25% of its
     peak in the middle third (both after restarts, so comparable).
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from bench.processors import create_topics, delete_everything, free_port, start_worker
from processors.outcomes import recompute
from processors.topology import changelog_topic_names
from schemas.derived import AttemptOutcome, decode_attempt_outcome
from schemas.job_event import JobEvent
from streams.admin import TopicAdmin
from streams.demo.profiles import PROFILES
from streams.demo.workload import Workload, WorkloadConfig
from streams.producer import JobEventProducer
from streams.reader import read_messages
from streams.settings import KafkaSettings

HOT = "hot"
SAMPLE_EVERY_S = 10.0
# The processors' state is bounded by their windows: a job's event ids for the dedup window (7
# days by default), a finished job's rows for the horizon (10 minutes). The soak shortens both,
# so that the plateau they bound is reached well within the run (unless already set).
WINDOWS = {"JOBTRAIL_PROCESSORS_DEDUP_WINDOW_S": "120", "JOBTRAIL_PROCESSORS_HORIZON_MS": "60000"}


def hot_workload(rate: float, start: datetime, seed: int) -> Iterator[JobEvent]:
    """The demo simulator with a hot job name taking `rate` arrivals a second (each attempt
    ends once: `rate` ends a second, a few more with retries) beside the demo's names."""
    base = PROFILES[0]
    hot = dataclasses.replace(base, name=HOT, weight=sum(p.weight for p in PROFILES) * 9,
                              median_s=0.4, sigma=0.5, progress_steps=0)  # fmt: skip
    profiles = (hot, *PROFILES)
    config = WorkloadConfig(jobs=None, workers=40, slots=8, arrivals_per_s=rate / 0.9,
                            start=start, profiles=profiles)  # fmt: skip
    return Workload(config, seed=seed).events()


@dataclass
class Soak:
    kafka: KafkaSettings
    data_dir: Path
    sent: list[JobEvent] = field(default_factory=list)
    rss: dict[str, list[tuple[float, int]]] = field(default_factory=dict)
    stop_producing: threading.Event = field(default_factory=threading.Event)
    kills: int = 0

    def produce(self, rate: float, seed: int) -> None:
        """Sends the events as their event time comes round (real time)."""
        start = datetime.now(UTC)
        with JobEventProducer(self.kafka) as producer:
            for event in hot_workload(rate, start, seed):
                if self.stop_producing.is_set():
                    return
                wait = (event.occurred_at - datetime.now(UTC)).total_seconds()
                if wait > 0:
                    producer.flush(0)  # what is due goes out before the wait
                    time.sleep(wait)
                producer.send(event)
                self.sent.append(event)

    def sample(self, name: str, process: subprocess.Popen[bytes] | None, now: float) -> None:
        if process is None or process.poll() is not None:
            return
        try:
            status = Path(f"/proc/{process.pid}/status").read_text()
        except OSError:
            return
        kb = next(int(line.split()[1]) for line in status.splitlines() if line.startswith("VmRSS"))
        self.rss.setdefault(name, []).append((now, kb))


def largest_changelog_records(kafka: KafkaSettings) -> dict[str, int]:
    sizes: dict[str, int] = {}
    for topic in changelog_topic_names(kafka):
        biggest = 0
        for message in read_messages(kafka, topic, idle_s=3):
            biggest = max(biggest, len(message.value() or b""))
        sizes[topic.removeprefix(kafka.topic_prefix)] = biggest
    return sizes


def check_outcomes(kafka: KafkaSettings, events: list[JobEvent]) -> tuple[bool, str]:
    copies: dict[tuple[str, int], set[AttemptOutcome]] = {}
    delivered = 0
    topic = f"{kafka.topic_prefix}attempt-outcomes"
    for message in read_messages(kafka, topic, idle_s=5):
        outcome = decode_attempt_outcome(message.value() or b"")
        copies.setdefault((outcome.job_id, outcome.attempt), set()).add(outcome)
        delivered += 1
    differing = sum(1 for values in copies.values() if len(values) > 1)
    streamed = {key: next(iter(values)) for key, values in copies.items()}
    expected = recompute(events)
    missing = len(expected.keys() - streamed.keys())
    wrong = sum(1 for key, value in expected.items() if key in streamed and streamed[key] != value)
    extra = len(streamed.keys() - expected.keys())
    ok = differing == missing == wrong == extra == 0
    return ok, (f"{len(expected):,} outcomes expected, {delivered:,} delivered "
                f"({delivered - len(streamed):,} duplicates); differing copies {differing}, "
                f"missing {missing}, wrong {wrong}, unexpected {extra}")  # fmt: skip


def peak(samples: list[tuple[float, int]], start: float, end: float) -> int:
    return max((kb for at, kb in samples if start <= at < end), default=0)


def drive(soak: Soak, args: argparse.Namespace, duration: float) -> None:
    """Runs the load and the workers for `duration` seconds, then drains with one worker that
    stops once idle."""
    kafka, data_dir = soak.kafka, soak.data_dir
    producer = threading.Thread(target=soak.produce, args=(args.rate, args.seed), daemon=True)
    producer.start()
    began = time.monotonic()
    ports = {"a": free_port(), "b": free_port()}
    a = start_worker(kafka, data_dir, ports["a"], 0, idle_stop_s=0)
    b: subprocess.Popen[bytes] | None = None
    next_kill, next_sample = began + args.kill_every_s, began
    try:
        while (now := time.monotonic()) - began < duration:
            elapsed = now - began
            if now >= next_kill:
                a.send_signal(signal.SIGKILL)
                a.wait()
                soak.kills += 1
                print(f"  {elapsed / 60:5.1f} min: worker a killed (-9) and started again")
                a = start_worker(kafka, data_dir, ports["a"], 10 + soak.kills, idle_stop_s=0)
                next_kill += args.kill_every_s
            if b is None and 0.3 <= elapsed / duration < 0.6:
                print(f"  {elapsed / 60:5.1f} min: worker b joins")
                b = start_worker(kafka, data_dir, ports["b"], 1, idle_stop_s=0)
            if b is not None and b.poll() is None and elapsed / duration >= 0.6:
                print(f"  {elapsed / 60:5.1f} min: worker b leaves")
                b.send_signal(signal.SIGTERM)
                b.wait(timeout=120)
            if now >= next_sample:
                soak.sample("a", a, elapsed)
                soak.sample("b", b, elapsed)
                rss = soak.rss.get("a", [(0.0, 0)])[-1][1]
                print(f"  {elapsed / 60:5.1f} min: {len(soak.sent):,} events sent, "
                      f"worker a RSS {rss / 1024:.0f} MB")  # fmt: skip
                next_sample += SAMPLE_EVERY_S
            time.sleep(0.5)
    finally:
        soak.stop_producing.set()
        producer.join(timeout=60)
    a.send_signal(signal.SIGTERM)
    a.wait(timeout=120)
    last = start_worker(kafka, data_dir, ports["a"], 99)
    if last.wait(timeout=900) != 0:
        print(f"the draining worker failed: see {data_dir}", file=sys.stderr)
        sys.exit(1)


def report(soak: Soak, args: argparse.Namespace, duration: float) -> bool:
    """Prints the figures and checks; whether all passed."""
    events = soak.sent
    ok_outcomes, outcome_line = check_outcomes(soak.kafka, events)
    sizes = largest_changelog_records(soak.kafka)
    ok_records = max(sizes.values(), default=0) <= args.max_record_kb * 1024
    samples = soak.rss.get("a", [])
    middle = peak(samples, duration / 3, 2 * duration / 3)
    final = peak(samples, 2 * duration / 3, duration + 1)
    ok_memory = middle > 0 and final <= middle * 1.25
    print(f"\nevents sent: {len(events):,} in {duration / 60:g} min "
          f"({len(events) / duration:,.0f}/s); kills: {soak.kills}")  # fmt: skip
    hot_ends = sum(1 for e in events if e.job_name == HOT and e.type.ends_attempt)
    print(f"hot name: {hot_ends / duration:,.0f} attempt ends/s")
    print(f"outcomes: {outcome_line} -> {'ok' if ok_outcomes else 'FAILED'}")
    print("largest changelog record per table: "
          + ", ".join(f"{name} {size / 1024:.1f} KB" for name, size in sorted(sizes.items()))
          + f" -> {'ok' if ok_records else 'FAILED'} (limit {args.max_record_kb} KB)")  # fmt: skip
    print(f"worker a peak RSS: middle third {middle / 1024:.0f} MB, last third "
          f"{final / 1024:.0f} MB -> {'ok' if ok_memory else 'FAILED'}")  # fmt: skip
    return ok_outcomes and ok_records and ok_memory


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--minutes", type=float, default=20.0)
    parser.add_argument("--rate", type=float, default=100.0, help="hot name's ends per second")
    parser.add_argument("--kill-every-s", type=float, default=300.0)
    parser.add_argument("--max-record-kb", type=int, default=256)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", action="store_true", help="keep the topics afterwards")
    args = parser.parse_args()

    for name, value in WINDOWS.items():
        os.environ.setdefault(name, value)  # the workers inherit the environment
    kafka = KafkaSettings(topic_prefix=f"soak-{uuid.uuid4().hex[:8]}.")
    admin = TopicAdmin(kafka)
    create_topics(admin, kafka)
    soak = Soak(kafka, Path(tempfile.mkdtemp(prefix="jobtrail-soak-")))
    print(f"soak: {args.minutes:g} min, hot name at {args.rate:g} ends/s, kill -9 every "
          f"{args.kill_every_s:g} s; topics {kafka.topic_prefix}*")  # fmt: skip
    print(f"worker logs: {soak.data_dir}; " + ", ".join(f"{name}={os.environ[name]}"
                                                         for name in WINDOWS))  # fmt: skip
    duration = args.minutes * 60
    drive(soak, args, duration)
    passed = report(soak, args, duration)
    if not args.keep:
        delete_everything(admin, kafka.topic_prefix)
    sys.exit(0 if passed else 1)


if __name__ == "__main__":
    main()
