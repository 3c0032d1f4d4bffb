"""How many attempts run at once, by event time: the pure core of the concurrency stage.

Edges arrive repartitioned by (dimension, key) from every job-events partition, in no useful
order. Each upstream partition reports a watermark (its latest event time minus a grace period,
or "idle"); `watermark()` is the minimum over the partitions that are not idle. Edges wait in a
buffer until the watermark passes them and are then released in event-time order, so the counts
do not depend on arrival order: a replay gives the same numbers.

At one instant, starts come before ends, and every attempt ending at that instant counts the
others: an attempt ending at t sees every attempt with start <= t <= end on the same key.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from processors.attempts import AttemptEdge, Dimension


@dataclass(frozen=True, slots=True)
class Mark:
    """An upstream partition's watermark: no edge at or before `time_ms` is still to come."""

    time_ms: int
    idle: bool = False


# The watermark when every upstream partition is idle: whatever waits is all there is.
EVERYTHING = 2**62


def watermark(marks: Mapping[int, Mark], sources: int) -> int | None:
    """The time up to which every upstream partition has spoken; None while one is unheard,
    `EVERYTHING` when all are idle (caught up and quiet)."""
    if len(marks) < sources:
        return None
    active = [mark.time_ms for mark in marks.values() if not mark.idle]
    return min(active) if active else EVERYTHING


@dataclass(slots=True)
class SourceProgress:
    """Event-time progress of one job-events partition, as its owner sees it (in memory: after a
    restart it starts over, and the concurrency stage keeps the highest mark it was told)."""

    latest_ms: int | None = None
    last_seen: float | None = None  # monotonic clock of the last event

    def saw(self, time_ms: int, now: float) -> None:
        if self.latest_ms is None or time_ms > self.latest_ms:
            self.latest_ms = time_ms
        self.last_seen = now

    def mark(self, now: float, grace_ms: int, idle_after_s: float, caught_up: bool) -> Mark | None:
        """Latest event time minus the grace; "idle" once caught up and quiet for a while (a
        quiet partition must not hold back the others forever). None: nothing to say yet."""
        if self.last_seen is None:
            self.last_seen = now  # quiet since we started owning it
        if caught_up and now - self.last_seen >= idle_after_s:
            return Mark(-1 if self.latest_ms is None else self.latest_ms, idle=True)
        if self.latest_ms is None:
            return None
        return Mark(self.latest_ms - grace_ms)


def mark_to_send(
    progress: SourceProgress,
    last: tuple[Mark, float] | None,
    now: float,
    *,
    grace_ms: int,
    idle_after_s: float,
    caught_up: bool,
    repeat_s: float,
) -> Mark | None:
    """The mark a source partition sends now: a changed one at once, an unchanged one again
    every `repeat_s` (for a concurrency worker that restarted and lost the marks it held);
    None when there is nothing to send. `last`: the mark sent last and when."""
    mark = progress.mark(now, grace_ms, idle_after_s, caught_up)
    if mark is None or (last is not None and last[0] == mark and now - last[1] < repeat_s):
        return None
    return mark


def release_order(edge: AttemptEdge) -> tuple[int, int, str, int]:
    """Event time, then starts before ends; ties broken by the attempt, never by arrival."""
    return edge.time_ms, 0 if edge.is_start else 1, edge.job_id, edge.attempt


@dataclass(slots=True)
class KeyState:
    """The attempts running on one worker (or for one job name), and the recently ended ones.

    `ended` remembers ends for a horizon of event time so that a redelivered start or end of an
    attempt already counted changes nothing. Ends before `forgotten_before_ms` are no longer
    remembered, so an edge older than that cannot be told from a redelivery and is not applied:
    a replayed start whose end was forgotten would otherwise run again, for good. (Replays after
    a restart or a rebalance reach back to the last commit, which can be further than the
    horizon in event time when events come fast.)
    """

    running: dict[str, int] = field(default_factory=dict)  # member -> started at
    ended: dict[str, int] = field(default_factory=dict)  # member -> ended at
    last_end_ms: int = -1
    ran_ending_at_last_end: int = 0  # attempts that ran and ended exactly at last_end_ms
    forgotten_before_ms: int = -1

    def to_json(self) -> dict[str, Any]:
        return {
            "r": self.running,
            "e": self.ended,
            "l": self.last_end_ms,
            "c": self.ran_ending_at_last_end,
            "f": self.forgotten_before_ms,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> KeyState:
        return cls(dict(data["r"]), dict(data["e"]), data["l"], data["c"], data.get("f", -1))

    def remembers(self, edge: AttemptEdge) -> bool:
        """Whether `edge` is recent enough to be told apart from a redelivery."""
        return edge.time_ms >= self.forgotten_before_ms


@dataclass(frozen=True, slots=True)
class Count:
    """The concurrency of one attempt's end on one dimension."""

    edge: AttemptEdge
    dimension: Dimension
    running: int


def apply(state: KeyState, edge: AttemptEdge, dimension: Dimension) -> Count | None:
    """Applies one released edge; an end yields its count, a repeated edge (or one older than
    the state remembers) yields nothing."""
    member = edge.member
    if member in state.ended or not state.remembers(edge):
        return None
    if edge.is_start:
        state.running.setdefault(member, edge.time_ms)
        return None
    ran = state.running.pop(member, None) is not None
    if edge.time_ms != state.last_end_ms:
        state.last_end_ms, state.ran_ending_at_last_end = edge.time_ms, 0
    if ran:
        state.ran_ending_at_last_end += 1
    state.ended[member] = edge.time_ms
    return Count(edge, dimension, len(state.running) + state.ran_ending_at_last_end)


def forget_before(state: KeyState, time_ms: int) -> None:
    """Drops remembered ends older than `time_ms` (the horizon has passed them)."""
    if state.ended and min(state.ended.values()) < time_ms:
        state.ended = {member: at for member, at in state.ended.items() if at >= time_ms}
        state.forgotten_before_ms = max(state.forgotten_before_ms, time_ms)


# Ends a key remembers at most: its changelog row stays near 100 KB, far below the broker's
# 1 MB record limit, for a job name ending hundreds of attempts a second. Past it the oldest go
# first, as the horizon would drop them; a late edge older than what is left is then dropped
# (best effort, like any edge past the horizon), and a replay of it is told apart all the same.
MAX_ENDED = 2_000


def compact(state: KeyState, *, forget_before_ms: int, max_ended: int = MAX_ENDED) -> None:
    """Bounds the ends a key remembers: those older than `forget_before_ms` (the horizon) and,
    past `max_ended`, the oldest go."""
    forget_before(state, forget_before_ms)
    if len(state.ended) > max_ended:
        forget_before(state, sorted(state.ended.values())[len(state.ended) - max_ended])


# An attempt counts as running for at most this long after its start (event time).
DEFAULT_ATTEMPT_EXPIRY_MS = 86_400_000


def expire(state: KeyState, now_ms: int, expiry_ms: int) -> list[str]:
    """Before an end at `now_ms` is counted: attempts that started more than `expiry_ms` before
    it stop counting as running (an end lost for good: a worker that died unseen, an event never
    sent; or a very long attempt, which counts itself no more either). Decided by the end's own
    time, so a replay counts the same; `recompute` caps each span the same way."""
    cutoff = now_ms - expiry_ms
    expired = [member for member, started in state.running.items() if started < cutoff]
    for member in expired:
        del state.running[member]
    return expired
