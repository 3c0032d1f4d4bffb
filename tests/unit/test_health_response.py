"""/api/health's answer as JSON: 200 or 503, times as ISO 8601 (a component that made progress
carries a datetime, which plain json cannot encode)."""

from __future__ import annotations

import json
from datetime import UTC, datetime

from jobtrail.api import health_response
from jobtrail.health import Component, Dependency, Health


def test_a_component_with_a_last_progress_time_is_rendered_and_unhealthy_is_503() -> None:
    moved = datetime(2026, 12, 6, 5, 57, 1, 120000, tzinfo=UTC)
    answer = Health(
        healthy=False,
        dependencies=[Dependency(name="redis", healthy=True, detail="answered")],
        components=[
            Component(
                name="processors",
                healthy=False,
                process="FATAL: exited",
                consumer_lag=312,
                last_progress=moved,
            )
        ],
    )
    response = health_response(answer)
    assert response.status_code == 503
    body = json.loads(bytes(response.body))
    assert body["components"][0]["last_progress"] == "2026-12-06T05:57:01.120000Z"
    assert health_response(answer.model_copy(update={"healthy": True})).status_code == 200
