from __future__ import annotations

import json

from infra.grafana.dashboards import OUTPUT, jobtrail_dashboard, render


def test_committed_dashboard_json_matches_the_code() -> None:
    assert OUTPUT.read_text(encoding="utf-8") == render(), "run `make dashboards`"


def test_every_panel_queries_jobtrail_metrics() -> None:
    panels = jobtrail_dashboard()["panels"]
    exprs = [t["expr"] for p in panels if p.get("type") == "timeseries" for t in p["targets"]]
    assert len(exprs) >= 6 and all("jobtrail_" in e for e in exprs)
    assert json.loads(render())["uid"] == "jobtrail-overview"
