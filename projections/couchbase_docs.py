"""What the Couchbase projection writes, decided without I/O.

One document per job: its immutable fields (id, name, queue, input data) are written once, when
the document is created; every later change is a sub-document mutation (array append, increment,
upsert) planned here, and `IMMUTABLE_PATHS` are never among their paths (tests prove it for any
event). A job's events all come from one partition, in offset order, so the document's
`applied_offset` is an exact guard: an event at or below it was appended already.

One document per error fingerprint, updated from every partition: its guard is the highest
offset applied per source partition.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from processors.fingerprint import Fingerprint, fingerprint
from projections.model import (
    FingerprintView,
    JobState,
    JobView,
    NameView,
    Position,
    ReadModel,
    apply_job_event,
)
from schemas.job_event import JobEvent, JobEventType, millis

IMMUTABLE_PATHS = frozenset({"job_id", "job_name", "queue", "created_at", "data"})

# The mutable fields of JobView, stored at the top level of the job document.
MUTABLE_FIELDS = (
    "state",
    "attempts",
    "failures",
    "worker",
    "progress",
    "first_started_at",
    "last_started_at",
    "ended_at",
    "finished_at",
    "updated_at",
    "last_error_fingerprint",
    "last_error_type",
)


@dataclass(frozen=True, slots=True)
class Mutation:
    """One sub-document operation: `append` values to an array, `increment` a counter by a delta,
    or `upsert` a value."""

    op: str
    path: str
    value: Any


@dataclass(frozen=True, slots=True)
class JobPlan:
    """How to bring one job document up to date with a run of its events."""

    create: dict[str, Any] | None  # the full new document, when the job is new
    mutations: tuple[Mutation, ...]  # for an existing document
    applied: int
    duplicates: int


def history_entry(event: JobEvent, print_: Fingerprint | None) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "event_id": event.event_id,
        "type": event.type.value,
        "at": millis(event.occurred_at),
        "attempt": event.attempt,
    }
    if event.worker is not None:
        entry["worker"] = event.worker
    if event.progress is not None:
        entry["progress"] = event.progress
    if event.will_retry is not None:
        entry["will_retry"] = event.will_retry
    if print_ is not None:
        entry["error_fingerprint"] = print_.sha256
    return entry


def error_fingerprint(event: JobEvent) -> Fingerprint | None:
    if event.type is JobEventType.FAILED and event.error is not None:
        return fingerprint(event.error)
    return None


def view_from_document(doc: dict[str, Any]) -> JobView:
    mutable: dict[str, Any] = {name: doc.get(name) for name in MUTABLE_FIELDS}
    mutable["state"] = JobState(doc["state"])
    return JobView(
        job_id=doc["job_id"],
        job_name=doc["job_name"],
        created_at=doc["created_at"],
        queue=doc.get("queue"),
        data=doc.get("data"),
        **mutable,
    )


def plan_job(
    existing: dict[str, Any] | None, events: Sequence[tuple[Position, JobEvent]]
) -> JobPlan:
    """Folds `events` (one job's, in offset order) into its document: the document to create,
    or the mutations that bring the existing one up to date."""
    guard = -1 if existing is None else int(existing["applied_offset"])
    fresh = [(p, e) for p, e in events if p.offset > guard]
    duplicates = len(events) - len(fresh)
    if not fresh:
        return JobPlan(None, (), 0, duplicates)
    # Reuse the reference fold on a one-job model, so both stores mean the same thing.
    model = ReadModel()
    if existing is not None:
        view = view_from_document(existing)
        model.jobs[view.job_id] = view
        model.names[view.job_name] = _name_with(view)
    before = None if existing is None else _mutable(model.jobs[fresh[0][1].job_id])
    history = []
    by_type: Counter[str] = Counter()
    for _, event in fresh:
        apply_job_event(model, event)
        history.append(history_entry(event, error_fingerprint(event)))
        by_type[event.type.value] += 1
    job = model.jobs[fresh[0][1].job_id]
    last_offset = fresh[-1][0].offset
    if existing is None:
        document = {
            "job_id": job.job_id,
            "job_name": job.job_name,
            "queue": job.queue,
            "created_at": job.created_at,
            "data": job.data,
            **_mutable(job),
            "history": history,
            "counters": {"events": len(fresh), "by_type": dict(by_type)},
            "applied_offset": last_offset,
        }
        return JobPlan(document, (), len(fresh), duplicates)
    after = _mutable(job)
    mutations = [Mutation("append", "history", history)]
    mutations.append(Mutation("increment", "counters.events", len(fresh)))
    mutations.extend(
        Mutation("increment", f"counters.by_type.{kind}", n) for kind, n in sorted(by_type.items())
    )
    assert before is not None
    mutations.extend(
        Mutation("upsert", name, value) for name, value in after.items() if value != before[name]
    )
    mutations.append(Mutation("upsert", "applied_offset", last_offset))
    return JobPlan(None, tuple(mutations), len(fresh), duplicates)


def _mutable(job: JobView) -> dict[str, Any]:
    values = {name: getattr(job, name) for name in MUTABLE_FIELDS}
    values["state"] = str(job.state)
    return values


def _name_with(view: JobView) -> NameView:
    """The one-job name view `apply_job_event` expects next to an existing job."""
    name = NameView()
    name.jobs[view.job_id] = view.created_at
    name.counts[view.state] += 1
    if view.state is JobState.ACTIVE:
        name.active.add(view.job_id)
    return name


@dataclass(slots=True)
class FingerprintPlan:
    """The aggregated update of one fingerprint document from one batch."""

    template: str
    error_type: str
    # per source partition, (offset, event time) of each occurrence, in offset order
    occurrences: dict[str, list[tuple[int, int]]] = field(default_factory=dict)

    def add(self, position: Position, at: int) -> None:
        self.occurrences.setdefault(position.source, []).append((position.offset, at))

    def new_document(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "error_type": self.error_type,
            "count": 0,
            "first_seen": None,
            "last_seen": None,
            "offsets": {},
            "vectors": {},
        }

    def mutations(self, existing: dict[str, Any]) -> tuple[list[Mutation], int]:
        """Mutations for the occurrences above the document's per-partition guard."""
        guards = {
            source: (existing.get("offsets") or {}).get(path_key(source), -1)
            for source in self.occurrences
        }
        count = 0
        first, last = existing.get("first_seen"), existing.get("last_seen")
        new_guards: dict[str, int] = {}
        for source, seen in self.occurrences.items():
            for offset, at in seen:
                if offset > guards[source]:
                    count += 1
                    first = at if first is None else min(first, at)
                    last = at if last is None else max(last, at)
                    new_guards[source] = offset
        if not count:
            return [], 0
        mutations = [
            Mutation("increment", "count", count),
            Mutation("upsert", "first_seen", first),
            Mutation("upsert", "last_seen", last),
        ]
        mutations.extend(
            Mutation("upsert", f"offsets.{path_key(s)}", o) for s, o in new_guards.items()
        )
        return mutations, count


def fingerprint_view(document: dict[str, Any]) -> FingerprintView:
    return FingerprintView(
        template=document["template"],
        error_type=document["error_type"],
        count=document["count"],
        first_seen=document["first_seen"],
        last_seen=document["last_seen"],
    )


def path_key(source: str) -> str:
    """A source ("topic:partition") as a sub-document field name: topic names contain dots,
    which sub-document paths read as nesting."""
    return source.replace(".", "~")
