"""The port every read-model store implements; adapters are named after their technology.

A store keeps its read model in generations (namespaces). Readers use the current generation; a
rebuild fills a new one from the start of the log and switches readers to it atomically. Each
generation records, per source partition, the highest offset it applied: that, not the Kafka
consumer group's committed offset, is where a projector resumes, so a crash or a generation
switch never skips or repeats an event.

A store applies a batch only where it follows the recorded offsets (per source partition, the
batch's first offset is the recorded one + 1, or at or below it for a redelivery, or the log's
start): a store that lost writes raises `StoreBehindError` instead of recording the lost records
as applied, and the projector repositions from what the store does hold.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol, TypeVar

from jobtrail.errors import JobtrailError
from projections.model import Gap, Position, ReadModel
from schemas.job_event import JobEvent

# One log record to apply: its position, and the record (None when it could not be decoded or
# breaks the contract: the position still counts as applied, so the projection moves past it).
R_contra = TypeVar("R_contra", contravariant=True)
Item = tuple[Position, JobEvent | None]  # the job read model's items


class StaleGenerationError(JobtrailError):
    """The batch was written for a generation readers no longer use; reposition and retry."""

    retryable = True


class StoreUnavailableError(JobtrailError):
    """The store did not answer, or answered with a transient refusal (out of memory, read-only
    replica, busy, loading); the batch was not applied (or was, idempotently): retry."""

    retryable = True


class StoreFaultError(StoreUnavailableError):
    """The store refused the batch for a reason that waiting alone will not fix (a script error,
    a key of the wrong type): nothing was applied. Still retried with back-off, since skipping
    the batch would lose it, but logged as an error and counted so an operator fixes it."""


class StoreBehindError(JobtrailError):
    """The batch does not follow what the store recorded (it lost writes: restarted from an older
    snapshot, failed over): nothing was applied; reposition from the store and retry."""

    retryable = True

    def __init__(self, store: str, gap: Gap) -> None:
        super().__init__(
            f"{store}: {gap.source} recorded offset {gap.recorded}, batch starts at {gap.first}"
        )
        self.gap = gap


@dataclass(frozen=True, slots=True)
class BatchResult:
    applied: int
    duplicates: int


class PendingBatch(Protocol):
    """A batch handed to the store; `result()` waits for it (and raises what apply_batch would)."""

    def result(self) -> BatchResult: ...


class Done:
    """A batch already applied (or failed) when it was submitted."""

    def __init__(self, apply: Callable[[], BatchResult]) -> None:
        try:
            self._result: BatchResult | None = apply()
            self._error: Exception | None = None
        except Exception as exc:  # re-raised by result(), where the caller waits for it
            self._result, self._error = None, exc

    def result(self) -> BatchResult:
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result


class ProjectionStore(Protocol[R_contra]):
    """A read model in generations, fed records of type R_contra (job events for the job read
    model; the analytics model takes job events, attempt outcomes and error vectors)."""

    name: str

    def setup(self) -> None:
        """Connects (network I/O happens here, never in constructors)."""
        ...

    def current_generation(self) -> int:
        """The generation readers use; creates generation 1 on first use."""
        ...

    def new_generation(self) -> int:
        """An empty generation for a rebuild, not yet visible to readers."""
        ...

    def switch_to(self, generation: int) -> None:
        """Makes `generation` the one readers (and live projectors) use, atomically."""
        ...

    def drop(self, generation: int) -> None:
        """Deletes a generation's data."""
        ...

    def applied_offsets(self, generation: int) -> dict[str, int]:
        """Per source partition ("topic:partition"), the highest offset applied."""
        ...

    def apply_batch(
        self,
        items: Sequence[tuple[Position, R_contra | None]],
        generation: int,
        *,
        check_current: bool = True,
        log_starts: Mapping[str, int] | None = None,
    ) -> BatchResult:
        """Applies each item at most once (offset and event_id guards), atomically per item. With
        `check_current`, raises `StaleGenerationError` (applying nothing) when `generation` is no
        longer current. Raises `StoreBehindError` (applying nothing) when, for some source
        partition, the batch's first offset lies beyond the recorded offset + 1 and is not
        `log_starts[source]` ("topic:partition" -> the offset before which the log holds nothing
        the store lacks: its low watermark, or where the caller started reading)."""
        ...

    def submit_batch(
        self,
        items: Sequence[tuple[Position, R_contra | None]],
        generation: int,
        *,
        check_current: bool = True,
        log_starts: Mapping[str, int] | None = None,
    ) -> PendingBatch:
        """Starts `apply_batch(items, generation, ...)`; returns at once when the store can work
        in parallel with the caller (which decodes the next batch meanwhile)."""
        ...


class JobEventStore(ProjectionStore[JobEvent], Protocol):
    """A store of the job read model (projections/model.py)."""

    def snapshot(self, generation: int) -> ReadModel:
        """The whole read model of a generation (for tests, comparisons and small models)."""
        ...
