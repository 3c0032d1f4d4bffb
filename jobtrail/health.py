"""What /api/health answers: each dependency, asked now, and each pipeline component with its
consumer group's committed lag, when it last made progress and, under `make up`, its supervised
process.

Healthy means: every dependency answers, and every supervised component is RUNNING. Lag is
reported, not judged: a component catching up after a restart is busy, not broken. Last progress
is when this API process last saw the group's committed offsets move (null until it has seen them
move once): with lag above 0, a last progress long ago says the component is stuck.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

from pydantic import BaseModel, Field

from jobtrail.errors import JobtrailError
from jobtrail.pipeline import consumer_groups, supervised
from jobtrail.queries import Queries
from streams.lag import group_position
from streams.settings import KafkaSettings

HEALTH_TIMEOUT_S = 3.0  # a health check that waits longer than this is itself the problem
# /api/health serves an answer at most about this old (jobtrail/refresh.py): asking the broker
# about every group takes a while, and a load balancer or a dashboard polling /api/health must not
# multiply that, nor wait for it.
HEALTH_MAX_AGE_S = 2.0


class Dependency(BaseModel):
    name: str
    healthy: bool
    detail: str


class Component(BaseModel):
    name: str
    healthy: bool
    process: str | None  # the supervised process's state and detail; null when not supervised
    consumer_lag: int | None  # null: no consumer group, or its topics do not exist yet
    last_progress: datetime | None = Field(
        description="when its committed offsets last moved, as seen by this API; null: not yet"
    )


class Health(BaseModel):
    healthy: bool
    dependencies: list[Dependency]
    components: list[Component]


class ProgressTracker:
    """Per component, its last committed position and when it was first seen there."""

    def __init__(self) -> None:
        self._seen: dict[str, tuple[int, float | None]] = {}
        self._lock = threading.Lock()

    def observe(self, name: str, committed: int) -> datetime | None:
        with self._lock:
            previous = self._seen.get(name)
            if previous is None:
                self._seen[name] = (committed, None)  # where it stands, not yet a move
            elif committed != previous[0]:
                self._seen[name] = (committed, time.time())
            moved = self._seen[name][1]
        return None if moved is None else datetime.fromtimestamp(moved, UTC)


_TRACKER = ProgressTracker()


def check_health(queries: Queries, tracker: ProgressTracker = _TRACKER) -> Health:
    kafka = queries.kafka.model_copy(update={"connect_timeout_s": HEALTH_TIMEOUT_S})
    dependencies = [_redis(queries), _kafka(kafka)]
    components = _components(kafka, tracker) if dependencies[1].healthy else []
    healthy = all(d.healthy for d in dependencies) and all(c.healthy for c in components)
    return Health(healthy=healthy, dependencies=dependencies, components=components)


def _redis(queries: Queries) -> Dependency:
    try:
        queries.store.client.ping()
    except Exception as exc:  # any failure to answer is the answer
        return Dependency(name="redis", healthy=False, detail=f"{type(exc).__name__}: {exc}")
    return Dependency(name="redis", healthy=True, detail="answered")


def _kafka(kafka: KafkaSettings) -> Dependency:
    from confluent_kafka.admin import AdminClient

    from streams.kafka_config import admin_config
    from streams.metadata import fetch_metadata

    try:
        fetch_metadata(AdminClient(admin_config(kafka)), kafka)
    except JobtrailError as exc:
        return Dependency(name="kafka", healthy=False, detail=str(exc))
    return Dependency(name="kafka", healthy=True, detail="answered")


def _components(kafka: KafkaSettings, tracker: ProgressTracker) -> list[Component]:
    from processors.embedding.settings import EmbedderSettings

    groups = consumer_groups(kafka, EmbedderSettings().model)
    processes = {p.name: p for p in supervised() or []}
    components = []
    for name in sorted(set(groups) | set(processes)):
        process = processes.get(name)
        position = group_position(kafka, *groups[name]) if name in groups else None
        components.append(Component(
            name=name,
            healthy=process is None or process.state == "RUNNING",
            process=None if process is None else f"{process.state}: {process.description}",
            consumer_lag=None if position is None else position.lag,
            last_progress=None if position is None else tracker.observe(name, position.committed),
        ))  # fmt: skip
    return components
