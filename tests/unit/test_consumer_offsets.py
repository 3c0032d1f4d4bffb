from __future__ import annotations

from confluent_kafka import Message

from streams.consumer import first_offsets, next_offsets
from streams.dlq import DeadLetter, read_dead_letter


def message(partition: int, offset: int, topic: str = "t") -> Message:
    return Message(topic=topic, partition=partition, offset=offset, key=b"k", value=b"v")


def test_commit_offsets_are_one_past_the_highest_per_partition() -> None:
    batch = [message(0, 5), message(1, 9), message(0, 7), message(0, 6)]
    assert [(tp.partition, tp.offset) for tp in next_offsets(batch)] == [(0, 8), (1, 10)]


def test_rewind_offsets_are_the_lowest_per_partition() -> None:
    batch = [message(0, 5), message(1, 9), message(0, 7), message(1, 3)]
    assert [(tp.partition, tp.offset) for tp in first_offsets(batch)] == [(0, 5), (1, 3)]


def test_dead_letter_headers_round_trip() -> None:
    original = Message(
        topic="jobtrail.job-events", partition=2, offset=41, key=b"job-1", value=b"\x01"
    )
    letter = DeadLetter.of(original, "decode", "corrupt Avro body")
    read_back = Message(
        topic="jobtrail.job-events.dlq",
        key=letter.key,
        value=letter.value,
        headers=letter.headers(),
    )
    assert read_dead_letter(read_back) == letter
