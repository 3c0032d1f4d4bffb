"""What the web UI's charts draw, from the query layer's answers (no browser)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from jobtrail.analytics_queries import ConcurrencyAnswer, LevelAnswer
from jobtrail.job_history import Attempt, HistoryEvent, JobHistory
from jobtrail.queries import Rate, RetryCurve, RetryPoint
from jobtrail.web import charts

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def rate(hits: int, total: int) -> Rate:
    return Rate(hits=hits, total=total, rate=hits / total if total else None,
                interval=(0.1, 0.9) if total else None)  # fmt: skip


def test_the_retry_curve_is_percentages_with_its_interval_band() -> None:
    curve = RetryCurve(name="n", threshold=0.05, min_jobs=30, suggested_limit=None, evidence="",
                       points=[RetryPoint(failed_at_least=0, success=rate(9, 10)),
                               RetryPoint(failed_at_least=1, success=rate(1, 4)),
                               RetryPoint(failed_at_least=2, success=rate(0, 0))])  # fmt: skip
    chart = charts.retry_chart(curve)
    assert chart is not None
    line, high, low = chart["data"]["datasets"]
    assert chart["data"]["labels"] == [">= 0", ">= 1"]  # no jobs failed twice: no point
    assert line["data"] == [90.0, 25.0] and high["data"] == [90.0, 90.0]
    assert low["data"] == [10.0, 10.0]


def test_concurrency_bars_skip_empty_levels_and_draw_the_baseline() -> None:
    level = LevelAnswer(level=1, label="1", failure_rate=rate(1, 10))
    answer = ConcurrencyAnswer(
        by="job_name", key="n", max_level=32, baseline=level, overall=rate(4, 30),
        levels=[level, LevelAnswer(level=2, label="2", failure_rate=rate(0, 0)),
                LevelAnswer(level=3, label="3", failure_rate=rate(3, 20))],
    )  # fmt: skip
    chart = charts.concurrency_chart(answer)
    assert chart is not None
    bars, baseline = chart["data"]["datasets"]
    assert chart["data"]["labels"] == ["1", "3"]
    assert bars["data"] == [10.0, 15.0] and baseline["data"] == [10.0, 10.0]


def test_the_timeline_places_each_attempt_from_its_start_to_its_end() -> None:
    def event(kind: str, seconds: float, attempt: int) -> HistoryEvent:
        return HistoryEvent(event_id=f"{kind}{attempt}", type=kind, attempt=attempt,
                            at=T0 + timedelta(seconds=seconds))  # fmt: skip

    history = JobHistory(
        job_id="j", job_name="n", queue=None, data=None, state="completed", events_dropped=0,
        events=[event("QUEUED", 0, 1), event("ACTIVE", 2, 1), event("FAILED", 5, 1),
                event("ACTIVE", 9, 2), event("COMPLETED", 10.5, 2)],
        attempts=[
            Attempt(attempt=1, worker="w", started_at=T0 + timedelta(seconds=2),
                    ended_at=T0 + timedelta(seconds=5), duration_ms=3000, outcome="FAILED",
                    last_progress=None, error_fingerprint="f"),
            Attempt(attempt=2, worker="w", started_at=T0 + timedelta(seconds=9),
                    ended_at=None, duration_ms=None, outcome=None, last_progress=None,
                    error_fingerprint=None),
        ],
    )  # fmt: skip
    chart = charts.timeline_chart(history)
    assert chart is not None
    (dataset,) = chart["data"]["datasets"]
    assert dataset["data"] == [[2.0, 5.0], [9.0, 10.5]]  # a running attempt ends at the last event
    assert dataset["backgroundColor"] == [charts.OUTCOME_COLORS["FAILED"],
                                          charts.OUTCOME_COLORS[None]]  # fmt: skip


def test_nothing_to_draw_is_none_so_the_page_says_so() -> None:
    assert charts.throughput_chart([]) is None
    assert charts.hourly_chart({"a": {}}, "x") is None
    assert charts.share_chart([("a", 0)], "x") is None


def test_hourly_bars_are_stacked_per_series_on_shared_hours() -> None:
    h1, h2 = T0, T0 + timedelta(hours=1)
    chart = charts.hourly_chart({"a": {h1: 2}, "b": {h2: 3}}, "per hour")
    assert chart is not None
    assert [d["data"] for d in chart["data"]["datasets"]] == [[2, 0], [0, 3]]
