"""What a store holds, for `jobtrail rebuild STORE --status`: the generation readers use, every
generation present with its applied offsets against the log's end, and a rebuild in progress or
orphaned (its marker, and whether its owner is alive)."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import Consumer, TopicPartition

from projections.ports import ProjectionStore
from projections.rebuild_ledger import RebuildMarker, ledger_for, now, owner_alive
from streams.kafka_config import consumer_config
from streams.metadata import fetch_metadata
from streams.settings import KafkaSettings
from streams.topics import topic_catalog


@dataclass(frozen=True, slots=True)
class GenerationStatus:
    generation: int
    role: str  # current | rebuilding | old (replaced, not dropped) | orphaned (nobody's)
    applied: dict[str, int]  # "topic:partition" -> highest offset applied
    behind: int  # records in the log after what it applied


@dataclass(frozen=True, slots=True)
class RebuildStatus:
    store: str
    current: int
    generations: list[GenerationStatus]
    log_end: dict[str, int]  # "topic:partition" -> high watermark
    marker: RebuildMarker | None
    # running | orphaned (its owner died: the next rebuild resumes it) | switched (readers use
    # it; its owner died before dropping the old generation) | None: no rebuild recorded
    rebuild_state: str | None


def log_ends(
    kafka: KafkaSettings, topics: Sequence[str] | None = None
) -> dict[str, tuple[int, int]]:
    """Per source partition of `topics` (default: job-events), (low, high) watermarks."""
    topics = topics or [topic_catalog(kafka.topic_prefix).job_events.name]
    consumer = Consumer(consumer_config(kafka, f"jobtrail-status-{uuid.uuid4()}"))
    try:
        metadata = fetch_metadata(consumer, kafka, required=list(topics))
        return {
            f"{topic}:{p}": consumer.get_watermark_offsets(TopicPartition(topic, p), timeout=10)
            for topic in topics
            for p in sorted(metadata.topics[topic].partitions)
        }
    finally:
        consumer.close()


def behind(applied: dict[str, int], ends: dict[str, tuple[int, int]]) -> int:
    return sum(max(high - max(applied.get(source, -1) + 1, low), 0)
               for source, (low, high) in ends.items())  # fmt: skip


def rebuild_status(
    store: ProjectionStore[Any],
    kafka: KafkaSettings,
    *,
    stale_after_s: float = 120.0,
    topics: Sequence[str] | None = None,
) -> RebuildStatus:
    store.setup()
    ledger = ledger_for(store)
    current = store.current_generation()
    marker = ledger.read()
    ends = log_ends(kafka, topics)
    state = None
    if marker is not None:
        if marker.generation == current:
            state = "switched"
        elif owner_alive(marker, stale_after_s=stale_after_s, now=now()):
            state = "running"
        else:
            state = "orphaned"
    generations = []
    building = marker.generation if marker is not None else None
    for generation in range(1, max(ledger.last_generation(), current) + 1):
        applied = store.applied_offsets(generation)
        if not applied and generation not in (current, building):
            continue
        if generation == current:
            role = "current"
        elif generation == building:
            role = "rebuilding"
        elif marker is not None and state == "switched" and generation == marker.old_generation:
            role = "old"  # replaced; its rebuild died before dropping it
        else:
            role = "orphaned"
        generations.append(GenerationStatus(generation, role, applied, behind(applied, ends)))
    return RebuildStatus(store.name, current, generations,
                         {source: high for source, (_, high) in ends.items()},
                         marker, state)  # fmt: skip
