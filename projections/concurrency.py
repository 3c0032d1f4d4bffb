"""The read model behind "do attempts fail more when more of them run at once?"

A pure fold over attempt outcomes (schemas/attempt_outcome.avsc). Each outcome carries how many
attempts were running when it ended, itself included: on the same worker (`concurrent_on_worker`)
and of the same job name anywhere (`concurrent_for_job_name`). The fold counts, per job name and
per worker, attempts and failures at each level; level 1 is the baseline of attempts that ran
alone, the comparison the seed's prototype could not make. Levels above `max_level` share one
bucket (`max_level`, shown as "N+") so a burst cannot grow the model without bound.

A failure is a FAILED or STALLED attempt; CANCELLED ones are left out (someone stopped them, the
attempt neither worked nor failed). The curve with its intervals is a query over this model
(jobtrail/concurrency_curve.py). Replay-safe: an outcome counts once per (job, attempt), since
the processors may emit the same outcome twice after a crash, and the fold holds no clock.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field

from schemas.derived import AttemptOutcome, AttemptOutcomeType

DEFAULT_MAX_LEVEL = 32
FAILURES = frozenset({AttemptOutcomeType.FAILED, AttemptOutcomeType.STALLED})


@dataclass(slots=True)
class LevelCounts:
    attempts: int = 0
    failures: int = 0


# level -> counts
Levels = dict[int, LevelCounts]


@dataclass(slots=True)
class ConcurrencyModel:
    max_level: int = DEFAULT_MAX_LEVEL
    by_job_name: dict[str, Levels] = field(default_factory=dict)
    by_worker: dict[str, Levels] = field(default_factory=dict)
    # job id -> attempts already counted: a repeated outcome changes nothing.
    counted: dict[str, set[int]] = field(default_factory=dict)

    def apply(self, outcome: AttemptOutcome) -> bool:
        """Counts one outcome; False when it was already counted or is not counted at all."""
        if outcome.outcome is AttemptOutcomeType.CANCELLED:
            return False
        attempts = self.counted.setdefault(outcome.job_id, set())
        if outcome.attempt in attempts:
            return False
        attempts.add(outcome.attempt)
        failed = outcome.outcome in FAILURES
        _count(self.by_job_name, outcome.job_name, self.bucket(outcome.concurrent_for_job_name),
               failed)  # fmt: skip
        if outcome.worker is not None and outcome.concurrent_on_worker is not None:
            _count(self.by_worker, outcome.worker, self.bucket(outcome.concurrent_on_worker),
                   failed)  # fmt: skip
        return True

    def bucket(self, level: int) -> int:
        return max(1, min(level, self.max_level))


def _count(table: dict[str, Levels], key: str, level: int, failed: bool) -> None:
    counts = table.setdefault(key, {}).setdefault(level, LevelCounts())
    counts.attempts += 1
    counts.failures += failed


def fold(
    outcomes: Iterable[AttemptOutcome], max_level: int = DEFAULT_MAX_LEVEL
) -> ConcurrencyModel:
    model = ConcurrencyModel(max_level)
    for outcome in outcomes:
        model.apply(outcome)
    return model
