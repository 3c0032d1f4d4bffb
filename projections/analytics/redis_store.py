"""The analytics read model in Redis: each batch folded over the entities it touches, written back
in one optimistic transaction with the offsets it applied.

Keys, under `<prefix>analytics:<generation>:` (default prefix `jobtrail:`):
  job:<id>             JSON: the job's track (state, since, queue, timings, recent event_ids) and
                       the attempts whose outcomes were counted
  conc:name:<name>     JSON: per concurrency level, [attempts, failures]
  conc:worker:<name>   JSON: the same per worker
  error:<sha256>       JSON: template, sample, count, first/last seen, job names, latest jobs,
                       embedding models
  queue:<queue>\\x1f<job name>  JSON: jobs by state, waiting/run-time histograms, finished/minute
  vector:<sha256>:<model>  the vector, little-endian float32, base64
  names, workers, queues   sets: what the conc:name, conc:worker and queue keys exist for
  errors               sorted set: fingerprint by count
  errors:name:<name>   sorted set: fingerprint by its count in that job name
  errors:last-seen     sorted set: fingerprint by the event time it was last seen (ms)
  open                 sorted set: open job ids by the event time they entered their state
  progress             the latest event time applied (ms)
  offsets              hash: "<topic>:<partition>" -> highest offset applied
`<prefix>analytics:current` names the generation readers use (generations and the rebuild
ledger work as for the job read model: projections/redis.py).

A batch: WATCH the offsets hash and the generation pointer, read the entities the batch touches,
fold the batch over them in Python (projections.analytics.model, the same code the tests fold
whole logs with), then MULTI/EXEC the entities that changed with the new offsets. Every batch
writes the offsets hash, so a member of the same group that committed a batch in between (and
may have written a shared entity: a job name's concurrency, an error) makes EXEC fail, and the
batch is read and folded again: batches are serialized without a lock, and no update is lost.
"""

from __future__ import annotations

import base64
import json
import struct
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict
from typing import Any

import redis

from projections.analytics.model import (
    AnalyticsModel,
    AnalyticsRecord,
    ErrorStats,
    JobTrack,
    QueueStats,
    Touched,
    queues_touched,
)
from projections.concurrency import LevelCounts, Levels
from projections.model import JobState, Position, first_gap
from projections.ports import (
    BatchResult,
    Done,
    PendingBatch,
    StaleGenerationError,
    StoreBehindError,
)
from projections.redis import RedisStore, _hash, _unavailable_as_typed
from projections.settings import AnalyticsSettings, RedisSettings

AnalyticsItem = tuple[Position, AnalyticsRecord | None]
_RETRIES = 50  # optimistic transaction attempts before giving the conflict to the caller


class AnalyticsRedisStore:
    name = "analytics"

    def __init__(
        self, settings: RedisSettings | None = None, analytics: AnalyticsSettings | None = None
    ) -> None:
        base = settings or RedisSettings()
        self.settings = base.model_copy(update={"prefix": f"{base.prefix}analytics:"})
        self.max_level = (analytics or AnalyticsSettings()).max_level
        # Generations, the pointer, drop and the rebuild ledger: the job read model's code, on
        # this model's own prefix.
        self.generations = RedisStore(self.settings)

    # -- connection and generations --------------------------------------------------------------

    def setup(self) -> None:
        self.generations.setup()

    @property
    def client(self) -> redis.Redis:
        return self.generations.client

    def namespace(self, generation: int) -> str:
        return self.generations.namespace(generation)

    def current_generation(self) -> int:
        return self.generations.current_generation()

    def new_generation(self) -> int:
        return self.generations.new_generation()

    def switch_to(self, generation: int) -> None:
        self.generations.switch_to(generation)

    def drop(self, generation: int) -> None:
        self.generations.drop(generation)

    def applied_offsets(self, generation: int) -> dict[str, int]:
        return self.generations.applied_offsets(generation)

    # -- writing ---------------------------------------------------------------------------------

    def submit_batch(
        self,
        items: Sequence[AnalyticsItem],
        generation: int,
        *,
        check_current: bool = True,
        log_starts: Mapping[str, int] | None = None,
    ) -> PendingBatch:
        return Done(lambda: self.apply_batch(items, generation, check_current=check_current,
                                             log_starts=log_starts))  # fmt: skip

    def apply_batch(
        self,
        items: Sequence[AnalyticsItem],
        generation: int,
        *,
        check_current: bool = True,
        log_starts: Mapping[str, int] | None = None,
    ) -> BatchResult:
        with _unavailable_as_typed():
            for _ in range(_RETRIES):
                try:
                    return self._apply_once(items, generation, check_current, log_starts)
                except redis.WatchError:
                    continue  # another member wrote an entity this batch read: fold again
            raise redis.ConnectionError(f"analytics batch conflicted {_RETRIES} times in a row")

    def _apply_once(
        self,
        items: Sequence[AnalyticsItem],
        generation: int,
        check_current: bool,
        log_starts: Mapping[str, int] | None,
    ) -> BatchResult:
        ns = self.namespace(generation)
        records = [record for _, record in items]
        touched = Touched.of(records)
        with self.client.pipeline(transaction=True) as pipe:
            pipe.watch(ns + "offsets", ns + "progress", self.generations.pointer_key)  # type: ignore[no-untyped-call]
            if check_current and int(pipe.get(self.generations.pointer_key) or 1) != generation:
                raise StaleGenerationError(f"analytics generation {generation} is not current")
            offsets = {s: int(o) for s, o in _hash(pipe.hgetall(ns + "offsets")).items()}
            gap = first_gap(offsets, (position for position, _ in items), log_starts)
            if gap is not None:
                raise StoreBehindError(self.name, gap)
            model = AnalyticsModel(self.max_level, offsets=offsets)
            model.progress_ms = int(pipe.get(ns + "progress") or 0)
            loaded = _Loaded(pipe, ns)
            loaded.jobs(model, touched.jobs | touched.counted_jobs)
            loaded.levels(model.concurrency.by_job_name, "conc:name:", touched.job_names)
            loaded.levels(model.concurrency.by_worker, "conc:worker:", touched.workers)
            loaded.errors(model, touched.errors)
            loaded.queues(model, queues_touched(model, records))
            before = dict(loaded.snapshot(model))
            applied = sum(model.apply(record, position) for position, record in items)
            pipe.multi()
            for key, value in loaded.snapshot(model):
                if before.get(key) != value:
                    pipe.set(key, value)
            self._write_indexes(pipe, ns, model, loaded.job_ids)
            pipe.hset(ns + "offsets", mapping={s: str(o) for s, o in model.offsets.items()})
            pipe.set(ns + "progress", model.progress_ms)
            pipe.execute()
        return BatchResult(applied, len(items) - applied)

    @staticmethod
    def _write_indexes(
        pipe: redis.client.Pipeline, ns: str, model: AnalyticsModel, job_ids: set[str]
    ) -> None:
        for job_id in job_ids:
            track = model.jobs.get(job_id)
            if track is not None and track.open:
                pipe.zadd(ns + "open", {job_id: track.since})
            else:
                pipe.zrem(ns + "open", job_id)
        if model.concurrency.by_job_name:
            pipe.sadd(ns + "names", *model.concurrency.by_job_name)
        if model.concurrency.by_worker:
            pipe.sadd(ns + "workers", *model.concurrency.by_worker)
        if model.queues:
            pipe.sadd(ns + "queues", *model.queues)
        counted = {fp: stats for fp, stats in model.errors.items() if stats.count}
        if counted:
            pipe.zadd(ns + "errors", {fp: stats.count for fp, stats in counted.items()})
            pipe.zadd(ns + "errors:last-seen", {fp: s.last_seen for fp, s in counted.items()})
            for fp, stats in counted.items():
                for job_name, count in stats.job_names.items():
                    pipe.zadd(f"{ns}errors:name:{job_name}", {fp: count})
        for (fp, model_name), vector in model.vectors.items():
            pipe.set(f"{ns}vector:{fp}:{model_name}", encode_vector(vector))

    # -- reading ---------------------------------------------------------------------------------

    def current(self) -> str:
        """The namespace readers use now."""
        return self.namespace(self.current_generation())

    def snapshot(self, generation: int) -> AnalyticsModel:
        """The whole model of a generation, vectors included (tests, comparisons, small models)."""
        ns = self.namespace(generation)
        model = AnalyticsModel(self.max_level, offsets=self.applied_offsets(generation))
        with _unavailable_as_typed():
            model.progress_ms = int(self.client.get(ns + "progress") or 0)
            keys = [k[len(ns) :] for k in self.client.scan_iter(match=ns + "*", count=2000)]
            loaded = _Loaded(self.client, ns)
            loaded.jobs(model, _suffixes(keys, "job:"))
            loaded.levels(
                model.concurrency.by_job_name, "conc:name:", _suffixes(keys, "conc:name:")
            )
            loaded.levels(model.concurrency.by_worker, "conc:worker:",
                          _suffixes(keys, "conc:worker:"))  # fmt: skip
            loaded.errors(model, _suffixes(keys, "error:"))
            loaded.queues(model, _suffixes(keys, "queue:"))
            for key in _suffixes(keys, "vector:"):
                fp, _, model_name = key.partition(":")
                raw = self.client.get(f"{ns}vector:{key}")
                if raw is not None:
                    model.vectors[(fp, model_name)] = decode_vector(str(raw))
        return model

    def entity(self, key: str) -> Any:
        """One JSON entity of the current generation (None when absent)."""
        with _unavailable_as_typed():
            raw = self.client.get(self.current() + key)
        return None if raw is None else json.loads(str(raw))


class _Loaded:
    """Reads entities into a partial model, and serializes them back for the change check."""

    def __init__(self, reader: Any, ns: str) -> None:
        self._reader = reader
        self._ns = ns
        self.job_ids: set[str] = set()
        self._names: set[str] = set()
        self._workers: set[str] = set()
        self._errors: set[str] = set()
        self._queues: set[str] = set()

    def _get(self, prefix: str, ids: set[str] | frozenset[str]) -> Iterator[tuple[str, Any]]:
        ordered = sorted(ids)
        for start in range(0, len(ordered), 1000):
            chunk = ordered[start : start + 1000]
            values = self._reader.mget([f"{self._ns}{prefix}{i}" for i in chunk])
            for key, raw in zip(chunk, values, strict=True):
                if raw is not None:
                    yield key, json.loads(raw)

    def jobs(self, model: AnalyticsModel, ids: set[str] | frozenset[str]) -> None:
        self.job_ids |= ids
        for job_id, doc in self._get("job:", ids):
            if doc.get("track") is not None:
                model.jobs[job_id] = track_from_json(doc["track"])
            if doc.get("counted"):
                model.concurrency.counted[job_id] = set(doc["counted"])

    def levels(self, table: dict[str, Levels], prefix: str, ids: set[str] | frozenset[str]) -> None:
        (self._names if prefix == "conc:name:" else self._workers).update(ids)
        for key, doc in self._get(prefix, ids):
            table[key] = {int(level): LevelCounts(*counts) for level, counts in doc.items()}

    def errors(self, model: AnalyticsModel, ids: set[str] | frozenset[str]) -> None:
        self._errors |= ids
        for fp, doc in self._get("error:", ids):
            model.errors[fp] = error_from_json(doc)

    def queues(self, model: AnalyticsModel, ids: set[str] | frozenset[str]) -> None:
        self._queues |= ids
        for key, doc in self._get("queue:", ids):
            model.queues[key] = queue_from_json(doc)

    def snapshot(self, model: AnalyticsModel) -> Iterator[tuple[str, str]]:
        """(key, JSON) of every loaded entity the model holds."""
        ns, dump = self._ns, _dump
        for job_id in self.job_ids:
            track = model.jobs.get(job_id)
            counted = model.concurrency.counted.get(job_id)
            if track is not None or counted:
                yield f"{ns}job:{job_id}", dump({
                    "track": None if track is None else track_to_json(track),
                    "counted": sorted(counted or ()),
                })  # fmt: skip
        for prefix, table, ids in (
            ("conc:name:", model.concurrency.by_job_name, self._names),
            ("conc:worker:", model.concurrency.by_worker, self._workers),
        ):
            for key in ids:
                if key in table:
                    levels = {str(k): [c.attempts, c.failures] for k, c in table[key].items()}
                    yield f"{ns}{prefix}{key}", dump(levels)
        for fp in self._errors:
            if fp in model.errors:
                yield f"{ns}error:{fp}", dump(asdict(model.errors[fp]))
        for key in self._queues:
            if key in model.queues:
                yield f"{ns}queue:{key}", dump(asdict(model.queues[key]))


def _dump(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def track_to_json(track: JobTrack) -> dict[str, Any]:
    doc = asdict(track)
    doc["state"] = None if track.state is None else track.state.value
    return doc


def track_from_json(doc: dict[str, Any]) -> JobTrack:
    state = doc.pop("state")
    return JobTrack(**doc, state=None if state is None else JobState(state))


def error_from_json(doc: dict[str, Any]) -> ErrorStats:
    hours = {int(k): v for k, v in doc.pop("hours", {}).items()}  # absent before categories
    return ErrorStats(**doc, hours=hours)


def queue_from_json(doc: dict[str, Any]) -> QueueStats:
    return QueueStats(
        states=doc["states"],
        waiting={int(k): v for k, v in doc["waiting"].items()},
        running={int(k): v for k, v in doc["running"].items()},
        finished_per_minute={int(k): v for k, v in doc["finished_per_minute"].items()},
    )


def encode_vector(vector: Sequence[float]) -> str:
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()


def decode_vector(raw: str) -> tuple[float, ...]:
    data = base64.b64decode(raw)
    return struct.unpack(f"<{len(data) // 4}f", data)


def _suffixes(keys: Sequence[str], prefix: str) -> set[str]:
    return {k[len(prefix) :] for k in keys if k.startswith(prefix)}
