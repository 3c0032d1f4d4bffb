"""What the Couchbase projection writes, decided without I/O.

One document per job: its immutable fields (id, name, queue, input data) are written once, when
the document is created; every later change is a sub-document mutation (array append, increment,
upsert) planned here, and `IMMUTABLE_PATHS` are never among their paths (tests prove it for any
event). A job's events all come from one partition, in offset order, so the document's
`applied_offset` is an exact guard: an event at or below it was appended already.

Each event also passes the event_id guard of the reference fold (`recent_event_ids`, a mutable
field of the document): a re-sent copy changes nothing but the offset guard, and counts as a
duplicate.

Within Couchbase Server's limits (projections.couchbase_limits):
- specs: an update is at most 16 specs (history, counters, the 13 mutable fields, the guard).
  Should a plan ever need more, `calls` splits it into several mutate_in calls whose first
  writes the whole update as a `pending` intent (absolute values only) and whose last writes the
  guard and removes the intent: a crash in between leaves a document whose next plan finishes the
  intent first (`plan_job` returns just that), so a half-applied update is never planned over.
- size: `history` keeps the last `HISTORY_LIMIT` entries; `counters.history_dropped` counts the
  older ones, which the log (the job-events topic, forever) still holds. `recent_event_ids` is
  bounded by the model's window; the other fields by the contract's string limits.

One document per error fingerprint, updated from every partition: its guard is the highest
offset applied per source partition.
"""

from __future__ import annotations

import copy
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from processors.fingerprint import Fingerprint, fingerprint
from projections.couchbase_limits import SPEC_LIMIT
from projections.model import (
    FingerprintView,
    JobState,
    JobView,
    NameView,
    Position,
    ReadModel,
    apply_job_event,
)
from schemas.derived import ErrorVector
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
    "recent_event_ids",
)

# How many history entries a job document keeps (the latest); older ones are counted in
# counters.history_dropped and read from the log.
HISTORY_LIMIT = 100


@dataclass(frozen=True, slots=True)
class Mutation:
    """One sub-document operation: `append` values to an array, `increment` a counter by a delta,
    `upsert` a value, or `remove` the path."""

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
    # the events that took effect (neither at or below the guard nor a re-sent event_id)
    effective: tuple[tuple[Position, JobEvent], ...] = ()
    # True when the mutations only finish an update left half-applied: plan again after them
    finishes_pending: bool = False


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
        # Strict JSON has no NaN or Infinity (the contract refuses them; never fail on one here).
        finite = math.isfinite(event.progress)
        entry["progress"] = event.progress if finite else repr(event.progress)
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
    mutable["recent_event_ids"] = list(doc.get("recent_event_ids") or [])
    return JobView(
        job_id=doc["job_id"],
        job_name=doc["job_name"],
        created_at=doc["created_at"],
        queue=doc.get("queue"),
        data=doc.get("data"),
        **mutable,
    )


def plan_job(
    existing: dict[str, Any] | None,
    events: Sequence[tuple[Position, JobEvent]],
    *,
    spec_limit: int = SPEC_LIMIT,
) -> JobPlan:
    """Folds `events` (one job's, in offset order) into its document: the document to create,
    or the mutations that bring the existing one up to date. A document with a `pending` intent
    gets the mutations that finish it (`finishes_pending`), and is planned again after them."""
    if existing is not None and existing.get("pending") is not None:
        return _finish_pending(existing["pending"])
    guard = -1 if existing is None else int(existing["applied_offset"])
    fresh = [(p, e) for p, e in events if p.offset > guard]
    if not fresh:
        return JobPlan(None, (), 0, len(events))
    # Reuse the reference fold on a one-job model, so both stores mean the same thing.
    model = ReadModel()
    if existing is not None:
        view = view_from_document(existing)
        model.jobs[view.job_id] = view
        model.names[view.job_name] = _name_with(view)
    before = None if existing is None else _mutable(model.jobs[fresh[0][1].job_id])
    history = []
    by_type: Counter[str] = Counter()
    effective = []
    for position, event in fresh:
        if not apply_job_event(model, event):
            continue  # a re-sent copy: the guard below moves past it, nothing else
        effective.append((position, event))
        history.append(history_entry(event, error_fingerprint(event)))
        by_type[event.type.value] += 1
    job = model.jobs[fresh[0][1].job_id]
    last_offset = fresh[-1][0].offset
    duplicates = len(events) - len(effective)
    if existing is None:
        kept = history[-HISTORY_LIMIT:]
        document = {
            "job_id": job.job_id,
            "job_name": job.job_name,
            "queue": job.queue,
            "created_at": job.created_at,
            "data": job.data,
            **_mutable(job),
            "history": kept,
            "counters": _counters({}, len(effective), by_type, len(history) - len(kept)),
            "applied_offset": last_offset,
        }
        return JobPlan(document, (), len(effective), duplicates, tuple(effective))
    mutations: list[Mutation] = []
    if effective:
        old = list(existing.get("history") or [])
        overflow = max(len(old) + len(history) - HISTORY_LIMIT, 0)
        if overflow:
            mutations.append(Mutation("upsert", "history", (old + history)[-HISTORY_LIMIT:]))
        else:
            mutations.append(Mutation("append", "history", history))
        counters = _counters(existing.get("counters") or {}, len(effective), by_type, overflow)
        mutations.append(Mutation("upsert", "counters", counters))
    assert before is not None
    after = _mutable(job)
    mutations.extend(
        Mutation("upsert", name, value) for name, value in after.items() if value != before[name]
    )
    mutations.append(Mutation("upsert", "applied_offset", last_offset))
    if len(mutations) > spec_limit and mutations[0].op == "append":
        # Split across calls (see `calls`): only absolute values may go into the intent.
        whole = list(existing.get("history") or []) + history
        mutations[0] = Mutation("upsert", "history", whole)
    return JobPlan(None, tuple(mutations), len(effective), duplicates, tuple(effective))


def _counters(
    old: dict[str, Any], events: int, by_type: Counter[str], dropped: int
) -> dict[str, Any]:
    """The counters object after an update: absolute values (the plan read the document under
    CAS), one spec whatever the event types."""
    kinds = Counter({k: int(v) for k, v in (old.get("by_type") or {}).items()}) + by_type
    counters: dict[str, Any] = {
        "events": int(old.get("events", 0)) + events,
        "by_type": dict(sorted(kinds.items())),
    }
    if dropped or old.get("history_dropped"):
        counters["history_dropped"] = int(old.get("history_dropped", 0)) + dropped
    return counters


def calls(mutations: Sequence[Mutation], limit: int = SPEC_LIMIT) -> list[list[Mutation]]:
    """`mutations` (a plan's, the `applied_offset` guard last) as mutate_in calls of at most
    `limit` specs each. Several calls are made crash-safe by an intent: the first call writes
    every mutation but the guard as `pending` (absolute values: appends become the whole array,
    which the plan knows from the document it read), the last writes the guard and removes the
    intent. Apply the calls in order, each with the CAS the previous one returned."""
    if len(mutations) <= limit:
        return [list(mutations)]
    if limit < 3:
        raise ValueError("a split update needs room for the intent, the guard and its removal")
    *body, guard = mutations
    assert guard.path == "applied_offset", "the guard must be the plan's last mutation"
    assert all(m.op == "upsert" for m in body), "an intent holds absolute values only"
    pending = {
        "offset": guard.value,
        "mutations": [[m.op, m.path, m.value] for m in body],
    }
    return _split([Mutation("upsert", "pending", pending)], body, guard, limit)


def _finish_pending(pending: dict[str, Any]) -> JobPlan:
    body = [Mutation(op, path, value) for op, path, value in pending["mutations"]]
    guard = Mutation("upsert", "applied_offset", int(pending["offset"]))
    return JobPlan(None, (*body, guard, _REMOVE_PENDING), 0, 0, finishes_pending=True)


_REMOVE_PENDING = Mutation("remove", "pending", None)


def _split(
    first: list[Mutation], body: list[Mutation], guard: Mutation, limit: int
) -> list[list[Mutation]]:
    specs = first + body
    result = [specs[i : i + limit] for i in range(0, len(specs), limit)]
    tail = [guard, _REMOVE_PENDING]
    if len(result[-1]) + len(tail) <= limit:
        result[-1].extend(tail)
    else:
        result.append(tail)
    return result


def plan_calls(plan: JobPlan, limit: int = SPEC_LIMIT) -> list[list[Mutation]]:
    """A plan's mutate_in calls. Those of a `finishes_pending` plan are idempotent upserts (the
    intent stays until the last call, so a crash in between finishes it again)."""
    if not plan.finishes_pending:
        return calls(plan.mutations, limit)
    if len(plan.mutations) <= limit:
        return [list(plan.mutations)]
    *body, guard, _remove = plan.mutations
    return _split([], list(body), guard, limit)


def apply_mutations(document: dict[str, Any], mutations: Sequence[Mutation]) -> dict[str, Any]:
    """Sub-document semantics on a dict (parents created): what the server does with them."""
    result = copy.deepcopy(document)
    for m in mutations:
        *parents, leaf = m.path.split(".")
        node = result
        for part in parents:
            node = node.setdefault(part, {})
        if m.op == "append":
            node.setdefault(leaf, []).extend(m.value)
        elif m.op == "increment":
            node[leaf] = node.get(leaf, 0) + m.value
        elif m.op == "remove":
            node.pop(leaf, None)
        else:
            node[leaf] = copy.deepcopy(m.value)
    return result


def _mutable(job: JobView) -> dict[str, Any]:
    values = {name: getattr(job, name) for name in MUTABLE_FIELDS}
    values["state"] = str(job.state)
    values["recent_event_ids"] = list(job.recent_event_ids)  # a copy: the fold appends to it
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
        # Absolute values under the CAS of the document read: 4 specs however many partitions
        # the batch spans (one spec per partition could pass Server's 16).
        offsets = {**(existing.get("offsets") or {})}
        offsets.update({path_key(s): o for s, o in new_guards.items()})
        mutations = [
            Mutation("upsert", "count", int(existing.get("count") or 0) + count),
            # A document its vector created first has no template yet.
            *(
                [
                    Mutation("upsert", "template", self.template),
                    Mutation("upsert", "error_type", self.error_type),
                ]
                if not existing.get("template")
                else []
            ),
            Mutation("upsert", "first_seen", first),
            Mutation("upsert", "last_seen", last),
            Mutation("upsert", "offsets", offsets),
        ]
        return mutations, count


def vector_path(model: str) -> str:
    """Where a model's vector lives in the error document (model names hold dots and slashes,
    which sub-document paths would read as nesting)."""
    return "vectors." + model.replace(".", "~").replace("/", "~~")


def vector_entry(vector: ErrorVector) -> dict[str, Any]:
    return {
        "model": vector.model,
        "dimension": vector.dimension,
        "truncated": vector.truncated,
        "vector": list(vector.vector),
    }


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
