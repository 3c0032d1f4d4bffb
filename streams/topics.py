"""The topic catalog, as data, and the pure comparison of it with what a cluster has.

`streams/admin.py` reads the cluster and applies the plan; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

DAY_MS = 24 * 60 * 60 * 1000


@dataclass(frozen=True, slots=True)
class TopicSpec:
    """One topic as jobtrail needs it."""

    name: str
    key: str
    value: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class TopicCatalog:
    """The names of jobtrail's topics under one prefix, plus their full specs."""

    job_events: TopicSpec
    job_events_dlq: TopicSpec
    attempt_outcomes: TopicSpec
    vectorize_requests: TopicSpec
    vectorize_requests_dlq: TopicSpec
    error_vectors: TopicSpec

    def all(self) -> tuple[TopicSpec, ...]:
        return (
            self.job_events,
            self.job_events_dlq,
            self.attempt_outcomes,
            self.vectorize_requests,
            self.vectorize_requests_dlq,
            self.error_vectors,
        )


def topic_catalog(
    prefix: str = "jobtrail.", partitions: int = 6, replication: int = 1
) -> TopicCatalog:
    """Every topic jobtrail uses. Retention follows DESIGN.md: job-events is the source of truth
    and is kept forever; derived topics can be rebuilt and expire; vectors are compacted."""

    def spec(name: str, key: str, value: str, **config: str) -> TopicSpec:
        return TopicSpec(prefix + name, key, value, partitions, replication, config)

    return TopicCatalog(
        job_events=spec("job-events", "job_id", "JobEvent", **{"retention.ms": "-1"}),
        job_events_dlq=spec(
            "job-events.dlq",
            "original key",
            "original bytes + reason headers",
            **{"retention.ms": str(365 * DAY_MS)},
        ),
        attempt_outcomes=spec(
            "attempt-outcomes", "job_id", "AttemptOutcome", **{"retention.ms": str(365 * DAY_MS)}
        ),
        vectorize_requests=spec(
            "vectorize-requests",
            "fingerprint",
            "VectorizeRequest",
            **{"retention.ms": str(7 * DAY_MS)},
        ),
        vectorize_requests_dlq=spec(
            "vectorize-requests.dlq",
            "original key",
            "original bytes + reason headers",
            **{"retention.ms": str(365 * DAY_MS)},
        ),
        error_vectors=spec(
            "error-vectors",
            "fingerprint + model",
            "ErrorVector",
            **{"cleanup.policy": "compact", "retention.ms": "-1"},
        ),
    )


@dataclass(frozen=True, slots=True)
class ExistingTopic:
    """What the cluster reports for a topic."""

    name: str
    partitions: int
    replication_factor: int
    config: Mapping[str, str]


@dataclass(frozen=True, slots=True)
class Drift:
    topic: str
    setting: str
    wanted: str
    actual: str

    def __str__(self) -> str:
        return f"{self.topic}: {self.setting} is {self.actual}, catalog wants {self.wanted}"


@dataclass(frozen=True, slots=True)
class TopicPlan:
    create: tuple[TopicSpec, ...]
    unchanged: tuple[str, ...]
    drift: tuple[Drift, ...]


def plan_topics(catalog: TopicCatalog, existing: Mapping[str, ExistingTopic]) -> TopicPlan:
    """Which topics to create and how existing ones differ from the catalog.

    Drift is reported, never "fixed": adding partitions would move keys to other partitions and
    break per-job ordering, and changing retention is an operator's decision.
    """
    create: list[TopicSpec] = []
    unchanged: list[str] = []
    drift: list[Drift] = []
    for spec in catalog.all():
        actual = existing.get(spec.name)
        if actual is None:
            create.append(spec)
            continue
        found = _drift(spec, actual)
        drift.extend(found)
        if not found:
            unchanged.append(spec.name)
    return TopicPlan(tuple(create), tuple(unchanged), tuple(drift))


def _drift(spec: TopicSpec, actual: ExistingTopic) -> list[Drift]:
    found: list[Drift] = []
    if actual.partitions != spec.partitions:
        found.append(Drift(spec.name, "partitions", str(spec.partitions), str(actual.partitions)))
    if actual.replication_factor != spec.replication_factor:
        found.append(
            Drift(
                spec.name,
                "replication factor",
                str(spec.replication_factor),
                str(actual.replication_factor),
            )
        )
    for key, wanted in sorted(spec.config.items()):
        value = actual.config.get(key, "<default>")
        if value != wanted:
            found.append(Drift(spec.name, key, wanted, value))
    return found
