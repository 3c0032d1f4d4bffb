from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from infra.grafana.dashboards import (
    GENERATED,
    JOBS_OUTPUT,
    OUTPUT,
    dashboard_files,
    jobs_dashboard,
    jobtrail_dashboard,
    panel_queries,
    render,
)

# The metrics the API serves for the Jobs dashboard (the contract): a query naming anything else
# would draw nothing in Grafana, without an error.
JOBS_METRICS = {
    "jobtrail_jobs_finished_total",
    "jobtrail_jobs",
    "jobtrail_jobs_active",
    "jobtrail_job_retries_total",
    "jobtrail_job_failure_rate",
    "jobtrail_jobs_stuck",
    "jobtrail_category_occurrences",
    "jobtrail_category_fingerprints",
    "jobtrail_concurrency_attempts_total",
    "jobtrail_concurrency_failures_total",
    "jobtrail_dead_letters",
    "jobtrail_consumer_lag",
}


def _loaded(path: Path) -> dict[str, Any]:
    result: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    return result


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda path: path.name)
def test_committed_dashboard_json_matches_the_code(path: Path) -> None:
    assert path.read_text(encoding="utf-8") == render(GENERATED[path]()), "run `make dashboards`"


def test_every_provisioned_dashboard_is_generated() -> None:
    # Grafana loads every JSON file in the directory; one written by hand would escape the checks
    # (and the integration test that runs each panel's query).
    assert {OUTPUT, JOBS_OUTPUT} <= set(dashboard_files())
    assert set(OUTPUT.parent.glob("*.json")) == set(dashboard_files())


def test_every_panel_queries_jobtrail_metrics() -> None:
    panels = jobtrail_dashboard()["panels"]
    exprs = [t["expr"] for p in panels if p.get("type") == "timeseries" for t in p["targets"]]
    assert len(exprs) >= 6 and all("jobtrail_" in e for e in exprs)
    assert json.loads(render(jobtrail_dashboard()))["uid"] == "jobtrail-overview"


@pytest.mark.parametrize("path", dashboard_files(), ids=lambda path: path.name)
def test_every_panel_has_a_query(path: Path) -> None:
    panels = [p for p in _loaded(path)["panels"] if p["type"] != "row"]
    assert panels
    for panel in panels:
        exprs = [t.get("expr", "") for t in panel.get("targets") or []]
        assert any(e.strip() for e in exprs), panel["title"]
    titled = {title for title, _ in panel_queries(_loaded(path))}
    assert titled == {p["title"] for p in panels}


def test_dashboard_uids_are_unique() -> None:
    uids = [_loaded(path)["uid"] for path in dashboard_files()]
    assert len(set(uids)) == len(uids)


def test_jobs_dashboard_settings() -> None:
    dashboard = _loaded(JOBS_OUTPUT)
    assert dashboard["uid"] == "jobtrail-jobs" and dashboard["title"] == "Jobs"
    assert dashboard["tags"] == ["jobtrail", "generated"]
    assert dashboard["refresh"] == "10s"
    assert dashboard["time"] == {"from": "now-1h", "to": "now"}


def test_jobs_dashboard_queries_only_contract_metrics() -> None:
    queries = panel_queries(jobs_dashboard())
    used = {name for _, expr in queries for name in re.findall(r"jobtrail_[a-z_]+", expr)}
    assert used <= JOBS_METRICS, used - JOBS_METRICS
    # Every contract metric is drawn somewhere.
    assert used == JOBS_METRICS


def test_jobs_dashboard_covers_the_issue() -> None:
    exprs = dict(panel_queries(jobs_dashboard()))
    titles = {title for title, _ in panel_queries(jobs_dashboard())}
    assert {
        "Failure rate per job name (10m)",
        "Failure rate per job name (all time)",
        "Throughput (jobs finished per minute)",
        "Active jobs per job name",
        "Jobs by state",
        "Retries per minute per job name",
        "Failure rate by concurrency level",
        "Error categories over time",
        "Error categories: current totals",
        "Stuck jobs per job name",
        "Dead letters per topic",
        "Consumer lag per group",
    } <= titles
    assert "[10m]" in exprs["Failure rate per job name (10m)"]
    assert "increase(jobtrail_category_occurrences" in exprs["Error categories over time"]


def test_panel_queries_reads_collapsed_rows_and_keeps_empty_exprs() -> None:
    dashboard = {
        "panels": [
            {"type": "row", "title": "r", "panels": [{"title": "a", "targets": [{"expr": "x"}]}]},
            {"type": "timeseries", "title": "b", "targets": [{"refId": "A"}]},
            {"type": "text", "title": "c"},
        ]
    }
    assert panel_queries(dashboard) == [("a", "x"), ("b", "")]
