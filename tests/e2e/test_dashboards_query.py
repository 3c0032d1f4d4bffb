"""Every panel of both Grafana dashboards answers with data: each panel's query runs against the
real Prometheus, which scrapes the running pipeline (its demo, processors, embedder, projections
and the API's job metrics), and a query that returns nothing fails the test with its panel."""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request

from infra.grafana.dashboards import dashboard_files, panel_queries
from tests.e2e.live_pipeline import LivePipeline

WAIT_S = 240  # warm-up: first outcomes, vectors, two scrapes of every counter for rate()


def series(prometheus_url: str, expr: str) -> int:
    url = f"{prometheus_url}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=10) as response:
        answer = json.load(response)
    assert answer["status"] == "success", (expr, answer)
    return len(answer["data"]["result"])


def test_every_panel_of_both_dashboards_returns_data(
    running: LivePipeline, prometheus_url: str
) -> None:
    queries = [(path.stem, title, expr) for path in dashboard_files()
               for title, expr in panel_queries(json.loads(path.read_text()))]  # fmt: skip
    assert {board for board, _, _ in queries} == {"jobtrail", "jobs"}
    empty = queries
    deadline = time.monotonic() + WAIT_S
    while empty and time.monotonic() < deadline:
        running.check_alive()
        empty = [(b, t, e) for b, t, e in empty if series(prometheus_url, e) == 0]
        if empty:
            time.sleep(5)
    assert not empty, "panels whose query returns nothing:\n" + "\n".join(
        f"  {board}: {title}: {expr}" for board, title, expr in empty)  # fmt: skip
