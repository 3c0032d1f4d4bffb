"""The records on the processors' internal topics: typed, tagged, many events per record.

Faust spends about 70 µs of Python on each record it consumes and as much on each it produces,
whatever the record holds, so a stage sends one record per destination partition per batch
(`Sightings`, `Edges`, `Counts`: a list each) rather than one per event. The destination
partition is computed here (`partition_of`, stable across processes and languages), not left to
a key partitioner: a batch groups items by it.

On the wire: JSON with a tag `k`; `decode` refuses anything else with a ValueError (the stages
dead-letter such a record instead of crashing on it).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, TypeVar

from processors.attempts import AttemptEdge, Dimension
from processors.concurrency import Count, Mark
from processors.dedup import Sighting

T = TypeVar("T")


def partition_of(key: str, partitions: int) -> int:
    """The internal partition that owns `key` (a fingerprint, a dimension key, a member)."""
    return zlib.crc32(key.encode()) % partitions


@dataclass(frozen=True, slots=True)
class Sightings:
    """Errors of FAILED events for the fingerprint partition that owns them."""

    items: tuple[Sighting, ...]


@dataclass(frozen=True, slots=True)
class Sweep:
    """Asks a fingerprint partition to request every known error `model` lacks (a new model)."""

    model: str


@dataclass(frozen=True, slots=True)
class Edges:
    """Attempt edges, each with the dimension it is counted on here, and whether it is early:
    its event claims a time past its record's timestamp (plus the grace), so event time will not
    reach it in step with the others."""

    items: tuple[tuple[Dimension, AttemptEdge, bool], ...]


@dataclass(frozen=True, slots=True)
class EventTime:
    """A job-events partition's watermark, sent to every attempt-edges partition."""

    source: int
    mark: Mark


@dataclass(frozen=True, slots=True)
class Counts:
    """Attempt ends with their concurrency on one dimension, for the partition that joins them."""

    items: tuple[Count, ...]


InternalRecord = Sightings | Sweep | Edges | EventTime | Counts


def encode(record: InternalRecord) -> bytes:
    data: dict[str, Any]
    match record:
        case Sightings(items):
            data = {"k": "sightings", "i": [item.to_json() for item in items]}
        case Sweep(model):
            data = {"k": "sweep", "m": model}
        case Edges(items):
            data = {"k": "edges", "i": [[str(d), e.to_json(), early] for d, e, early in items]}
        case EventTime(source, mark):
            data = {"k": "time", "s": source, "t": mark.time_ms, "idle": mark.idle}
        case Counts(items):
            data = {"k": "counts", "i": [_count_to_json(count) for count in items]}
    return json.dumps(data, separators=(",", ":")).encode()


def decode(value: bytes | None) -> InternalRecord:
    """The record in `value`; ValueError (with what is wrong) for anything else."""
    try:
        data = json.loads(value or b"")
        kind = data["k"]
        if kind == "sightings":
            return Sightings(tuple(Sighting.from_json(item) for item in data["i"]))
        if kind == "sweep":
            return Sweep(str(data["m"]))
        if kind == "edges":
            return Edges(tuple((Dimension(item[0]), AttemptEdge.from_json(item[1]),
                                bool(item[2])) for item in data["i"]))  # fmt: skip
        if kind == "time":
            return EventTime(int(data["s"]), Mark(int(data["t"]), bool(data["idle"])))
        if kind == "counts":
            return Counts(tuple(_count_from_json(item) for item in data["i"]))
    except (ValueError, KeyError, TypeError, IndexError) as exc:
        raise ValueError(f"not an internal record: {type(exc).__name__}: {exc}") from exc
    raise ValueError(f"not an internal record: unknown kind {kind!r}")


def _count_to_json(count: Count) -> list[Any]:
    return [count.edge.to_json(), str(count.dimension), count.running]


def _count_from_json(data: list[Any]) -> Count:
    return Count(AttemptEdge.from_json(data[0]), Dimension(data[1]), int(data[2]))


def by_partition(items: Iterable[tuple[int, T]]) -> dict[int, list[T]]:
    """Groups (partition, item) pairs, keeping each partition's items in order."""
    groups: dict[int, list[T]] = {}
    for partition, item in items:
        groups.setdefault(partition, []).append(item)
    return groups
