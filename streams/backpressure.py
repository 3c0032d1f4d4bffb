"""Producing under back-pressure: the one place that waits for room in librdkafka's queue."""

from __future__ import annotations

from typing import Any

from confluent_kafka import Producer


def produce_waiting(producer: Producer, topic: str, value: bytes | None, key: bytes | None,
                    **kwargs: Any) -> None:  # fmt: skip
    """`producer.produce(...)`, waiting while the local queue is full: librdkafka raises
    BufferError at its bound; serving delivery reports frees room, rather than letting memory
    grow or dropping the record."""
    while True:
        try:
            producer.produce(topic, value, key, **kwargs)
            return
        except BufferError:
            producer.poll(0.05)
