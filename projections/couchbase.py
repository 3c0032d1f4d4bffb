"""The Couchbase read model, through the Couchbase Python SDK.

Document keys, under the namespace `<prefix><generation>::` (default prefix `jobtrail::`):
  job::<job id>                 the job: immutable fields, state, timings, the latest history
                                entries (older ones counted; the log holds them), counters
  fp::<sha256>                  an error fingerprint: template, count, first/last seen, vectors
  index::jobs::<source>::<page> ids of the jobs created at offsets [page * 8192, (page+1) * 8192)
                                of one source partition (listing without N1QL, bounded pages)
  index::fps::<xx>              fingerprints created, by the first two hex digits of their hash
  offsets                       per source partition, the highest offset applied (where to resume)
  dead-letters                  events a document refused for good (bounded, see below)
`<prefix>current` names the generation readers use. A key longer than Server's 250 bytes is
hashed (couchbase_limits.document_key), by writers and readers alike.

A batch applies only where it follows the `offsets` document (else StoreBehindError, nothing
applied). Its jobs are planned from their documents (offset and event_id guards, couchbase_docs),
then the fingerprints of the events that took effect are written, then the jobs, then the
offsets. Every document write is guarded, so a batch that failed half-way is simply applied
again: a replay plans the same jobs from the same documents until their guard moves.

Errors: timeouts, cancellations, temporary failures, a locked document or an unavailable service
raise StoreUnavailableError (the projector backs off and retries). An event that makes its
document refuse for good (too large, not strict JSON, too deep, an invalid argument) is
dead-lettered: recorded in the generation's `dead-letters` document (at most DEAD_LETTER_LIMIT
entries: source, offset, job id, event id, reason; `dropped` counts the rest), counted in
`jobtrail_projection_dead_letters_total{store,reason}`, and the batch goes on without it.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from functools import cache
from typing import Any

from couchbase import subdocument as sd
from couchbase.auth import PasswordAuthenticator
from couchbase.cluster import Cluster
from couchbase.collection import Collection
from couchbase.exceptions import (
    CasMismatchException,
    CouchbaseException,
    DocumentExistsException,
    DocumentNotFoundException,
    PathExistsException,
)
from couchbase.options import ClusterOptions, ClusterTimeoutOptions, MutateInOptions
from prometheus_client import REGISTRY, Counter

from projections.couchbase_docs import (
    FingerprintPlan,
    JobPlan,
    Mutation,
    error_fingerprint,
    fingerprint_view,
    path_key,
    plan_calls,
    plan_job,
    vector_entry,
    vector_path,
    view_from_document,
)
from projections.couchbase_errors import (
    DEAD_LETTER_LIMIT,
    DocumentRefusedError,
    add_dead_letters,
    check_document,
    check_mutations,
    guarded,
    refusal_reason,
)
from projections.couchbase_limits import SPEC_LIMIT, document_key
from projections.model import Position, ReadModel, first_gap
from projections.ports import (
    BatchResult,
    PendingBatch,
    StaleGenerationError,
    StoreBehindError,
    StoreUnavailableError,
)
from projections.settings import CouchbaseSettings
from schemas.derived import ErrorVector
from schemas.job_event import JobEvent, millis

Run = list[tuple[Position, JobEvent]]
# What the Couchbase projection reads: job events, and error vectors for the error documents.
CouchbaseItem = tuple[Position, JobEvent | ErrorVector | None]

# Offsets per job-index page: a page lists at most this many ids (of at most ~1 KB each).
INDEX_PAGE_OFFSETS = 8192
_FP_SHARDS = [f"{i:02x}" for i in range(256)]

__all__ = ["DEAD_LETTER_LIMIT", "CouchbaseStore", "dead_letter_counter"]


@cache
def dead_letter_counter() -> Counter:
    """Created on first use (no import-time side effects), once per process."""
    return Counter(
        "jobtrail_projection_dead_letters",
        "Events a store refused for good (dead-lettered in the store, the batch goes on)",
        ["store", "reason"],
        registry=REGISTRY,
    )


class ChangedUnderUsError(StoreUnavailableError):
    """A document changed between its read and its write: the projection is single-writer, so
    another writer (a restore, a second projector) is at work; retry the whole batch."""


class CouchbaseStore:
    name = "couchbase"
    # Sub-document specs per mutate_in call (Server's limit; tests lower it to force splits).
    spec_limit = SPEC_LIMIT

    def __init__(self, settings: CouchbaseSettings | None = None) -> None:
        self.settings = settings or CouchbaseSettings()
        self._collection: Collection | None = None
        self._pool = ThreadPoolExecutor(self.settings.concurrency, thread_name_prefix="couchbase")
        self._submitter = ThreadPoolExecutor(1, thread_name_prefix="couchbase-batch")

    def setup(self) -> None:
        s = self.settings
        timeouts = ClusterTimeoutOptions(
            kv_timeout=timedelta(seconds=s.timeout_s),
            bootstrap_timeout=timedelta(seconds=s.timeout_s * 2),
        )
        try:
            cluster = Cluster(
                s.connstr,
                ClusterOptions(
                    PasswordAuthenticator(s.username, s.password.get_secret_value()),
                    timeout_options=timeouts,
                ),
            )
            cluster.wait_until_ready(timedelta(seconds=s.timeout_s * 2))
        except CouchbaseException as exc:
            raise StoreUnavailableError(f"couchbase at {s.connstr}: {exc}") from exc
        self._collection = cluster.bucket(s.bucket).default_collection()

    @property
    def collection(self) -> Collection:
        if self._collection is None:
            raise RuntimeError("CouchbaseStore.setup() was not called")
        return self._collection

    def namespace(self, generation: int) -> str:
        return f"{self.settings.prefix}{generation}::"

    def key(self, generation: int, name: str) -> str:
        """The key of document `name` of `generation` (hashed when too long for Server)."""
        return document_key(self.namespace(generation), name)

    @property
    def pointer_key(self) -> str:
        return f"{self.settings.prefix}current"

    # -- generations -----------------------------------------------------------------------------

    def current_generation(self) -> int:
        def read() -> int:
            try:
                return int(self.collection.get(self.pointer_key).content_as[dict]["generation"])
            except DocumentNotFoundException:
                with contextlib.suppress(DocumentExistsException):
                    self.collection.insert(self.pointer_key, {"generation": 1})
                return int(self.collection.get(self.pointer_key).content_as[dict]["generation"])

        return guarded(read)

    def new_generation(self) -> int:
        def bump() -> int:
            counter = f"{self.settings.prefix}generations"
            current = self.current_generation()
            while True:
                try:
                    result = self.collection.get(counter)
                    value = max(int(result.content_as[dict]["last"]), current) + 1
                    self.collection.replace(counter, {"last": value}, cas=result.cas)
                    return value
                except DocumentNotFoundException:
                    try:
                        self.collection.insert(counter, {"last": current + 1})
                        return current + 1
                    except DocumentExistsException:
                        continue
                except CasMismatchException:
                    continue

        return guarded(bump)

    def switch_to(self, generation: int) -> None:
        guarded(lambda: self.collection.upsert(self.pointer_key, {"generation": generation}))

    def drop(self, generation: int) -> None:
        def remove(key: str) -> None:
            with contextlib.suppress(DocumentNotFoundException):
                self.collection.remove(key)

        def keys() -> list[str]:
            jobs, fps = self._index_keys(generation, "jobs"), self._index_keys(generation, "fps")
            found = [self.key(generation, "job::" + job) for job in self._ids(jobs)]
            found += [self.key(generation, "fp::" + fp) for fp in self._ids(fps)]
            # The offsets document last: the job index pages are found through it.
            return found + jobs + fps

        def remove_all() -> None:
            list(self._pool.map(remove, keys()))
            # The offsets document last: the job index pages are found through it.
            for name in ("dead-letters", "offsets"):
                remove(self.key(generation, name))

        guarded(remove_all)

    def applied_offsets(self, generation: int) -> dict[str, int]:
        def read() -> dict[str, int]:
            try:
                doc = self.collection.get(self.key(generation, "offsets"))
            except DocumentNotFoundException:
                return {}
            return {k: int(v) for k, v in doc.content_as[dict].items()}

        return guarded(read)

    # -- writing ---------------------------------------------------------------------------------

    def apply_batch(
        self,
        items: Sequence[CouchbaseItem],
        generation: int,
        *,
        check_current: bool = True,
        log_starts: Mapping[str, int] | None = None,
    ) -> BatchResult:
        if check_current and self.current_generation() != generation:
            raise StaleGenerationError(f"couchbase generation {generation} is no longer current")
        gap = first_gap(self.applied_offsets(generation), (p for p, _ in items), log_starts)
        if gap is not None:
            raise StoreBehindError(self.name, gap)
        by_job: dict[str, Run] = defaultdict(list)
        vectors: dict[str, dict[str, ErrorVector]] = defaultdict(dict)
        offsets: dict[str, int] = {}
        skipped = 0
        for position, record in items:
            offsets[position.source] = max(offsets.get(position.source, -1), position.offset)
            if record is None:
                skipped += 1
            elif isinstance(record, ErrorVector):
                vectors[record.fingerprint][record.model] = record  # the latest per key wins
            else:
                by_job[record.job_id].append((position, record))
        jobs = guarded(lambda: list(self._pool.map(
            lambda run: self._plan_job(generation, run), by_job.values())))  # fmt: skip
        fingerprints = _fingerprint_plans(job.plan.effective for job in jobs)
        guarded(lambda: list(self._pool.map(lambda kv: self._apply_fingerprint(generation, *kv),
                                            fingerprints.items())))  # fmt: skip
        guarded(lambda: list(self._pool.map(lambda job: self._write_job(generation, job), jobs)))
        guarded(lambda: list(self._pool.map(lambda kv: self._apply_vectors(generation, *kv),
                                            vectors.items())))  # fmt: skip
        guarded(lambda: self._advance_offsets(generation, offsets))
        refused = [job for job in jobs if job.refused]
        if refused:
            guarded(lambda: self._dead_letter(generation, refused))
        applied = sum(job.plan.applied for job in jobs) + sum(len(v) for v in vectors.values())
        return BatchResult(applied + skipped, sum(job.plan.duplicates for job in jobs))

    def submit_batch(
        self,
        items: Sequence[CouchbaseItem],
        generation: int,
        *,
        check_current: bool = True,
        log_starts: Mapping[str, int] | None = None,
    ) -> PendingBatch:
        # The SDK waits on the network without the GIL: a thread applies while the caller goes on.
        return self._submitter.submit(
            self.apply_batch, items, generation, check_current=check_current, log_starts=log_starts
        )

    def _read(self, key: str) -> tuple[dict[str, Any] | None, int]:
        try:
            found = self.collection.get(key)
        except DocumentNotFoundException:
            return None, 0
        return found.content_as[dict], found.cas

    def _plan_job(self, generation: int, run: Run) -> _JobWork:
        """Reads the job's document and plans the run over it (finishing a half-applied update
        first), setting aside the events its document refuses for good."""
        key = self.key(generation, "job::" + run[0][1].job_id)
        while True:
            existing, cas = self._read(key)
            plan = plan_job(existing, run, spec_limit=self.spec_limit)
            if plan.finishes_pending:
                self._mutate_calls(key, plan_calls(plan, self.spec_limit), cas)
                continue
            work = _JobWork(key, run, existing, cas, plan)
            problem = _problem(existing, plan)
            return work if problem is None else work.without_refused(self.spec_limit)

    def _write_job(self, generation: int, job: _JobWork, *, singly: bool = False) -> None:
        plan = job.plan
        try:
            if plan.create is not None:
                # The index entry first: after a crash it may name a job not yet written
                # (the replay writes it), never miss one that was.
                first = job.run[0][0]
                page = f"index::jobs::{first.source}::{first.offset // INDEX_PAGE_OFFSETS}"
                with contextlib.suppress(PathExistsException):
                    self.collection.mutate_in(
                        self.key(generation, page),
                        [sd.array_addunique("ids", plan.create["job_id"], create_parents=True)],
                        MutateInOptions(store_semantics=sd.StoreSemantics.UPSERT),
                    )
                self.collection.insert(job.key, plan.create)
            elif plan.mutations:
                self._mutate_calls(job.key, plan_calls(plan, self.spec_limit), job.cas)
        except (CasMismatchException, DocumentExistsException) as exc:
            raise ChangedUnderUsError(f"couchbase: {job.key} changed under the batch") from exc
        except CouchbaseException as exc:
            reason = refusal_reason(exc)
            if reason is None:
                raise
            if singly or len(job.run) == 1:
                job.refused.extend((p, e, reason) for p, e in plan.effective)
                return
            # Server refused what the store's own check let through: find the events it
            # refuses one at a time, so the job's other events still apply.
            for event in job.run:
                single = self._plan_job(generation, [event])
                self._write_job(generation, single, singly=True)
                job.refused.extend(single.refused)

    def _mutate_calls(self, key: str, calls: list[list[Mutation]], cas: int) -> None:
        """Applies a plan's calls in order, each under the CAS the previous one returned."""
        for specs in calls:
            cas = self.collection.mutate_in(key, _specs(specs), MutateInOptions(cas=cas)).cas

    def _create_fingerprint(self, generation: int, fp: str, document: dict[str, Any]) -> None:
        """Creates the error document (indexed first), unless another writer just did."""
        with contextlib.suppress(PathExistsException):
            self.collection.mutate_in(
                self.key(generation, "index::fps::" + fp[:2]),
                [sd.array_addunique("ids", fp, create_parents=True)],
                MutateInOptions(store_semantics=sd.StoreSemantics.UPSERT),
            )
        with contextlib.suppress(DocumentExistsException):
            self.collection.insert(self.key(generation, "fp::" + fp), check_document(document))

    def _apply_vectors(self, generation: int, fp: str, vectors: dict[str, ErrorVector]) -> None:
        """Upserts each model's vector into the error document (creating it when the vector
        comes before the error's first occurrence). Idempotent: a replay writes the same value,
        and a compacted topic keeps the latest vector per (fingerprint, model)."""
        key = self.key(generation, "fp::" + fp)
        mutations = [Mutation("upsert", vector_path(v.model), vector_entry(v))
                     for v in vectors.values()]  # fmt: skip
        while True:
            try:
                found = self.collection.get(key)
            except DocumentNotFoundException:
                self._create_fingerprint(generation, fp, FingerprintPlan("", "").new_document())
                continue
            try:
                check_mutations(found.content_as[dict], mutations)
                self.collection.mutate_in(key, _specs(mutations), MutateInOptions(cas=found.cas))
                return
            except CasMismatchException:
                continue

    def _apply_fingerprint(self, generation: int, fp: str, plan: FingerprintPlan) -> None:
        key = self.key(generation, "fp::" + fp)
        while True:
            try:
                found = self.collection.get(key)
            except DocumentNotFoundException:
                self._create_fingerprint(generation, fp, plan.new_document())
                continue
            mutations, _ = plan.mutations(found.content_as[dict])
            if not mutations:
                return
            try:
                check_mutations(found.content_as[dict], mutations)
                self.collection.mutate_in(key, _specs(mutations), MutateInOptions(cas=found.cas))
                return
            except CasMismatchException:
                continue  # another projector (another partition) updated it: plan again

    def _advance_offsets(self, generation: int, offsets: dict[str, int]) -> None:
        key = self.key(generation, "offsets")
        while True:
            current, cas = self._read(key)
            current = current or {}
            merged = {**current, **{s: max(o, int(current.get(s, -1))) for s, o in offsets.items()}}
            try:
                if cas:
                    self.collection.replace(key, merged, cas=cas)
                else:
                    self.collection.insert(key, merged)
                return
            except (CasMismatchException, DocumentExistsException):
                continue

    def _dead_letter(self, generation: int, jobs: list[_JobWork]) -> None:
        key = self.key(generation, "dead-letters")
        letters = {
            f"{path_key(p.source)}@{p.offset}": {
                "source": p.source,
                "offset": p.offset,
                "job_id": e.job_id,
                "event_id": e.event_id,
                "reason": reason,
            }
            for job in jobs
            for p, e, reason in job.refused
        }
        while True:
            current, cas = self._read(key)
            merged, added = add_dead_letters(current, letters)
            if not added:
                return
            try:
                if cas:
                    self.collection.replace(key, merged, cas=cas)
                else:
                    self.collection.insert(key, merged)
                break
            except (CasMismatchException, DocumentExistsException):
                continue
        counter = dead_letter_counter()
        for letter in added:
            counter.labels(self.name, letter["reason"]).inc()

    # -- reading ---------------------------------------------------------------------------------

    def dead_letters(self, generation: int) -> dict[str, Any]:
        """The generation's dead-letters document: {"letters": {...}, "dropped": n}."""
        found, _ = guarded(lambda: self._read(self.key(generation, "dead-letters")))
        return found or {"letters": {}, "dropped": 0}

    def _index_keys(self, generation: int, kind: str) -> list[str]:
        if kind == "fps":
            return [self.key(generation, "index::fps::" + shard) for shard in _FP_SHARDS]
        return [
            self.key(generation, f"index::jobs::{source}::{page}")
            for source, last in self.applied_offsets(generation).items()
            for page in range(last // INDEX_PAGE_OFFSETS + 1)
        ]

    def _ids(self, keys: list[str]) -> list[str]:
        def read(key: str) -> list[str]:
            found, _ = self._read(key)
            return [] if found is None else list(found["ids"])

        return sorted({i for ids in self._pool.map(read, keys) for i in ids})

    def job_document(self, job_id: str, generation: int) -> dict[str, Any] | None:
        found, _ = guarded(lambda: self._read(self.key(generation, "job::" + job_id)))
        return found

    def error_document(self, fp: str, generation: int) -> dict[str, Any] | None:
        found, _ = guarded(lambda: self._read(self.key(generation, "fp::" + fp)))
        return found

    def snapshot(self, generation: int) -> ReadModel:
        """Jobs, fingerprints and offsets (Couchbase keeps no per-name aggregates)."""
        model = ReadModel(offsets=self.applied_offsets(generation))

        def job(job_id: str) -> dict[str, Any] | None:
            return self.job_document(job_id, generation)

        for doc in self._pool.map(job, self._ids(self._index_keys(generation, "jobs"))):
            if doc is not None:
                view = view_from_document(doc)
                model.jobs[view.job_id] = view
        for fp in self._ids(self._index_keys(generation, "fps")):
            doc, _ = self._read(self.key(generation, "fp::" + fp))
            if doc is not None and doc["count"]:
                model.fingerprints[fp] = fingerprint_view(doc)
        return model


class _JobWork:
    """One job's part of a batch: its document as read, the plan over it, and the events its
    document refused for good (dead-lettered after the batch)."""

    def __init__(
        self, key: str, run: Run, existing: dict[str, Any] | None, cas: int, plan: JobPlan
    ) -> None:
        self.key, self.run, self.existing, self.cas, self.plan = key, run, existing, cas, plan
        self.refused: list[tuple[Position, JobEvent, str]] = []

    def without_refused(self, spec_limit: int) -> _JobWork:
        """Plans the run again event by event, leaving out each event whose update its document
        would refuse (the offset guard still moves past it, so the batch goes on)."""
        kept: Run = []
        for position, event in self.run:
            plan = plan_job(self.existing, [*kept, (position, event)], spec_limit=spec_limit)
            problem = _problem(self.existing, plan)
            if problem is None:
                kept.append((position, event))
            else:
                self.refused.append((position, event, problem))
        self.plan = plan_job(self.existing, kept, spec_limit=spec_limit) if kept else JobPlan(
            None, (), 0, 0)  # fmt: skip
        return self


def _problem(existing: dict[str, Any] | None, plan: JobPlan) -> str | None:
    """Why the document would refuse `plan` for good (client-side, before any write)."""
    try:
        if plan.create is not None:
            check_document(plan.create)
        elif existing is not None and plan.mutations:
            check_mutations(existing, plan.mutations)
    except DocumentRefusedError as exc:
        return exc.reason
    return None


def _fingerprint_plans(
    runs: Iterable[Sequence[tuple[Position, JobEvent]]],
) -> dict[str, FingerprintPlan]:
    plans: dict[str, FingerprintPlan] = {}
    for effective in runs:
        for position, event in effective:
            print_ = error_fingerprint(event)
            if print_ is None:
                continue
            plan = plans.setdefault(
                print_.sha256,
                FingerprintPlan(print_.template, event.error.type),  # type: ignore[union-attr]
            )
            plan.add(position, millis(event.occurred_at))
    for plan in plans.values():
        for seen in plan.occurrences.values():
            seen.sort()  # the fingerprint's guard needs each partition's offsets in order
    return plans


def _specs(mutations: Sequence[Mutation]) -> list[Any]:
    specs = []
    for m in mutations:
        if m.op == "append":
            specs.append(sd.array_append(m.path, *m.value, create_parents=True))
        elif m.op == "increment":
            specs.append(sd.increment(m.path, m.value, create_parents=True))
        elif m.op == "remove":
            specs.append(sd.remove(m.path))
        else:
            specs.append(sd.upsert(m.path, m.value, create_parents=True))
    return specs
