"""Chart.js configurations built from the query layer's answers: pure functions, so what a page
draws is testable without a browser. Each returns a dict the page embeds as JSON on a <canvas>
(static/app.js draws it), or None when there is nothing to draw (the page says so instead)."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from jobtrail.analytics_queries import ConcurrencyAnswer
from jobtrail.job_history import JobHistory
from jobtrail.queries import RetryCurve

Chart = dict[str, Any]
OUTCOME_COLORS = {"COMPLETED": "#2e7d32", "FAILED": "#c62828", "STALLED": "#ef6c00",
                  "CANCELLED": "#757575", None: "#1565c0"}  # fmt: skip
PALETTE = ("#1565c0", "#c62828", "#2e7d32", "#ef6c00", "#6a1b9a", "#00838f", "#ad1457",
           "#558b2f", "#4e342e", "#37474f", "#f9a825", "#283593")  # fmt: skip


def _percent_axis() -> dict[str, Any]:
    return {"min": 0, "max": 100, "title": {"display": True, "text": "%"}}


def throughput_chart(minutes: Sequence[tuple[datetime, int]]) -> Chart | None:
    if not minutes:
        return None
    return {
        "type": "bar",
        "data": {
            "labels": [at.strftime("%H:%M") for at, _ in minutes],
            "datasets": [{"label": "jobs finished per minute", "data": [n for _, n in minutes],
                          "backgroundColor": PALETTE[0]}],
        },
        "options": {"scales": {"y": {"beginAtZero": True}}},
    }  # fmt: skip


def retry_chart(curve: RetryCurve) -> Chart | None:
    """P(success | failed at least k times) with its 95% interval as a band."""
    points = [p for p in curve.points if p.success.rate is not None]
    if not points:
        return None
    labels = [f">= {p.failed_at_least}" for p in points]

    def pct(value: float | None) -> float | None:
        return None if value is None else round(100 * value, 2)

    lows = [pct(p.success.interval[0] if p.success.interval else None) for p in points]
    highs = [pct(p.success.interval[1] if p.success.interval else None) for p in points]
    return {
        "type": "line",
        "data": {"labels": labels, "datasets": [
            {"label": "chance of success (%)", "data": [pct(p.success.rate) for p in points],
             "borderColor": PALETTE[0], "backgroundColor": PALETTE[0], "tension": 0},
            {"label": "95% interval", "data": highs, "borderWidth": 0, "pointRadius": 0,
             "backgroundColor": "rgba(21,101,192,0.15)", "fill": "+1"},
            {"label": "", "data": lows, "borderWidth": 0, "pointRadius": 0},
        ]},
        "options": {"scales": {"y": _percent_axis(),
                               "x": {"title": {"display": True, "text": "failed attempts"}}},
                    "plugins": {"legend": {"labels": {"filter": "nonEmpty"}}}},
    }  # fmt: skip


def concurrency_chart(answer: ConcurrencyAnswer) -> Chart | None:
    levels = [lv for lv in answer.levels if lv.failure_rate.total]
    if not levels:
        return None
    baseline = answer.baseline.failure_rate.rate if answer.baseline else None
    datasets: list[dict[str, Any]] = [{
        "type": "bar", "label": "failure rate (%)",
        "data": [round(100 * (lv.failure_rate.rate or 0), 2) for lv in levels],
        "backgroundColor": PALETTE[1],
    }]  # fmt: skip
    if baseline is not None:
        datasets.append({"type": "line", "label": "baseline: ran alone (%)",
                         "data": [round(100 * baseline, 2)] * len(levels),
                         "borderColor": PALETTE[2], "pointRadius": 0,
                         "borderDash": [6, 4]})  # fmt: skip
    return {
        "type": "bar",
        "data": {"labels": [lv.label for lv in levels], "datasets": datasets},
        "options": {"scales": {"y": _percent_axis(),
                               "x": {"title": {"display": True, "text": "attempts at once"}}}},
    }  # fmt: skip


def timeline_chart(history: JobHistory) -> Chart | None:
    """Each attempt as a bar from its start to its end (seconds after the job's first event),
    coloured by outcome; a running attempt ends at the last event."""
    if not history.attempts or not history.events:
        return None
    origin = history.events[0].at
    last = history.events[-1].at
    rows, colors = [], []
    for attempt in history.attempts:
        start = attempt.started_at or origin
        end = attempt.ended_at or last
        rows.append([round((start - origin).total_seconds(), 3),
                     round(max((end - origin).total_seconds(), 0.001), 3)])  # fmt: skip
        colors.append(OUTCOME_COLORS.get(attempt.outcome, PALETTE[0]))
    return {
        "type": "bar",
        "data": {"labels": [f"attempt {a.attempt}" for a in history.attempts],
                 "datasets": [{"label": "attempt (s after queued)", "data": rows,
                               "backgroundColor": colors}]},
        "options": {"indexAxis": "y",
                    "scales": {"x": {"title": {"display": True, "text": "seconds"}}}},
    }  # fmt: skip


def hourly_chart(series: dict[str, dict[datetime, int]], title: str) -> Chart | None:
    """Stacked bars: occurrences per hour of each series (a category, an error)."""
    hours = sorted({hour for counts in series.values() for hour in counts})
    if not hours:
        return None
    datasets = [{"label": name, "data": [counts.get(h, 0) for h in hours],
                 "backgroundColor": PALETTE[n % len(PALETTE)]}
                for n, (name, counts) in enumerate(series.items()) if counts]  # fmt: skip
    return {
        "type": "bar",
        "data": {"labels": [h.strftime("%m-%d %H:00") for h in hours], "datasets": datasets},
        "options": {"scales": {"x": {"stacked": True},
                               "y": {"stacked": True, "beginAtZero": True,
                                     "title": {"display": True, "text": title}}}},
    }  # fmt: skip


def share_chart(counts: Sequence[tuple[str, int]], label: str) -> Chart | None:
    shown = [(name, n) for name, n in counts if n]
    if not shown:
        return None
    return {
        "type": "bar",
        "data": {"labels": [name for name, _ in shown],
                 "datasets": [{"label": label, "data": [n for _, n in shown],
                               "backgroundColor": PALETTE[0]}]},
        "options": {"indexAxis": "y", "scales": {"x": {"beginAtZero": True}}},
    }  # fmt: skip
