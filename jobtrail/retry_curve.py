"""The retry curve of a job name: does a job that failed k times still succeed, and when is
retrying it no longer worth it?

Input: the read model's retry histogram of a job name (`NameView.retries`: "<terminal state>:
<failed attempts>" -> jobs), which every projection keeps from job-events. Only finished jobs
count (a job still retrying has not answered the question yet), and cancelled ones are left out:
someone stopped them, which says nothing about whether another try would have worked.

For every k from 0 to the most failures observed: the jobs that failed at least k times, how many
of them eventually completed, and P(eventual success | failed >= k) with its 95% Wilson interval.
k = 0 is the baseline: every finished job.

The suggested retry limit is the smallest k >= 1 from which the chance stays below the threshold
(default 5%) at every k that has at least `min_jobs` jobs: after k failed attempts, give up. None,
with the reason, when no k qualifies or the data is too thin to say.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from jobtrail.intervals import Proportion

DEFAULT_THRESHOLD = 0.05
DEFAULT_MIN_JOBS = 30


@dataclass(frozen=True, slots=True)
class RetryPoint:
    """Jobs that failed at least `failed_at_least` times, and how many of them completed."""

    failed_at_least: int
    chance: Proportion  # hits: completed, total: jobs that failed at least k times


@dataclass(frozen=True, slots=True)
class RetryCurve:
    points: tuple[RetryPoint, ...]
    threshold: float
    min_jobs: int
    # Give up after this many failed attempts (None: no suggestion; `evidence` says why).
    suggested_limit: int | None
    evidence: str


def finished_jobs_by_failures(retries: Mapping[str, int]) -> dict[int, tuple[int, int]]:
    """failures -> (completed jobs, finished jobs), cancelled jobs left out."""
    table: dict[int, tuple[int, int]] = {}
    for key, jobs in retries.items():
        state, _, failures_text = key.rpartition(":")
        if state == "cancelled" or jobs <= 0:
            continue
        failures = int(failures_text)
        completed, finished = table.get(failures, (0, 0))
        table[failures] = (completed + (jobs if state == "completed" else 0), finished + jobs)
    return table


def retry_curve(
    retries: Mapping[str, int],
    *,
    threshold: float = DEFAULT_THRESHOLD,
    min_jobs: int = DEFAULT_MIN_JOBS,
) -> RetryCurve:
    table = finished_jobs_by_failures(retries)
    points: list[RetryPoint] = []
    completed = finished = 0
    for k in range(max(table, default=-1), -1, -1):  # suffix sums: "failed at least k times"
        done, total = table.get(k, (0, 0))
        completed, finished = completed + done, finished + total
        points.append(RetryPoint(k, Proportion(completed, finished)))
    points.reverse()
    limit, evidence = _suggest(points, threshold, min_jobs)
    return RetryCurve(tuple(points), threshold, min_jobs, limit, evidence)


def _suggest(points: list[RetryPoint], threshold: float, min_jobs: int) -> tuple[int | None, str]:
    supported = [p for p in points if p.failed_at_least >= 1 and p.chance.total >= min_jobs]
    if not supported:
        return None, f"not enough data: no k >= 1 with at least {min_jobs} finished jobs"
    limit: RetryPoint | None = None
    for point in reversed(supported):  # the longest tail that stays below the threshold
        rate = point.chance.rate
        if rate is None or rate >= threshold:
            break
        limit = point
    if limit is None:
        last = supported[-1]
        return None, (
            f"keep retrying: {_describe(last)}, at or above {threshold:.0%} "
            f"(the last k with at least {min_jobs} jobs)"
        )
    return limit.failed_at_least, f"{_describe(limit)}, below {threshold:.0%} from there on"


def _describe(point: RetryPoint) -> str:
    chance = point.chance
    interval = chance.interval
    span = f" (95% CI {interval[0]:.1%}-{interval[1]:.1%})" if interval else ""
    return (
        f"of {chance.total} jobs that failed {point.failed_at_least}+ times, "
        f"{chance.hits} succeeded: {chance.rate or 0:.1%}{span}"
    )
