"""`make bench-produce`: the SDK producer against Kafka's own ProducerPerformance.

Three runs in one process, same broker, same record size, acks=all, idempotence, linger,
batch size and compression:
  1. Kafka's ProducerPerformance (Java, kafka-tools), random records of the SDK's mean size;
  2. a bare confluent-kafka loop producing already-encoded events (the librdkafka floor);
  3. JobEventProducer.send(event): Avro encoding + headers + produce, as applications use it.
Events are real demo events (a pool, cycled), about 300 bytes Avro-encoded.
"""

from __future__ import annotations

import argparse
import itertools
import statistics
import uuid

from confluent_kafka import Producer

from bench.common import (
    Measurement,
    Stopwatch,
    java_tool,
    parse_producer_performance,
    write_result,
)
from schemas.codec import SingleObjectCodec
from schemas.job_event import JobEvent
from streams.admin import TopicAdmin
from streams.demo.workload import Workload, WorkloadConfig
from streams.kafka_config import producer_config
from streams.producer import JobEventProducer
from streams.settings import KafkaSettings, ProducerSettings
from streams.topics import TopicSpec

POOL_SIZE = 100_000
TARGET_EVENTS_PER_S = 150_000


def event_pool(size: int) -> list[JobEvent]:
    return list(Workload(WorkloadConfig(jobs=None, events=size), seed=7).events())


def java_props(kafka: KafkaSettings, producer: ProducerSettings) -> list[str]:
    return [
        f"bootstrap.servers={kafka.bootstrap_servers}",
        "acks=all",
        "enable.idempotence=true",
        f"linger.ms={producer.linger_ms}",
        f"batch.size={producer.batch_size}",
        f"compression.type={producer.compression}",
        f"buffer.memory={producer.max_buffered_kbytes * 1024}",
        "max.request.size=10485760",
    ]


def run_reference(topic: str, events: int, size: int, kafka: KafkaSettings) -> Measurement:
    output = java_tool(
        "org.apache.kafka.tools.ProducerPerformance",
        "--topic", topic,
        "--num-records", str(events),
        "--record-size", str(size),
        "--throughput", "-1",
        "--producer-props", *java_props(kafka, ProducerSettings()),
    )  # fmt: skip
    records, per_s = parse_producer_performance(output)
    return Measurement("kafka ProducerPerformance (Java)", records, records / per_s)


def run_bare(
    topic: str, events: int, encoded: list[tuple[bytes, bytes]], kafka: KafkaSettings
) -> Measurement:
    producer = Producer(producer_config(kafka, ProducerSettings()))
    produce, poll = producer.produce, producer.poll
    with Stopwatch() as watch:
        for count, (key, value) in enumerate(itertools.islice(itertools.cycle(encoded), events)):
            while True:
                try:
                    produce(topic, value, key)
                    break
                except BufferError:
                    poll(0.05)
            if count % 10_000 == 0:
                poll(0)
        remaining = producer.flush(120)
    if remaining:
        raise SystemExit(f"bare loop: {remaining} records undelivered")
    return Measurement("bare confluent-kafka loop (pre-encoded)", events, watch.seconds)


def run_sdk(topic: str, events: int, pool: list[JobEvent], kafka: KafkaSettings) -> Measurement:
    with JobEventProducer(kafka, topic=topic) as producer, Stopwatch() as watch:
        producer.send_all(itertools.islice(itertools.cycle(pool), events))
        producer.flush()
    return Measurement("jobtrail JobEventProducer.send (encode + produce)", events, watch.seconds)


def median_of(measurements: list[Measurement]) -> Measurement:
    return sorted(measurements, key=lambda m: m.seconds)[len(measurements) // 2]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument(
        "--repeat", type=int, default=3, help="rounds (each runs all three); medians are reported"
    )
    args = parser.parse_args()

    kafka = KafkaSettings()
    admin = TopicAdmin(kafka)
    run_id = uuid.uuid4().hex[:8]
    topics = {
        f"{name}{r}": f"{kafka.topic_prefix}bench.produce.{name}{r}.{run_id}"
        for name in ("java", "bare", "sdk")
        for r in range(args.repeat)
    }
    admin.create(
        TopicSpec(t, "job_id", "JobEvent", kafka.partitions, kafka.replication_factor)
        for t in topics.values()
    )
    try:
        print(f"preparing {POOL_SIZE:,} demo events ...", flush=True)
        pool = event_pool(POOL_SIZE)
        codec = SingleObjectCodec()
        encoded = [(e.job_id.encode(), codec.encode(e)) for e in pool]
        size = round(statistics.mean(len(v) for _, v in encoded))
        print(
            f"mean encoded size {size} bytes; producing {args.events:,} events per run", flush=True
        )
        rounds: list[list[Measurement]] = []
        for r in range(args.repeat):  # interleaved, so drift in the machine hits all three alike
            rounds.append(
                [
                    run_reference(topics[f"java{r}"], args.events, size, kafka),
                    run_bare(topics[f"bare{r}"], args.events, encoded, kafka),
                    run_sdk(topics[f"sdk{r}"], args.events, pool, kafka),
                ]
            )
            print(f"round {r + 1}: " + ", ".join(f"{m.events_per_s:,.0f}/s" for m in rounds[-1]))
    finally:
        admin.delete(topics.values())

    results = [median_of([round_[i] for round_ in rounds]) for i in range(3)]
    reference = results[0]
    print(f"\nmedian of {args.repeat} rounds")
    print(f"{'run':52} {'events/s':>12} {'µs/event':>10} {'vs Java':>8}")
    for result in results:
        ratio = result.events_per_s / reference.events_per_s
        print(
            f"{result.name:52} {result.events_per_s:12,.0f} {result.us_per_event:10.2f}"
            f" {ratio:8.2f}"
        )
    sdk = results[-1]
    goal = min(TARGET_EVENTS_PER_S, reference.events_per_s / 2)
    verdict = "meets" if sdk.events_per_s >= goal else "misses"
    print(f"\ntarget: >= {goal:,.0f} events/s (min of 150,000 and half of Java); SDK {verdict} it")
    path = write_result(
        "produce",
        {
            "record_size_bytes": size,
            "settings": java_props(kafka, ProducerSettings()),
            "results": [r.as_dict() for r in results],
            "rounds": [[m.as_dict() for m in round_] for round_ in rounds],
            "sdk_vs_java": round(sdk.events_per_s / reference.events_per_s, 3),
            "target_events_per_s": goal,
        },
    )
    print(f"results written to {path.relative_to(path.parents[2])}")


if __name__ == "__main__":
    main()
