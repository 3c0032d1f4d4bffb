"""The Couchbase read model, through the Couchbase Python SDK.

Document keys, under the namespace `<prefix><generation>::` (default prefix `jobtrail::`):
  job::<job id>          the job: immutable fields, state, timings, full event history, counters
  fp::<sha256>           an error fingerprint: template, count, first/last seen, vectors
  index::jobs::<source>  job ids created from one source partition (listing without N1QL)
  index::fps             fingerprints created
  offsets                per source partition, the highest offset applied (where to resume)
`<prefix>current` names the generation readers use.

A batch is applied job by job, concurrently across jobs (each job's events in order), then
fingerprint by fingerprint. Every document write is guarded (see couchbase_docs), so a batch
that failed half-way is simply applied again.
"""

from __future__ import annotations

import contextlib
from collections import defaultdict
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any, TypeVar

from couchbase import subdocument as sd
from couchbase.auth import PasswordAuthenticator
from couchbase.cluster import Cluster
from couchbase.collection import Collection
from couchbase.exceptions import (
    AmbiguousTimeoutException,
    CasMismatchException,
    CouchbaseException,
    DocumentExistsException,
    DocumentNotFoundException,
    RequestCanceledException,
    TimeoutException,
    UnAmbiguousTimeoutException,
)
from couchbase.options import ClusterOptions, ClusterTimeoutOptions, MutateInOptions

from projections.couchbase_docs import (
    FingerprintPlan,
    Mutation,
    error_fingerprint,
    fingerprint_view,
    plan_job,
    view_from_document,
)
from projections.model import Position, ReadModel
from projections.ports import (
    BatchResult,
    Item,
    PendingBatch,
    StaleGenerationError,
    StoreUnavailableError,
)
from projections.settings import CouchbaseSettings
from schemas.job_event import JobEvent, millis

T = TypeVar("T")
_UNAVAILABLE = (
    AmbiguousTimeoutException,
    UnAmbiguousTimeoutException,
    TimeoutException,
    RequestCanceledException,
)


class CouchbaseStore:
    name = "couchbase"

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

        return _guarded(read)

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

        return _guarded(bump)

    def switch_to(self, generation: int) -> None:
        _guarded(lambda: self.collection.upsert(self.pointer_key, {"generation": generation}))

    def drop(self, generation: int) -> None:
        ns = self.namespace(generation)

        def remove(key: str) -> None:
            with contextlib.suppress(DocumentNotFoundException):
                self.collection.remove(key)

        keys = [ns + "job::" + job for job in self._index(ns, "jobs")]
        keys += [ns + "fp::" + fp for fp in self._index(ns, "fps")]
        keys += [ns + "offsets", ns + "index::fps"]
        keys += [ns + "index::jobs::" + source for source in self.applied_offsets(generation)]
        _guarded(lambda: list(self._pool.map(remove, keys)))

    def applied_offsets(self, generation: int) -> dict[str, int]:
        def read() -> dict[str, int]:
            try:
                doc = self.collection.get(self.namespace(generation) + "offsets")
            except DocumentNotFoundException:
                return {}
            return {k: int(v) for k, v in doc.content_as[dict].items()}

        return _guarded(read)

    # -- writing ---------------------------------------------------------------------------------

    def apply_batch(
        self, items: Sequence[Item], generation: int, *, check_current: bool = True
    ) -> BatchResult:
        if check_current and self.current_generation() != generation:
            raise StaleGenerationError(f"couchbase generation {generation} is no longer current")
        ns = self.namespace(generation)
        by_job: dict[str, list[tuple[Position, JobEvent]]] = defaultdict(list)
        fingerprints: dict[str, FingerprintPlan] = {}
        offsets: dict[str, int] = {}
        skipped = 0
        for position, event in items:
            offsets[position.source] = max(offsets.get(position.source, -1), position.offset)
            if event is None:
                skipped += 1
                continue
            by_job[event.job_id].append((position, event))
            print_ = error_fingerprint(event)
            if print_ is not None:
                plan = fingerprints.setdefault(
                    print_.sha256,
                    FingerprintPlan(print_.template, event.error.type),  # type: ignore[union-attr]
                )
                plan.add(position, millis(event.occurred_at))
        results = _guarded(
            lambda: list(self._pool.map(lambda run: self._apply_job(ns, run), by_job.values()))
        )
        _guarded(lambda: list(self._pool.map(lambda kv: self._apply_fingerprint(ns, *kv),
                                             fingerprints.items())))  # fmt: skip
        _guarded(lambda: self._advance_offsets(ns, offsets))
        applied = sum(a for a, _ in results)
        return BatchResult(applied + skipped, sum(d for _, d in results))

    def submit_batch(
        self, items: Sequence[Item], generation: int, *, check_current: bool = True
    ) -> PendingBatch:
        # The SDK waits on the network without the GIL: a thread applies while the caller goes on.
        return self._submitter.submit(
            self.apply_batch, items, generation, check_current=check_current
        )

    def _apply_job(self, ns: str, run: list[tuple[Position, JobEvent]]) -> tuple[int, int]:
        key = ns + "job::" + run[0][1].job_id
        while True:
            try:
                found = self.collection.get(key)
                existing, cas = found.content_as[dict], found.cas
            except DocumentNotFoundException:
                existing, cas = None, 0
            plan = plan_job(existing, run)
            try:
                if plan.create is not None:
                    # The index entry first: after a crash it may name a job not yet written
                    # (the replay writes it), never miss one that was.
                    source = run[0][0].source
                    self.collection.mutate_in(
                        ns + "index::jobs::" + source,
                        [sd.array_append("ids", plan.create["job_id"], create_parents=True)],
                        MutateInOptions(store_semantics=sd.StoreSemantics.UPSERT),
                    )
                    self.collection.insert(key, plan.create)
                elif plan.mutations:
                    self.collection.mutate_in(key, _specs(plan.mutations), MutateInOptions(cas=cas))
                return plan.applied, plan.duplicates
            except (CasMismatchException, DocumentExistsException):
                continue  # changed under us (only by a concurrent writer): plan again

    def _apply_fingerprint(self, ns: str, fp: str, plan: FingerprintPlan) -> None:
        key = ns + "fp::" + fp
        while True:
            try:
                found = self.collection.get(key)
            except DocumentNotFoundException:
                self.collection.mutate_in(
                    ns + "index::fps",
                    [sd.array_append("ids", fp, create_parents=True)],
                    MutateInOptions(store_semantics=sd.StoreSemantics.UPSERT),
                )
                with contextlib.suppress(DocumentExistsException):
                    self.collection.insert(key, plan.new_document())
                continue
            mutations, _ = plan.mutations(found.content_as[dict])
            if not mutations:
                return
            try:
                self.collection.mutate_in(key, _specs(mutations), MutateInOptions(cas=found.cas))
                return
            except CasMismatchException:
                continue  # another projector (another partition) updated it: plan again

    def _advance_offsets(self, ns: str, offsets: dict[str, int]) -> None:
        key = ns + "offsets"
        while True:
            try:
                found = self.collection.get(key)
                current, cas = found.content_as[dict], found.cas
            except DocumentNotFoundException:
                current, cas = {}, 0
            merged = {**current, **{s: max(o, int(current.get(s, -1))) for s, o in offsets.items()}}
            try:
                if cas:
                    self.collection.replace(key, merged, cas=cas)
                else:
                    self.collection.insert(key, merged)
                return
            except (CasMismatchException, DocumentExistsException):
                continue

    # -- reading ---------------------------------------------------------------------------------

    def _index(self, ns: str, kind: str) -> list[str]:
        keys = [ns + "index::fps"] if kind == "fps" else [
            ns + "index::jobs::" + source for source in self._sources(ns)
        ]  # fmt: skip
        ids: set[str] = set()
        for key in keys:
            with contextlib.suppress(DocumentNotFoundException):
                ids.update(self.collection.get(key).content_as[dict]["ids"])
        return sorted(ids)

    def _sources(self, ns: str) -> list[str]:
        try:
            return list(self.collection.get(ns + "offsets").content_as[dict])
        except DocumentNotFoundException:
            return []

    def job_document(self, job_id: str, generation: int) -> dict[str, Any] | None:
        try:
            doc: dict[str, Any] = self.collection.get(
                f"{self.namespace(generation)}job::{job_id}"
            ).content_as[dict]
        except DocumentNotFoundException:
            return None
        return doc

    def snapshot(self, generation: int) -> ReadModel:
        """Jobs, fingerprints and offsets (Couchbase keeps no per-name aggregates)."""
        ns = self.namespace(generation)
        model = ReadModel(offsets=self.applied_offsets(generation))

        def job(job_id: str) -> dict[str, Any] | None:
            return self.job_document(job_id, generation)

        for doc in self._pool.map(job, self._index(ns, "jobs")):
            if doc is not None:
                view = view_from_document(doc)
                model.jobs[view.job_id] = view
        for fp in self._index(ns, "fps"):
            doc = self.collection.get(ns + "fp::" + fp).content_as[dict]
            if doc["count"]:
                model.fingerprints[fp] = fingerprint_view(doc)
        return model


def _specs(mutations: Sequence[Mutation]) -> list[Any]:
    specs = []
    for m in mutations:
        if m.op == "append":
            specs.append(sd.array_append(m.path, *m.value, create_parents=True))
        elif m.op == "increment":
            specs.append(sd.increment(m.path, m.value, create_parents=True))
        else:
            specs.append(sd.upsert(m.path, m.value, create_parents=True))
    return specs


def _guarded(call: Callable[[], T]) -> T:
    """Runs `call`, turning the SDK's timeouts and cancellations into StoreUnavailableError."""
    try:
        return call()
    except _UNAVAILABLE as exc:
        raise StoreUnavailableError(f"couchbase: {type(exc).__name__}: {exc}") from exc
