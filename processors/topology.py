"""The processors' topics and tables, by name: what the app wires, the worker creates ahead and
the tools (status, tests, benches) look at.

    job-events ──ingest──► job-events.dlq                  (bad records, with the reason)
                  │──────► processors.fingerprint-sightings ──dedup──► vectorize-requests
                  └──────► processors.attempt-edges ──concurrency──► processors.attempt-counts
                                                              ──join──► attempt-outcomes

Every hop is needed: dedup owns each fingerprint on one partition, concurrency each worker and job
name, and the join each attempt, whose two counts come from two concurrency partitions.
"""

from __future__ import annotations

from dataclasses import dataclass

from streams.settings import KafkaSettings
from streams.topics import topic_catalog

# The app's tables, each backed by a compacted changelog topic `<app id>-<table>-changelog`.
TABLES = ("latest-attempts", "fingerprints", "concurrency-keys", "outcome-halves",
          "seen-event-ids")  # fmt: skip


def app_id(kafka: KafkaSettings) -> str:
    """The consumer group and the prefix of the changelog topics."""
    return f"{kafka.topic_prefix}processors"


def internal_topic_names(kafka: KafkaSettings) -> dict[str, str]:
    base = f"{kafka.topic_prefix}processors."
    return {
        "sightings": base + "fingerprint-sightings",
        "edges": base + "attempt-edges",
        "counts": base + "attempt-counts",
    }


def changelog_topic_names(kafka: KafkaSettings) -> list[str]:
    return [f"{app_id(kafka)}-{table}-changelog" for table in TABLES]


@dataclass(frozen=True, slots=True)
class Topology:
    partitions: int
    job_events: str
    dlq: str
    requests: str
    outcomes: str
    sightings: str
    edges: str
    counts: str

    @classmethod
    def of(cls, kafka: KafkaSettings) -> Topology:
        catalog = topic_catalog(kafka.topic_prefix, kafka.partitions, kafka.replication_factor)
        internal = internal_topic_names(kafka)
        return cls(
            partitions=kafka.partitions,
            job_events=catalog.job_events.name,
            dlq=catalog.job_events_dlq.name,
            requests=catalog.vectorize_requests.name,
            outcomes=catalog.attempt_outcomes.name,
            sightings=internal["sightings"],
            edges=internal["edges"],
            counts=internal["counts"],
        )
