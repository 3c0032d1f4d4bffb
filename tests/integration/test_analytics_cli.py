"""`jobtrail retries` and `jobtrail concurrency` against real Redis: what they print equals the
curves recomputed from the demo's events."""

from __future__ import annotations

import os
import subprocess
import sys

from jobtrail.concurrency_curve import concurrency_curve
from jobtrail.retry_curve import retry_curve
from processors.outcomes import recompute
from projections.analytics.redis_store import AnalyticsRedisStore
from projections.concurrency import fold
from projections.model import Position, ReadModel
from projections.settings import RedisSettings
from streams.demo.workload import Workload, WorkloadConfig
from tests.conftest import REPO_ROOT, unique_prefix
from tests.integration.stores import delete_redis_prefix, redis_store

EVENTS = list(Workload(WorkloadConfig(jobs=1500), seed=5).events())


def jobtrail(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "jobtrail.cli", *args],
        env={**os.environ, "COLUMNS": "300", **env}, cwd=REPO_ROOT,
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    return done.stdout


def table_rows(out: str) -> list[list[str]]:
    """The body rows of the table the command printed, cell by cell."""
    return [[cell.strip() for cell in line.strip("│ ").split("│")]
            for line in out.splitlines() if line.startswith("│")]  # fmt: skip


def test_concurrency_prints_the_curve_of_the_analytics_model(redis_url: str) -> None:
    outcomes = list(recompute(EVENTS).values())
    prefix = unique_prefix(":")
    store = AnalyticsRedisStore(RedisSettings(url=redis_url, prefix=prefix))
    store.setup()
    try:
        items = [(Position("outcomes", 0, n), o) for n, o in enumerate(outcomes + outcomes[:100])]
        store.apply_batch(items, store.current_generation())  # some twice, as after a crash
        model = fold(outcomes)
        worker = sorted(model.by_worker)[0]
        env = {"JOBTRAIL_REDIS_URL": redis_url, "JOBTRAIL_REDIS_PREFIX": prefix}
        for args, levels in (
            (["--worker", worker], model.by_worker[worker]),
            (["send-email"], model.by_job_name["send-email"]),
        ):
            curve = concurrency_curve(levels, model.max_level)
            out = jobtrail(env, "concurrency", *args)
            assert f"overall failure rate {curve.overall.rate:.3f}" in out
            printed = [row[:4] for row in table_rows(out)]
            assert printed == [
                [p.label, str(p.failure.total), str(p.failure.hits), f"{p.failure.rate:.3f}"]
                for p in curve.points
            ], out
    finally:
        delete_redis_prefix(redis_url, store.settings.prefix)


def test_retries_prints_the_curve_and_suggestion_of_the_read_model(redis_url: str) -> None:
    store = redis_store(redis_url)
    try:
        generation = store.current_generation()
        items = [(Position("job-events", 0, n), event) for n, event in enumerate(EVENTS)]
        for start in range(0, len(items), 2000):
            store.apply_batch(items[start : start + 2000], generation)
        reference = ReadModel()
        for position, event in items:
            reference.apply(event, position)
        curve = retry_curve(reference.names["charge-card"].retries, min_jobs=20)
        env = {"JOBTRAIL_REDIS_URL": redis_url, "JOBTRAIL_REDIS_PREFIX": store.settings.prefix}
        out = jobtrail(env, "retries", "charge-card", "--min-jobs", "20")
        assert curve.evidence in out
        assert [row[:3] for row in table_rows(out)] == [
            [str(p.failed_at_least), str(p.chance.total), str(p.chance.hits)] for p in curve.points
        ], out
    finally:
        delete_redis_prefix(redis_url, store.settings.prefix)
