"""Rebuild a projection by replaying job-events from the start into a fresh generation.

The live projector keeps running meanwhile, writing the current generation. When the rebuild has
caught up with the end of the log it switches readers to the new generation in one step; the live
projector's next batch finds its generation stale, re-reads where the new generation stands, and
carries on from there. The old generation is then dropped.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, TopicPartition

from projections.ports import PendingBatch, ProjectionStore
from projections.projector import decode_items
from schemas.codec import create_codec
from streams.kafka_config import consumer_config
from streams.metadata import fetch_metadata
from streams.settings import KafkaSettings
from streams.topics import topic_catalog

Progress = Callable[[int, int], None]  # (records replayed, records in the log now)


@dataclass(frozen=True, slots=True)
class RebuildReport:
    old_generation: int
    new_generation: int
    records: int
    undecodable: int
    replay_seconds: float  # from the start until readers were switched
    seconds: float  # including dropping the old generation


def rebuild(
    store: ProjectionStore,
    kafka: KafkaSettings | None = None,
    *,
    batch_size: int = 5000,
    on_progress: Progress | None = None,
    drop_grace_s: float = 2.0,
) -> RebuildReport:
    kafka = kafka or KafkaSettings()
    topic = topic_catalog(kafka.topic_prefix).job_events.name
    codec = create_codec(kafka.schema_registry_url)
    store.setup()
    old = store.current_generation()
    new = store.new_generation()
    # No group: a rebuild reads everything, commits nothing, and never disturbs the live group.
    consumer = Consumer(consumer_config(kafka, f"jobtrail-rebuild-{uuid.uuid4()}"))
    started = time.monotonic()
    records = undecodable = 0
    try:
        metadata = fetch_metadata(consumer, kafka, required=[topic])
        partitions = [
            TopicPartition(topic, p, OFFSET_BEGINNING)
            for p in sorted(metadata.topics[topic].partitions)
        ]
        # Before assign: once fetches are in flight, an uncached watermark query queues behind
        # them (about fetch.wait.max.ms each).
        low = {tp.partition: consumer.get_watermark_offsets(tp, timeout=10)[0] for tp in partitions}
        consumer.assign(partitions)
        pending: PendingBatch | None = None
        while True:
            messages = [m for m in consumer.consume(batch_size, 0.5) if m.error() is None]
            if messages:
                items, failed = decode_items(messages, codec)  # while the last batch applies
                if pending is not None:
                    pending.result()
                pending = store.submit_batch(items, new, check_current=False)
                records += len(messages)
                undecodable += failed
            elif pending is not None:
                pending.result()
                pending = None
            # Every fetch response carries the partition's high watermark: the cached values are
            # as fresh as the last fetch, which is all "caught up" can mean on a live log.
            total, remaining = _log_size(consumer, partitions, low)
            if on_progress is not None:
                on_progress(records, total)
            if not messages and remaining == 0:
                break
        store.switch_to(new)
        replayed = time.monotonic() - started
    except BaseException:
        store.drop(new)  # never leave a half-built generation behind
        raise
    finally:
        consumer.close()
    time.sleep(drop_grace_s)  # let in-flight batches written for the old generation land first
    store.drop(old)
    return RebuildReport(old, new, records, undecodable, replayed, time.monotonic() - started)


def _log_size(
    consumer: Consumer, partitions: list[TopicPartition], low: dict[int, int]
) -> tuple[int, int]:
    """(records in the assigned partitions, records not yet read)."""
    total = remaining = 0
    for tp in consumer.position(partitions):
        _, high = consumer.get_watermark_offsets(tp, cached=True)
        start = low[tp.partition]
        high = max(high, start)  # unknown (negative) until the first fetch answers
        total += high - start
        position = tp.offset if tp.offset >= 0 else start
        remaining += max(high - position, 0)
    return total, remaining
