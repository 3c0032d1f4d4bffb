"""The port every read-model store implements; adapters are named after their technology.

A store keeps its read model in generations (namespaces). Readers use the current generation; a
rebuild fills a new one from the start of the log and switches readers to it atomically. Each
generation records, per source partition, the highest offset it applied: that, not the Kafka
consumer group's committed offset, is where a projector resumes, so a crash or a generation
switch never skips or repeats an event.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

from jobtrail.errors import JobtrailError
from projections.model import Position, ReadModel
from schemas.job_event import JobEvent

# One log record to apply: its position, and the event (None when it could not be decoded: the
# position still counts as applied, so the projection moves past it).
Item = tuple[Position, JobEvent | None]


class StaleGenerationError(JobtrailError):
    """The batch was written for a generation readers no longer use; reposition and retry."""

    retryable = True


class StoreUnavailableError(JobtrailError):
    """The store did not answer; the batch was not applied (or was, idempotently): retry."""

    retryable = True


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


class ProjectionStore(Protocol):
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
        self, items: Sequence[Item], generation: int, *, check_current: bool = True
    ) -> BatchResult:
        """Applies each item at most once, atomically per item. With `check_current`, raises
        `StaleGenerationError` (applying nothing) when `generation` is no longer current."""
        ...

    def submit_batch(
        self, items: Sequence[Item], generation: int, *, check_current: bool = True
    ) -> PendingBatch:
        """Starts `apply_batch(items, generation, check_current=...)`; returns at once when the
        store can work in parallel with the caller (which decodes the next batch meanwhile)."""
        ...

    def snapshot(self, generation: int) -> ReadModel:
        """The whole read model of a generation (for tests, comparisons and small models)."""
        ...
