"""The in-memory store: the reference fold behind the port, for unit tests and comparisons."""

from __future__ import annotations

import copy
from collections.abc import Mapping, Sequence

from projections.model import ReadModel, first_gap
from projections.ports import (
    BatchResult,
    Done,
    Item,
    PendingBatch,
    StaleGenerationError,
    StoreBehindError,
)


class MemoryStore:
    name = "memory"

    def __init__(self) -> None:
        self._generations: dict[int, ReadModel] = {}
        self._current = 0

    def setup(self) -> None:
        return None

    def current_generation(self) -> int:
        if not self._current:
            self._current = 1
            self._generations[1] = ReadModel()
        return self._current

    def new_generation(self) -> int:
        generation = max(self._generations, default=0) + 1
        self._generations[generation] = ReadModel()
        return generation

    def switch_to(self, generation: int) -> None:
        self._current = generation

    def drop(self, generation: int) -> None:
        self._generations.pop(generation, None)

    def applied_offsets(self, generation: int) -> dict[str, int]:
        model = self._generations.get(generation)
        return {} if model is None else dict(model.offsets)

    def apply_batch(
        self,
        items: Sequence[Item],
        generation: int,
        *,
        check_current: bool = True,
        log_starts: Mapping[str, int] | None = None,
    ) -> BatchResult:
        if check_current and generation != self.current_generation():
            raise StaleGenerationError(f"generation {generation} is not current")
        model = self._generations[generation]
        gap = first_gap(model.offsets, (position for position, _ in items), log_starts)
        if gap is not None:
            raise StoreBehindError(self.name, gap)
        applied = 0
        for position, event in items:
            done = model.skip(position) if event is None else model.apply(event, position)
            applied += done
        return BatchResult(applied, len(items) - applied)

    def submit_batch(
        self,
        items: Sequence[Item],
        generation: int,
        *,
        check_current: bool = True,
        log_starts: Mapping[str, int] | None = None,
    ) -> PendingBatch:
        return Done(
            lambda: self.apply_batch(
                items, generation, check_current=check_current, log_starts=log_starts
            )
        )

    def snapshot(self, generation: int) -> ReadModel:
        return copy.deepcopy(self._generations[generation]).normalized()
