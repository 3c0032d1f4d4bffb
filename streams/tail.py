"""`jobtrail tail`: job events as JSON lines."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable, Iterator
from typing import Any

from jobtrail.errors import SchemaError
from schemas.codec import create_codec
from schemas.job_event import JobEvent
from streams.reader import read_messages
from streams.settings import KafkaSettings
from streams.topics import topic_catalog


def event_json(event: JobEvent) -> str:
    record: dict[str, Any] = dataclasses.asdict(event)
    record["occurred_at"] = event.occurred_at.isoformat()
    record["type"] = event.type.value
    return json.dumps(record, separators=(",", ":"))


def tail_events(
    max_events: int, from_beginning: bool, idle_s: float, report: Callable[[str], None]
) -> Iterator[str]:
    settings = KafkaSettings()
    topic = topic_catalog(settings.topic_prefix).job_events.name
    codec = create_codec(settings.schema_registry_url)
    for message in read_messages(
        settings, topic, from_beginning=from_beginning, idle_s=idle_s, max_messages=max_events
    ):
        try:
            yield event_json(codec.decode(message.value() or b"", topic))
        except SchemaError as exc:
            report(f"partition {message.partition()} offset {message.offset()}: {exc}")
