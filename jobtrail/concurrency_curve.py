"""Failure rate against concurrency, with the baseline of attempts that ran alone.

A query over the concurrency read model (projections/concurrency.py): for each level, attempts,
failures and the failure rate with its 95% Wilson interval; level 1 is the baseline. Levels past
the model's `max_level` were bucketed when counted and are labelled "N+".
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from jobtrail.intervals import Proportion
from projections.concurrency import LevelCounts


@dataclass(frozen=True, slots=True)
class LevelPoint:
    level: int
    label: str  # "3", or "32+" for the top bucket
    failure: Proportion  # hits: failed attempts, total: attempts at this level


@dataclass(frozen=True, slots=True)
class ConcurrencyCurve:
    points: tuple[LevelPoint, ...]
    baseline: LevelPoint | None  # level 1: attempts that ran alone
    overall: Proportion


def concurrency_curve(levels: Mapping[int, LevelCounts], max_level: int) -> ConcurrencyCurve:
    points = tuple(
        LevelPoint(
            level,
            f"{level}+" if level >= max_level else str(level),
            Proportion(counts.failures, counts.attempts),
        )
        for level, counts in sorted(levels.items())
    )
    baseline = next((p for p in points if p.level == 1), None)
    overall = Proportion(
        sum(c.failures for c in levels.values()), sum(c.attempts for c in levels.values())
    )
    return ConcurrencyCurve(points, baseline, overall)
