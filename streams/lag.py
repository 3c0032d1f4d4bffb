"""Consumer-group lag as the broker sees it: the records after each group's committed offsets.

Read without joining the group (a consumer with the group's id that never subscribes only asks
for the committed offsets), so it is safe to call while the group runs: `jobtrail status`, the
tests' catch-up checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from confluent_kafka import Consumer, TopicPartition

from streams.kafka_config import consumer_config
from streams.metadata import fetch_metadata
from streams.settings import KafkaSettings


@dataclass(frozen=True, slots=True)
class GroupPosition:
    lag: int  # records past the committed offsets
    committed: int  # sum of the committed offsets: it grows whenever the group makes progress


def committed_lag(kafka: KafkaSettings, group: str, topics: Sequence[str]) -> int | None:
    """Records in `topics` past `group`'s committed offsets (see `group_position`)."""
    position = group_position(kafka, group, topics)
    return None if position is None else position.lag


def group_position(kafka: KafkaSettings, group: str, topics: Sequence[str]) -> GroupPosition | None:
    """Where `group` stands in `topics`: records past its committed offsets (a partition the group
    never committed counts from its low watermark: all of it is still to be read), and the sum of
    its committed offsets. Topics that do not exist yet (a component's internal ones, before its
    first start) are left out; None when none of them exists."""
    consumer = Consumer(consumer_config(kafka, group))
    try:
        metadata = fetch_metadata(consumer, kafka)
        wanted = [
            TopicPartition(topic, partition)
            for topic in topics
            if topic in metadata.topics and metadata.topics[topic].error is None
            for partition in sorted(metadata.topics[topic].partitions)
        ]
        if not wanted:
            return None
        lag = committed = 0
        for tp in consumer.committed(wanted, timeout=kafka.connect_timeout_s):
            low, high = consumer.get_watermark_offsets(tp, timeout=kafka.connect_timeout_s)
            lag += high - (tp.offset if tp.offset >= 0 else low)
            committed += max(tp.offset, 0)
        return GroupPosition(lag, committed)
    finally:
        consumer.close()
