"""event_id idempotency in the processors: is this record an event already counted?

The contract makes `event_id` the idempotency key: a producer that retries after a DeliveryError,
a bridge that reads twice or a replayed file must count once. All of a job's events share a
partition, so the check is per job, in the first stage: the job's `SeenEvents` row (a
changelog-backed table row keyed by job id) holds the last `max_ids` event ids of the job, each
with the offset it was first read at.

- A record whose event id is in the row at another offset is a re-send: dropped.
- The same id at the same offset is the same record delivered again (a restart reprocesses what
  was not committed): processed again, as before, since its outputs may be what the crash lost.

The window (documented in the README): an id is recognised while it is among its job's last
`max_ids` ids and the job has had an event within `window_ms` of event time of the partition's
latest event time (rows of jobs quiet for longer are dropped, `expired`). Memory: one row per job
active within the window, of at most `max_ids` ids (8-byte hash + offset), about 30 bytes per id
in the table's JSON. Ids are kept as 64-bit BLAKE2b hashes: a collision among one job's last ids is
about `max_ids**2 / 2**65` (10**-16 at 64), and would drop one event.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any


def id_hash(event_id: str) -> int:
    return int.from_bytes(hashlib.blake2b(event_id.encode(), digest_size=8).digest(), "big")


@dataclass(frozen=True, slots=True)
class SeenEvents:
    """A job's latest event ids (hashes, oldest first) with the offset each was first read at,
    the latest event time among them, and the partition (for the sweep after a restart)."""

    ids: tuple[tuple[int, int], ...]
    last_ms: int
    partition: int

    def to_json(self) -> dict[str, Any]:
        return {"i": [list(pair) for pair in self.ids], "t": self.last_ms, "p": self.partition}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> SeenEvents:
        return cls(tuple((pair[0], pair[1]) for pair in data["i"]), data["t"], data["p"])


def expired(row: SeenEvents, now_ms: int, window_ms: int) -> bool:
    """Whether the row is past the window at the partition's event time `now_ms`."""
    return row.last_ms < now_ms - window_ms


def check(
    row: SeenEvents | None,
    event_id: str,
    *,
    offset: int,
    at_ms: int,
    partition: int,
    max_ids: int,
    window_ms: int,
) -> tuple[SeenEvents | None, bool]:
    """(the row after this record, whether the record is a re-sent duplicate). The row is
    returned unchanged (the same object) when there is nothing to write."""
    if row is not None and expired(row, at_ms, window_ms):
        row = None  # not swept yet, but out of the window: decided as if it were gone
    wanted = id_hash(event_id)
    if row is not None:
        for seen, first_offset in row.ids:
            if seen == wanted:
                return row, first_offset != offset
    ids = ((wanted, offset),) if row is None else (*row.ids, (wanted, offset))
    last_ms = at_ms if row is None else max(row.last_ms, at_ms)
    return SeenEvents(ids[-max_ids:], last_ms, partition), False
