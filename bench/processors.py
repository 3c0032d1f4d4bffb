"""`make bench-processors`: the Faust stream processors against a bare confluent-kafka loop.

Both read the same N demo JobEvents (100,000 by default) from a fresh `<prefix>job-events`
topic, on this machine, in one run:
  1. the reference: one process, one confluent-kafka consumer (batch consume) and one producer
     doing the essential work of stage 1 through `processors.ingest.ingest`, the pure function
     the Faust agent calls too: decode (SingleObjectCodec), validate (`violation`), fingerprint
     the error of FAILED events; then a small JSON sighting keyed by the fingerprint per FAILED
     event to an output topic (bad records to a DLQ). Timed from the first record consumed until
     the last produced record is acknowledged and the offsets are committed, so joining the
     group is not counted;
  2. `jobtrail processors` (Faust) as a subprocess, watched from outside about every 0.1 s: its
     Prometheus counter of consumed job-events and the high watermarks of attempt-outcomes.
     Ingest: N over the time from its first to its last job-event consumed. End to end: N over
     the time from its first job-event consumed until the last expected attempt outcome is on the
     broker (expected: `processors.outcomes.recompute` of the same events). Startup (Faust's
     rebalance and table recovery) and the idle wait before the worker exits are excluded from
     both. End to end includes the processors' own idle_after wait (1 s here): the last outcomes
     are released only when the event-time watermark says no earlier event can still come, and
     that is part of what the pipeline does. The worker's CPU time is reported beside its wall
     time, which tells a CPU-bound worker from one starved by something else on the machine.
  3. the Faust floor (`bench.faust_floor`): a Faust app on the same settings that only takes the
     job-events in batches and acknowledges them: Faust's own cost per record consumed, which no
     work in the stages can go below;
  4. two `jobtrail processors` workers at once on a copy of the events (their own consumer
     group), started together and sharing the partitions: the scaling of a second worker on the
     same machine (skip with --no-scaling).
The pipeline does more than the reference (attempt tracking, two repartitions, fingerprint dedup,
concurrency counting, changelog-backed tables), so the ratio is the price of the whole of it,
framework and extra stages together. The runs interleave over --rounds rounds (3 by default;
each round a fresh prefix, the same events) and medians are reported.
"""

from __future__ import annotations

import argparse
import itertools
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaException,
    Message,
    Producer,
    TopicPartition,
)
from prometheus_client.parser import text_string_to_metric_families

from bench.common import REPO_ROOT, Measurement, write_result
from bench.produce import median_of
from processors.dedup import Sighting
from processors.fingerprint import fingerprint
from processors.ingest import Rejected, ingest
from processors.outcomes import recompute
from schemas.codec import SingleObjectCodec
from schemas.job_event import JobEvent
from streams.admin import TopicAdmin
from streams.consumer import BatchConsumer
from streams.demo.workload import Workload, WorkloadConfig
from streams.dlq import DeadLetter, DeadLetterWriter
from streams.kafka_config import common_config, producer_config
from streams.producer import JobEventProducer
from streams.settings import KafkaSettings, ProducerSettings
from streams.topics import TopicSpec, topic_catalog

TARGET_INGEST = 15_000
TARGET_END_TO_END = 10_000
SEED = 11
SAMPLE_S = 0.1  # the resolution of the Faust figures: boundaries are midpoints of one interval
IDLE_AFTER_S = 1.0
IDLE_STOP_S = 3.0
STALL_S = 60.0  # no progress for this long: something is broken, stop rather than hang
METRIC_IN = "jobtrail_processor_events_in"


# -- topics and events ---------------------------------------------------------------------------


def reference_topics(kafka: KafkaSettings) -> tuple[str, str]:
    """Where the reference writes (sightings, dead letters): apart from the processors' topics,
    so neither run reads or counts the other's output."""
    base = f"{kafka.topic_prefix}bench.reference."
    return base + "sightings", base + "dlq"


def create_topics(admin: TopicAdmin, kafka: KafkaSettings) -> None:
    catalog = topic_catalog(kafka.topic_prefix, kafka.partitions, kafka.replication_factor)
    extra = [
        TopicSpec(name, "fingerprint", "JSON", kafka.partitions, kafka.replication_factor)
        for name in reference_topics(kafka)
    ]
    admin.create([*catalog.all(), *extra])


def delete_everything(admin: TopicAdmin, prefix: str) -> None:
    """Every topic and consumer group under `prefix`: the catalog's, the reference's and those
    Faust made for itself (repartition topics, table changelogs, its assignor topic)."""
    topics = [name for name in admin.metadata().topics if name.startswith(prefix)]
    admin.delete(topics)
    listed = admin.client.list_consumer_groups(request_timeout=10).result()
    groups = [g.group_id for g in listed.valid if g.group_id.startswith(prefix)]
    if groups:
        for group, future in admin.client.delete_consumer_groups(
            groups, request_timeout=10
        ).items():
            try:
                future.result()
            except KafkaException as exc:  # a worker still in it: left behind, say so
                print(f"could not delete consumer group {group}: {exc}", file=sys.stderr)


def produce_events(kafka: KafkaSettings, events: Sequence[JobEvent]) -> None:
    with JobEventProducer(kafka) as producer:
        producer.send_all(events)


# -- 1. the reference ----------------------------------------------------------------------------


class ReferenceStage:
    """Stage 1's essential work on one record, with confluent-kafka and nothing else."""

    def __init__(self, kafka: KafkaSettings, producer: Producer) -> None:
        self.codec = SingleObjectCodec()
        self.producer = producer
        self.sightings, dlq_topic = reference_topics(kafka)
        self.dead_letters = DeadLetterWriter(producer, dlq_topic)

    def handle(self, message: Message) -> None:
        # The same pure function the Faust agent calls: SingleObjectCodec.decode, validation's
        # violation(), fingerprint() of FAILED events' errors; only the moving of records differs.
        result = ingest(self.codec, message.value(), message.topic() or "")
        if isinstance(result, Rejected):
            bad = result.violation
            self.dead_letters.write(DeadLetter.of(message, bad.reason, bad.detail))
        elif result.sighting is not None:
            self.sight(result.sighting)

    def sight(self, sighting: Sighting) -> None:
        value = json.dumps(sighting.to_json()).encode()
        while True:
            try:
                self.producer.produce(self.sightings, value, sighting.fingerprint.encode())
                return
            except BufferError:  # back-pressure: let deliveries drain, as the SDK does
                self.producer.poll(0.05)


def run_reference(kafka: KafkaSettings, events: int) -> Measurement:
    # The bench computed the expected outcomes in this process, which filled fingerprint()'s
    # cache; the Faust worker starts with an empty one, so must the reference.
    fingerprint.cache_clear()
    catalog = topic_catalog(kafka.topic_prefix)
    consumer = BatchConsumer(
        kafka, f"{kafka.topic_prefix}bench-reference", [catalog.job_events.name], batch_size=1000
    ).start()
    producer = Producer(producer_config(kafka, ProducerSettings()))
    stage = ReferenceStage(kafka, producer)
    try:
        started, consumed, last_record = 0.0, 0, time.monotonic()
        while consumed < events:
            batch = consumer.poll_batch()
            if not batch:
                if time.monotonic() - last_record > STALL_S:
                    raise SystemExit(f"reference: consumed {consumed} of {events}, then nothing")
                continue
            if not consumed:
                started = time.perf_counter()  # joining the group is not the work
            last_record = time.monotonic()
            for message in batch:
                stage.handle(message)
            producer.poll(0)  # serve delivery reports, so the buffer drains while we consume
            consumed += len(batch)
        if producer.flush(60):
            raise SystemExit("reference: records left undelivered")
        consumer.consumer.commit(asynchronous=False)
        seconds = time.perf_counter() - started
    finally:
        consumer.close()
    name = "reference: bare confluent-kafka loop (stage-1 work)"
    return Measurement(name, consumed, seconds)


# -- 2. the Faust processors ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Sample:
    at: float  # time.monotonic()
    consumed: tuple[int, ...]  # job-events records each worker has consumed
    outcomes: int  # records on the attempt-outcomes topic

    @property
    def total(self) -> int:
        return sum(self.consumed)


@dataclass(frozen=True, slots=True)
class FaustRun:
    ingest: Measurement
    end_to_end: Measurement
    startup_s: float
    cpu_s: float = 0.0  # the workers' user + system CPU time, startup included
    wall_s: float = 0.0  # from their start to the exit of the last
    workers: int = 1


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def start_worker(
    kafka: KafkaSettings, data_dir: Path, port: int, index: int, *,
    idle_stop_s: float = IDLE_STOP_S, guarantee: str = "at_least_once",
) -> subprocess.Popen[bytes]:  # fmt: skip
    """A `jobtrail processors` worker; it stops once idle for `idle_stop_s` (0: runs until
    stopped, as `--idle-stop-s 0` means)."""
    env = {
        **os.environ,
        "JOBTRAIL_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "JOBTRAIL_TOPIC_PREFIX": kafka.topic_prefix,
        "JOBTRAIL_PROCESSORS_DATA_DIR": str(data_dir / f"worker-{index}"),
        "JOBTRAIL_PROCESSORS_IDLE_AFTER_S": str(IDLE_AFTER_S),
        "JOBTRAIL_PROCESSORS_PROCESSING_GUARANTEE": guarantee,
    }
    # The metrics port is on, unlike a quiet `--metrics-port 0` run: Faust commits offsets only
    # every few seconds, too coarse to time from; its consumed-records counter moves per record.
    command = [sys.executable, "-m", "jobtrail.cli", "processors"]
    command += ["--metrics-port", str(port), "--idle-stop-s", str(idle_stop_s)]
    with (data_dir / f"worker-{index}.log").open("wb") as log:  # the child keeps its own descriptor
        return subprocess.Popen(
            command, env=env, cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=log
        )


def scrape_consumed(url: str, topic: str) -> int | None:
    """The worker's consumed-records count for `topic`; None while it does not answer."""
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            text = response.read().decode()
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None
    for family in text_string_to_metric_families(text):
        if family.name != METRIC_IN:
            continue
        for sample in family.samples:
            if sample.name.endswith("_total") and sample.labels.get("topic") == topic:
                return int(sample.value)
    return 0  # serving, but nothing consumed yet: the labelled series does not exist yet


def written(consumer: Consumer, topic: str, partitions: int) -> int:
    """Records on `topic`: the sum of its partitions' high watermarks (it starts empty)."""
    return sum(
        consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=5, cached=False)[1]
        for p in range(partitions)
    )


class CommittedCount:
    """Records of `topic` a read_committed consumer has seen so far. Under exactly_once the high
    watermarks also count transaction markers and records of open transactions, so the outcomes
    are counted this way instead (a consumer outside any group, reading from the start)."""

    def __init__(self, kafka: KafkaSettings, topic: str) -> None:
        self._consumer = Consumer({**common_config(kafka, "bench"),
                                   "group.id": f"bench-{uuid.uuid4()}",
                                   "isolation.level": "read_committed"})  # fmt: skip
        self._consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING)
                               for p in range(kafka.partitions)])  # fmt: skip
        self.seen = 0

    def __call__(self) -> int:
        while batch := self._consumer.consume(10_000, 0.05):
            self.seen += sum(1 for message in batch if message.error() is None)
        return self.seen

    def close(self) -> None:
        self._consumer.close()


def take_sample(
    last: Sample, running: Sequence[bool], ports: Sequence[int], watcher: Consumer,
    kafka: KafkaSettings, committed: CommittedCount | None,
) -> Sample:  # fmt: skip
    """The counts now; a worker that has exited (or not yet serves) keeps its last count."""
    catalog = topic_catalog(kafka.topic_prefix)
    before = time.monotonic()
    consumed = tuple(
        (scrape_consumed(f"http://127.0.0.1:{port}/metrics", catalog.job_events.name)
         if alive else None) or previous
        for port, alive, previous in zip(ports, running, last.consumed, strict=True)
    )  # fmt: skip
    outcomes = (committed() if committed is not None
                else written(watcher, catalog.attempt_outcomes.name, kafka.partitions))  # fmt: skip
    at = (before + time.monotonic()) / 2  # the readings take a few milliseconds
    return Sample(at, consumed, outcomes)


def watch_workers(
    processes: Sequence[subprocess.Popen[bytes]], kafka: KafkaSettings, ports: Sequence[int],
    exactly_once: bool = False,
) -> list[Sample]:  # fmt: skip
    """Samples the workers until all exit (each stops itself once idle), plus once after."""
    # A consumer outside any group, only for watermark queries: it never joins or commits.
    watcher = Consumer({**common_config(kafka, "bench"), "group.id": f"bench-{uuid.uuid4()}"})
    outcomes_topic = topic_catalog(kafka.topic_prefix).attempt_outcomes.name
    committed = CommittedCount(kafka, outcomes_topic) if exactly_once else None
    samples = [Sample(time.monotonic(), (0,) * len(ports), 0)]
    moved_at = samples[0].at
    try:
        while True:
            running = [process.poll() is None for process in processes]
            sample = take_sample(samples[-1], running, ports, watcher, kafka, committed)
            if (sample.consumed, sample.outcomes) != (samples[-1].consumed, samples[-1].outcomes):
                moved_at = sample.at
            samples.append(sample)
            if not any(running):
                return samples
            if sample.at - moved_at > STALL_S:
                for process in processes:
                    process.kill()
                raise SystemExit("processors: no progress for a minute; killed the workers")
            time.sleep(SAMPLE_S)
    finally:
        watcher.close()
        if committed is not None:
            committed.close()


def reached(samples: Sequence[Sample], count: Callable[[Sample], int], target: int) -> float:
    """When `count` first reached `target`: the middle of the sampling interval it happened in."""
    for before, after in itertools.pairwise(samples):
        if count(before) < target <= count(after):
            return (before.at + after.at) / 2
    raise SystemExit(f"processors: never reached {target} (last {count(samples[-1])})")


def measure_faust(samples: Sequence[Sample], events: int, expected: int, workers: int) -> FaustRun:
    final = samples[-1]
    # At least once, a rebalance between workers can consume a record twice: never fewer.
    if final.total < events or final.outcomes < expected:
        raise SystemExit(
            f"processors: consumed {final.total} of {events} job-events, wrote"
            f" {final.outcomes} of {expected} attempt outcomes"
        )
    first_in = reached(samples, lambda s: s.total, 1)
    last_in = reached(samples, lambda s: s.total, events)
    last_out = reached(samples, lambda s: s.outcomes, expected)
    label = "faust processors" if workers == 1 else f"faust processors, {workers} workers"
    return FaustRun(
        ingest=Measurement(f"{label}: ingest (job-events consumed)", events, last_in - first_in),
        end_to_end=Measurement(
            f"{label}: end to end (last attempt outcome)", events, last_out - first_in
        ),
        startup_s=first_in - samples[0].at,
        workers=workers,
    )


def run_faust(
    kafka: KafkaSettings, events: int, expected: int, workers: int = 1,
    guarantee: str = "at_least_once",
) -> FaustRun:  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-processors-") as tmp:
        data_dir = Path(tmp)
        ports = [free_port() for _ in range(workers)]
        cpu_before = children_cpu_s()
        processes = [start_worker(kafka, data_dir, port, i, guarantee=guarantee)
                     for i, port in enumerate(ports)]  # fmt: skip
        try:
            samples = watch_workers(processes, kafka, ports, guarantee == "exactly_once")
        except SystemExit as stalled:
            tails = [(data_dir / f"worker-{i}.log").read_text(errors="replace")[-3000:]
                     for i in range(workers)]  # fmt: skip
            message = f"{stalled}; the workers' logs end:\n" + "\n---\n".join(tails)
            raise SystemExit(message) from stalled
        finally:
            for process in processes:
                if process.poll() is None:
                    process.kill()
                process.wait()
        for index, process in enumerate(processes):
            if process.returncode != 0:
                log = (data_dir / f"worker-{index}.log").read_text(errors="replace")
                raise SystemExit(f"processors exited with {process.returncode}:\n{log[-2000:]}")
        # CPU beside wall time tells a CPU-bound worker from one that waited: for the broker,
        # or for a core that something else on this machine was using.
        return replace(
            measure_faust(samples, events, expected, workers),
            cpu_s=children_cpu_s() - cpu_before,
            wall_s=samples[-1].at - samples[0].at,
        )


def children_cpu_s() -> float:
    """User + system CPU of this process's waited-for children (the worker is the only one)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


# -- the run -------------------------------------------------------------------------------------


def run_floor(kafka: KafkaSettings, events: int) -> Measurement:
    """Faust taking the job-events in batches and acknowledging them, nothing else
    (`bench.faust_floor`): what Faust itself costs per record consumed on this machine."""
    env = {**os.environ, "JOBTRAIL_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
           "JOBTRAIL_TOPIC_PREFIX": kafka.topic_prefix}  # fmt: skip
    with tempfile.TemporaryDirectory(prefix="bench-faust-floor-") as tmp:
        result = Path(tmp) / "seconds"
        subprocess.run([sys.executable, "-m", "bench.faust_floor", str(events), str(result)],
                       env=env, cwd=REPO_ROOT, capture_output=True, timeout=300,
                       check=True)  # fmt: skip
        seconds = float(result.read_text())
    return Measurement("faust floor: take + acknowledge only, no work", events, seconds)


Round = tuple[Measurement, Measurement, FaustRun, FaustRun | None]  # refs, one worker, two


def run_round(
    admin: TopicAdmin, prefix: str, events: Sequence[JobEvent], expected: int, scaling: bool,
    guarantee: str,
) -> Round:  # fmt: skip
    kafka = KafkaSettings(topic_prefix=prefix)
    create_topics(admin, kafka)
    print(f"producing {len(events):,} demo events to {prefix}job-events ...", flush=True)
    produce_events(kafka, events)
    reference = run_reference(kafka, len(events))
    print(f"  reference: {reference.events_per_s:,.0f} events/s", flush=True)
    floor = run_floor(kafka, len(events))
    print(f"  faust floor: {floor.events_per_s:,.0f} events/s", flush=True)
    one = run_faust(kafka, len(events), expected, guarantee=guarantee)
    print_run(one)
    if not scaling:
        return reference, floor, one, None
    # Two workers need a consumer group of their own: the same events under another prefix.
    kafka = KafkaSettings(topic_prefix=f"{prefix}two.")
    create_topics(admin, kafka)
    produce_events(kafka, events)
    two = run_faust(kafka, len(events), expected, workers=2, guarantee=guarantee)
    print_run(two)
    return reference, floor, one, two


def print_run(faust: FaustRun) -> None:
    print(
        f"  processors ({faust.workers} worker{'s' if faust.workers > 1 else ''}): ingest"
        f" {faust.ingest.events_per_s:,.0f} events/s, end to end"
        f" {faust.end_to_end.events_per_s:,.0f} events/s (startup {faust.startup_s:.1f} s,"
        f" workers' CPU {faust.cpu_s:.0f} s in {faust.wall_s:.0f} s)",
        flush=True,
    )


def report(rounds: list[Round]) -> list[Measurement]:
    results = [
        median_of([reference for reference, _, _, _ in rounds]),
        median_of([floor for _, floor, _, _ in rounds]),
        median_of([one.ingest for _, _, one, _ in rounds]),
        median_of([one.end_to_end for _, _, one, _ in rounds]),
    ]
    twos = [two for _, _, _, two in rounds if two is not None]
    if twos:
        results += [median_of([two.ingest for two in twos]),
                    median_of([two.end_to_end for two in twos])]  # fmt: skip
    reference, _, ingest_, end_to_end = results[:4]
    label = "1 round" if len(rounds) == 1 else f"median of {len(rounds)} rounds"
    print(f"\n{label}, {reference.events:,} events, {os.cpu_count()} CPUs")
    print(f"{'run':56} {'events/s':>10} {'µs/event':>10} {'vs ref':>7}")
    for result in results:
        ratio = result.events_per_s / reference.events_per_s
        print(
            f"{result.name:56} {result.events_per_s:10,.0f} {result.us_per_event:10.2f}"
            f" {ratio:7.2f}"
        )
    print_notes([one for _, _, one, _ in rounds])
    print(
        f"targets (the issue) on this {os.cpu_count()}-CPU machine: ingest >="
        f" {TARGET_INGEST:,} events/s {verdict(ingest_, TARGET_INGEST)}, end to end >="
        f" {TARGET_END_TO_END:,} {verdict(end_to_end, TARGET_END_TO_END)}"
    )
    if twos:
        two_ingest, two_end = results[4:]
        print(
            f"a second worker: ingest x{two_ingest.events_per_s / ingest_.events_per_s:.2f},"
            f" end to end x{two_end.events_per_s / end_to_end.events_per_s:.2f}"
        )
    return results


def verdict(result: Measurement, target: int) -> str:
    return "met" if result.events_per_s >= target else "missed"


def print_notes(fausts: list[FaustRun]) -> None:
    middle = sorted(fausts, key=lambda f: f.startup_s)[len(fausts) // 2]
    cpu = sum(f.cpu_s for f in fausts) / sum(f.wall_s for f in fausts)
    lines = [
        "",
        "not counted in the processors' figures: the worker's startup (rebalance, table recovery;",
        f"median {middle.startup_s:.1f} s) and its {IDLE_STOP_S:.0f} s idle wait before exiting."
        f" End to end includes the {IDLE_AFTER_S:.0f} s idle_after",
        "before the last outcomes are released. Boundaries: first/last change of the worker's",
        "consumed-records counter and of the attempt-outcomes high watermarks, sampled every"
        f" {SAMPLE_S} s",
        f"(midpoints). Worker CPU: {cpu:.0%} of one core over its lifetime (under 100%: it waited,"
        " for the broker",
        "or for a core that something else on this machine was using).",
    ]
    print("\n".join(lines))


def run_dict(faust: FaustRun) -> dict[str, object]:
    return {
        "ingest": faust.ingest.as_dict(),
        "end_to_end": faust.end_to_end.as_dict(),
        "startup_s": round(faust.startup_s, 2),
        "workers_cpu_s": round(faust.cpu_s, 2),
        "workers_wall_s": round(faust.wall_s, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved; medians reported")
    parser.add_argument(
        "--no-scaling", action="store_true", help="skip the run with a second worker"
    )
    parser.add_argument(
        "--guarantee", choices=["at_least_once", "exactly_once"], default="at_least_once",
        help="the workers' processing guarantee",
    )  # fmt: skip
    args = parser.parse_args()

    print(f"preparing {args.events:,} demo events and their expected outcomes ...", flush=True)
    events = list(Workload(WorkloadConfig(jobs=None, events=args.events), seed=SEED).events())
    expected = len(recompute(events))  # what the processors must write, by definition
    base = f"bench-proc-{uuid.uuid4().hex[:8]}-"
    admin = TopicAdmin(KafkaSettings(topic_prefix=base))
    rounds: list[Round] = []
    try:
        for r in range(args.rounds):
            rounds.append(run_round(admin, f"{base}{r}.", events, expected,
                                    not args.no_scaling, args.guarantee))  # fmt: skip
    finally:
        delete_everything(admin, base)
    results = report(rounds)
    path = write_result(
        "processors",
        {
            "events": args.events,
            "guarantee": args.guarantee,
            "attempt_outcomes": expected,
            "results": [r.as_dict() for r in results],
            "rounds": [
                {
                    "reference": ref.as_dict(),
                    "faust_floor": floor.as_dict(),
                    "one_worker": run_dict(one),
                    "two_workers": None if two is None else run_dict(two),
                }
                for ref, floor, one, two in rounds
            ],
            "targets_events_per_s": {"ingest": TARGET_INGEST, "end_to_end": TARGET_END_TO_END},
        },
    )
    print(f"results written to {path.relative_to(REPO_ROOT)}")


if __name__ == "__main__":
    main()
