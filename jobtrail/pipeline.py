"""The pipeline's components as an operator sees them: the consumer groups with the topics each
reads, and the supervised processes of `make up` (infra/supervisor/supervisord.conf)."""

from __future__ import annotations

import os
import xmlrpc.client
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from streams.settings import KafkaSettings
from streams.topics import topic_catalog

# Where `make up`'s supervisord listens, relative to the repository (JOBTRAIL_SUPERVISOR_SOCKET).
SUPERVISOR_SOCKET = ".infra-data/supervisor/supervisor.sock"


def consumer_groups(kafka: KafkaSettings, model: str) -> dict[str, tuple[str, list[str]]]:
    """component -> (consumer group, topics it reads), for embedding model `model`."""
    from processors.embedding.embedder import group_id as embedder_group
    from processors.topology import app_id, internal_topic_names

    catalog = topic_catalog(kafka.topic_prefix, kafka.partitions, kafka.replication_factor)
    job_events = [catalog.job_events.name]
    return {
        "processors": (app_id(kafka), job_events + list(internal_topic_names(kafka).values())),
        "embedder": (embedder_group(kafka, model), [catalog.vectorize_requests.name]),
        "project-redis": (f"{kafka.topic_prefix}projection-redis", job_events),
        "project-couchbase": (
            f"{kafka.topic_prefix}projection-couchbase",
            [*job_events, catalog.error_vectors.name],
        ),
        "project-analytics": (
            f"{kafka.topic_prefix}projection-analytics",
            [*job_events, catalog.attempt_outcomes.name, catalog.error_vectors.name],
        ),
    }


@dataclass(frozen=True, slots=True)
class Process:
    name: str
    state: str  # RUNNING, STARTING, BACKOFF, EXITED, FATAL, STOPPED, ...
    description: str  # "pid 123, uptime 0:01:02", or why it is not running


def supervised(socket: Path | None = None) -> list[Process] | None:
    """The supervised processes, or None when supervisor is not running."""
    socket = socket or Path(os.environ.get("JOBTRAIL_SUPERVISOR_SOCKET", SUPERVISOR_SOCKET))
    if not socket.exists():
        return None
    from supervisor.xmlrpc import SupervisorTransport

    transport = SupervisorTransport(None, None, f"unix://{socket.resolve()}")
    proxy = xmlrpc.client.ServerProxy("http://127.0.0.1", transport=transport)
    try:
        infos = cast(list[dict[str, Any]], proxy.supervisor.getAllProcessInfo())
    except OSError:  # a stale socket: supervisor is gone
        return None
    return [Process(info["name"], info["statename"], info["description"]) for info in infos]
