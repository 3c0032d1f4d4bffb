"""Attempt outcomes: joining an attempt's end with its concurrency on each dimension, and the pure
recomputation of all outcomes from a list of events that the streaming result must equal.
"""

from __future__ import annotations

from bisect import bisect_left, bisect_right
from collections import defaultdict
from collections.abc import Iterable, Mapping

from processors.attempts import AttemptEdge, Dimension, LatestAttempt, track
from processors.concurrency import DEFAULT_ATTEMPT_EXPIRY_MS, Count
from processors.fingerprint import fingerprint
from schemas.derived import AttemptOutcome, AttemptOutcomeType
from schemas.job_event import JobEvent, JobEventType


def join(parts: Mapping[str, int], count: Count) -> tuple[dict[str, int], AttemptOutcome | None]:
    """Adds one dimension's count to those known for the attempt (`parts`: dimension -> count);
    the outcome once every dimension the attempt counts on has reported (and again for a copy
    of a half that arrives after: the same outcome)."""
    known = {**parts, count.dimension.value: count.running}
    edge = count.edge
    if len(known) < len(edge.counted_on()):
        return known, None
    return known, outcome_of(edge, known.get(Dimension.WORKER.value), known[Dimension.JOB_NAME])


def outcome_of(edge: AttemptEdge, on_worker: int | None, for_name: int) -> AttemptOutcome:
    assert edge.outcome is not None, "only an attempt's end has an outcome"
    return AttemptOutcome(
        job_id=edge.job_id,
        job_name=edge.job_name,
        attempt=edge.attempt,
        outcome=AttemptOutcomeType(edge.outcome.value),
        terminal=edge.terminal,
        started_at_ms=edge.started_at_ms,
        ended_at_ms=edge.time_ms,
        worker=edge.worker,
        error_fingerprint=edge.fingerprint,
        concurrent_on_worker=on_worker,
        concurrent_for_job_name=for_name,
    )


def error_fingerprint(event: JobEvent) -> str | None:
    if event.type is not JobEventType.FAILED or event.error is None:
        return None
    return fingerprint(event.error).sha256


def edges_of(events_by_job_in_log_order: Iterable[JobEvent]) -> list[AttemptEdge]:
    """Every edge the first stage makes, given each job's events in log (offset) order."""
    latest_attempts: dict[str, LatestAttempt | None] = {}
    edges = []
    for event in events_by_job_in_log_order:
        state, edge = track(latest_attempts.get(event.job_id), event, error_fingerprint(event))
        latest_attempts[event.job_id] = state
        if edge is not None:
            edges.append(edge)
    return edges


def recompute(
    events_in_log_order: Iterable[JobEvent], expiry_ms: int = DEFAULT_ATTEMPT_EXPIRY_MS
) -> dict[tuple[str, int], AttemptOutcome]:
    """All attempt outcomes from the definition, with no ordering tricks: an attempt ending at t
    counts every attempt on its key that started at or before t and ended at or after t (or not
    yet), for at most `expiry_ms` after its start. Keyed by (job id, attempt); the first end of
    an attempt wins, as in the stream."""
    edges = edges_of(events_in_log_order)
    spans: dict[tuple[Dimension, str], dict[str, list[int | None]]] = defaultdict(dict)
    for edge in edges:
        for key in edge.counted_on():
            span = spans[key].setdefault(edge.member, [None, None])
            if edge.is_start and span[0] is None:
                span[0] = edge.time_ms
            elif not edge.is_start and span[1] is None:
                span[1] = edge.time_ms
    counters = {key: _RunningCounter(members.values(), expiry_ms)
                for key, members in spans.items()}  # fmt: skip
    outcomes: dict[tuple[str, int], AttemptOutcome] = {}
    for edge in edges:
        if edge.is_start or (edge.job_id, edge.attempt) in outcomes:
            continue
        counts = {
            dimension: counters[dimension, key].at(edge.time_ms)
            for dimension, key in edge.counted_on()
        }
        outcomes[edge.job_id, edge.attempt] = outcome_of(
            edge, counts.get(Dimension.WORKER), counts[Dimension.JOB_NAME]
        )
    return outcomes


class _RunningCounter:
    """#{spans with start <= t <= min(end, start + expiry)}, by binary search over sorted
    times (no end: start + expiry)."""

    def __init__(self, spans: Iterable[list[int | None]], expiry_ms: int) -> None:
        started = [(start, end) for start, end in spans if start is not None]
        self._starts = sorted(start for start, _ in started)
        # Ended before t: a span with start <= end is gone once end < t; a span whose end
        # precedes its start (clock skew) never ran by this definition, once it has started.
        self._ends = sorted(start + expiry_ms if end is None else min(end, start + expiry_ms)
                            for start, end in started if end is None or end >= start)  # fmt: skip
        self._skewed = sorted(start for start, end in started if end is not None and end < start)

    def at(self, t: int) -> int:
        started = bisect_right(self._starts, t)
        ended = bisect_left(self._ends, t) + bisect_right(self._skewed, t)
        return started - ended
