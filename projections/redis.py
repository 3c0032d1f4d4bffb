"""The Redis read model: one Lua script applies a whole batch atomically, each event at most once.

Keys, under the namespace `<prefix><generation>:` (default prefix `jobtrail:`):
  job:<id>                    hash: the job's immutable fields, state, attempts, timings, last error
  name:<name>:counts          hash: jobs now in each state
  name:<name>:jobs            sorted set: job ids by creation time (page newest first)
  name:<name>:state:<state>   sorted set: the jobs now in that state, by creation time
  name:<name>:active          set: jobs running now
  name:<name>:latest          hash: the newest invocation (job_id, created_at, data)
  name:<name>:retries         hash: "<terminal outcome>:<failed attempts>" -> jobs
  names, fps                  sets of job names and fingerprints
  fp:<sha256>                 hash: template, error_type, count, first_seen, last_seen
  eids:<id>                   list: event_ids of the job's last 128 applied events (the guard)
  offsets                     hash: "<topic>:<partition>" -> highest offset applied
`<prefix>current` names the generation readers use.

Error replies: those a wait can fix (OOM, READONLY, BUSY, LOADING, MASTERDOWN, TRYAGAIN,
CLUSTERDOWN) become the port's retryable `StoreUnavailableError`, so the projector backs off with
its partitions paused and retries; any other error reply (a script bug, a key of the wrong type)
becomes `StoreFaultError`: retried the same way, since skipping the batch would lose it, but
logged as an error and counted (`jobtrail_projection_store_faults`) for an operator to fix.
Every event reaching `event_row` has passed the contract (processors.validation), so each field
the script stores is bounded by its limits.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterator, Mapping, Sequence
from importlib import resources
from typing import Any, cast

import redis
from redis.commands.core import Script

from processors.fingerprint import fingerprint
from projections.model import (
    FingerprintView,
    Gap,
    JobState,
    JobView,
    Latest,
    NameView,
    Position,
    ReadModel,
)
from projections.ports import (
    BatchResult,
    Item,
    PendingBatch,
    StaleGenerationError,
    StoreBehindError,
    StoreFaultError,
    StoreUnavailableError,
)
from projections.settings import RedisSettings
from schemas.job_event import JobEvent, JobEventType, millis

_SCRIPT = resources.files("projections").joinpath("apply_events.lua").read_text(encoding="utf-8")


def event_row(position: Position, event: JobEvent | None) -> list[str]:
    """The 16 strings the script reads for one log record."""
    if event is None:
        return [position.source, str(position.offset), "SKIP", *[""] * 13]
    error = event.error
    fp = template = error_type = ""
    if event.type is JobEventType.FAILED and error is not None:
        print_ = fingerprint(error)
        fp, template, error_type = print_.sha256, print_.template, error.type
    return [
        position.source,
        str(position.offset),
        event.type.value,
        event.job_id,
        event.job_name,
        event.queue or "",
        str(millis(event.occurred_at)),
        str(event.attempt),
        event.worker or "",
        event.data or "",
        "" if event.progress is None else repr(event.progress),
        "" if event.will_retry is None else ("1" if event.will_retry else "0"),
        fp,
        error_type,
        template,
        event.event_id,
    ]


class RedisStore:
    name = "redis"

    def __init__(self, settings: RedisSettings | None = None) -> None:
        self.settings = settings or RedisSettings()
        self._client: redis.Redis | None = None
        self._script: Script | None = None

    # -- connection ------------------------------------------------------------------------------

    def setup(self) -> None:
        self._client = redis.Redis.from_url(
            self.settings.url,
            socket_timeout=self.settings.timeout_s,
            socket_connect_timeout=self.settings.timeout_s,
            decode_responses=True,
        )
        self._script = self._client.register_script(_SCRIPT)

    @property
    def client(self) -> redis.Redis:
        if self._client is None:
            raise RuntimeError("RedisStore.setup() was not called")
        return self._client

    def namespace(self, generation: int) -> str:
        return f"{self.settings.prefix}{generation}:"

    @property
    def pointer_key(self) -> str:
        return f"{self.settings.prefix}current"

    # -- generations -----------------------------------------------------------------------------

    def current_generation(self) -> int:
        with _unavailable_as_typed():
            current = self.client.get(self.pointer_key)
            if current is None:  # first use: generation 1 (one round trip on every later call)
                self.client.set(self.pointer_key, 1, nx=True)
                current = self.client.get(self.pointer_key)
            return int(current or 1)

    def new_generation(self) -> int:
        with _unavailable_as_typed():
            generation = int(self.client.incr(f"{self.settings.prefix}generations"))
            current = self.current_generation()
            while generation <= current:  # the counter is newer than the first generation
                generation = int(self.client.incr(f"{self.settings.prefix}generations"))
            return generation

    def switch_to(self, generation: int) -> None:
        with _unavailable_as_typed():
            self.client.set(self.pointer_key, generation)

    def drop(self, generation: int) -> None:
        with _unavailable_as_typed():
            batch: list[str] = []
            for key in self.client.scan_iter(match=self.namespace(generation) + "*", count=2000):
                batch.append(key)
                if len(batch) >= 2000:
                    self.client.unlink(*batch)
                    batch.clear()
            if batch:
                self.client.unlink(*batch)

    def applied_offsets(self, generation: int) -> dict[str, int]:
        with _unavailable_as_typed():
            raw = _hash(self.client.hgetall(self.namespace(generation) + "offsets"))
        return {source: int(offset) for source, offset in raw.items()}

    # -- writing ---------------------------------------------------------------------------------

    def apply_batch(
        self,
        items: Sequence[Item],
        generation: int,
        *,
        check_current: bool = True,
        log_starts: Mapping[str, int] | None = None,
    ) -> BatchResult:
        if self._script is None:
            raise RuntimeError("RedisStore.setup() was not called")
        args = self._script_args(items, generation, check_current, log_starts)
        with _unavailable_as_typed():
            reply = self._script(keys=[], args=args)
        return _batch_result(reply, generation)

    def submit_batch(
        self,
        items: Sequence[Item],
        generation: int,
        *,
        check_current: bool = True,
        log_starts: Mapping[str, int] | None = None,
    ) -> PendingBatch:
        """Sends the script call and returns without waiting for the reply: Redis runs the batch
        while the caller decodes the next one, in one thread (no GIL contention)."""
        if self._script is None:
            raise RuntimeError("RedisStore.setup() was not called")
        args = self._script_args(items, generation, check_current, log_starts)
        pool = self.client.connection_pool
        with _unavailable_as_typed():
            connection = pool.get_connection()
            try:
                connection.send_command("EVALSHA", self._script.sha, 0, *args)  # type: ignore[no-untyped-call]
            except BaseException:
                connection.disconnect()  # type: ignore[no-untyped-call]
                pool.release(connection)
                raise
        return _RedisPending(self, connection, items, generation, check_current, log_starts)

    def _script_args(
        self,
        items: Sequence[Item],
        generation: int,
        check: bool,
        log_starts: Mapping[str, int] | None,
    ) -> list[str]:
        rows = json.dumps([event_row(position, event) for position, event in items])
        # Only the sources of this batch: the script looks up nothing else.
        sources = {position.source for position, _ in items}
        starts = {s: str(o) for s, o in (log_starts or {}).items() if s in sources}
        return [
            self.namespace(generation),
            str(generation) if check else "",
            self.pointer_key,
            rows,
            json.dumps(starts) if starts else "",
        ]

    # -- reading ---------------------------------------------------------------------------------

    def snapshot(self, generation: int) -> ReadModel:
        ns = self.namespace(generation)
        client = self.client
        model = ReadModel(offsets=self.applied_offsets(generation))
        for name in _members(client.smembers(ns + "names")):
            model.names[name] = self._name_view(ns, name)
        job_keys = [str(key) for key in client.scan_iter(match=ns + "job:*", count=5000)]
        for raw in _hgetall_many(client, job_keys):
            job = _job_view(raw)
            model.jobs[job.job_id] = job
        ids = list(model.jobs)
        for job_id, recent in zip(
            ids, _lrange_many(client, [ns + "eids:" + i for i in ids]), strict=True
        ):
            model.jobs[job_id].recent_event_ids = recent
        fps = _members(client.smembers(ns + "fps"))
        for fp, raw in zip(fps, _hgetall_many(client, [ns + "fp:" + f for f in fps]), strict=True):
            model.fingerprints[fp] = FingerprintView(
                template=raw["template"],
                error_type=raw["error_type"],
                count=int(raw["count"]),
                first_seen=int(raw["first_seen"]),
                last_seen=int(raw["last_seen"]),
            )
        return model.normalized()

    def _name_view(self, ns: str, name: str, *, with_jobs: bool = True) -> NameView:
        """A job name's counters; its job index too unless `with_jobs` is False (a reader that
        only needs counts should not pull every job id of a busy name)."""
        return self._name_views(ns, [name], with_jobs=with_jobs)[0]

    def _name_views(self, ns: str, names: list[str], *, with_jobs: bool = True) -> list[NameView]:
        """`_name_view` of each name, in one round trip."""
        pipe = self.client.pipeline(transaction=False)
        for name in names:
            prefix = f"{ns}name:{name}:"
            pipe.hgetall(prefix + "counts")
            pipe.smembers(prefix + "active")
            pipe.hgetall(prefix + "latest")
            pipe.hgetall(prefix + "retries")
            if with_jobs:
                pipe.zrange(prefix + "jobs", 0, -1, withscores=True)
        replies = pipe.execute()
        width = 5 if with_jobs else 4
        views = []
        for start in range(0, len(replies), width):
            counts, active, latest, retries, *jobs = replies[start : start + width]
            views.append(NameView(
                counts=Counter({k: int(v) for k, v in counts.items()}),
                jobs={job_id: int(score) for job_id, score in jobs[0]} if jobs else {},
                active=set(active),
                latest=Latest(int(latest["created_at"]), latest["job_id"], latest.get("data"))
                if latest
                else None,
                retries=Counter({k: int(v) for k, v in retries.items()}),
            ))  # fmt: skip
        return views

    def job(self, job_id: str, generation: int | None = None) -> JobView | None:
        generation = generation or self.current_generation()
        raw = _hash(self.client.hgetall(f"{self.namespace(generation)}job:{job_id}"))
        return _job_view(raw) if raw else None

    def jobs_page(
        self, name: str, page: int = 0, size: int = 50, state: str | None = None
    ) -> list[str]:
        """Job ids of `name`, newest first; with `state`, only the jobs now in it."""
        ns = self.namespace(self.current_generation())
        key = f"{ns}name:{name}:" + ("jobs" if state is None else f"state:{state}")
        return [str(j) for j in self.client.zrevrange(key, page * size, (page + 1) * size - 1)]

    def known_name_view(self, name: str) -> NameView | None:
        """A job name's counters (not its job index); None for a name never seen."""
        ns = self.namespace(self.current_generation())
        if not self.client.sismember(ns + "names", name):
            return None
        return self._name_view(ns, name, with_jobs=False)

    def name_views(self, *, with_jobs: bool = False) -> dict[str, NameView]:
        """Every job name's view, in two round trips (the names, then their counters)."""
        ns = self.namespace(self.current_generation())
        names = _members(self.client.smembers(ns + "names"))
        return dict(zip(names, self._name_views(ns, names, with_jobs=with_jobs), strict=True))

    def job_names(self) -> list[str]:
        return _members(self.client.smembers(self.namespace(self.current_generation()) + "names"))


# The client is created with decode_responses=True, which redis-py's annotations cannot express:
# these two narrow its answers to the strings they are.
def _hash(raw: Any) -> dict[str, str]:
    return cast(dict[str, str], raw)


def _members(raw: Any) -> list[str]:
    return sorted(cast(set[str], raw))


def _batch_result(reply: list[Any], generation: int) -> BatchResult:
    status = int(reply[0])
    if status == -1:
        raise StaleGenerationError(f"redis generation {generation} is no longer current")
    if status == -2:
        _, source, recorded, first = reply
        raise StoreBehindError("redis", Gap(str(source), int(recorded), int(first)))
    return BatchResult(status, int(reply[1]))


class _RedisPending:
    """The reply of a script call sent by `submit_batch`."""

    def __init__(
        self,
        store: RedisStore,
        connection: Any,
        items: Sequence[Item],
        generation: int,
        check_current: bool,
        log_starts: Mapping[str, int] | None,
    ) -> None:
        self._store, self._connection = store, connection
        self._items, self._generation, self._check = items, generation, check_current
        self._log_starts = log_starts

    def result(self) -> BatchResult:
        pool = self._store.client.connection_pool
        try:
            with _unavailable_as_typed():
                reply = self._connection.read_response()
        except redis.exceptions.NoScriptError:
            # Redis restarted and forgot the script: the blocking path loads it again.
            return self._store.apply_batch(
                self._items, self._generation, check_current=self._check,
                log_starts=self._log_starts,
            )  # fmt: skip
        except BaseException:
            self._connection.disconnect()  # a reply may still be on its way: never reuse it
            raise
        finally:
            pool.release(self._connection)
        return _batch_result(reply, self._generation)


def _lrange_many(client: redis.Redis, keys: list[str]) -> Iterator[list[str]]:
    for start in range(0, len(keys), 2000):
        pipe = client.pipeline(transaction=False)
        for key in keys[start : start + 2000]:
            pipe.lrange(key, 0, -1)
        yield from pipe.execute()


def _hgetall_many(client: redis.Redis, keys: list[str]) -> Iterator[dict[str, str]]:
    for start in range(0, len(keys), 2000):
        pipe = client.pipeline(transaction=False)
        for key in keys[start : start + 2000]:
            pipe.hgetall(key)
        yield from pipe.execute()


def _optional_int(raw: dict[str, str], field: str) -> int | None:
    value = raw.get(field)
    return None if value is None else int(value)


def _job_view(raw: dict[str, str]) -> JobView:
    return JobView(
        job_id=raw["job_id"],
        job_name=raw["job_name"],
        created_at=int(raw["created_at"]),
        queue=raw.get("queue"),
        data=raw.get("data"),
        state=JobState(raw["state"]),
        attempts=int(raw["attempts"]),
        failures=int(raw["failures"]),
        worker=raw.get("worker"),
        progress=raw.get("progress"),
        first_started_at=_optional_int(raw, "first_started_at"),
        last_started_at=_optional_int(raw, "last_started_at"),
        ended_at=_optional_int(raw, "ended_at"),
        finished_at=_optional_int(raw, "finished_at"),
        updated_at=int(raw["updated_at"]),
        last_error_fingerprint=raw.get("last_error_fingerprint"),
        last_error_type=raw.get("last_error_type"),
    )


# Error replies a wait can fix. redis-py turns some codes into subclasses (and drops the code from
# the message); the others keep it as the message's first word. MISCONF: a failing snapshot
# blocks writes until the disk has room again.
TRANSIENT_CLASSES = (
    redis.exceptions.OutOfMemoryError,
    redis.exceptions.ReadOnlyError,
    redis.exceptions.BusyLoadingError,
    redis.exceptions.MasterDownError,
    redis.exceptions.TryAgainError,
    redis.exceptions.ClusterDownError,
)
TRANSIENT_CODES = frozenset({"BUSY", "NOREPLICAS", "MISCONF", "OOM", "READONLY", "LOADING"})


def typed_error(exc: BaseException) -> Exception | None:
    """The port's error for a redis-py one (None: not a redis error, or NoScriptError, which the
    callers handle by loading the script again)."""
    if isinstance(exc, redis.exceptions.NoScriptError):
        return None
    if isinstance(exc, (redis.ConnectionError, redis.TimeoutError)):
        return StoreUnavailableError(f"redis: {exc}")
    if isinstance(exc, redis.ResponseError):
        transient = isinstance(exc, TRANSIENT_CLASSES) or str(exc).split(" ", 1)[0] in (
            TRANSIENT_CODES
        )
        error = StoreUnavailableError if transient else StoreFaultError
        return error(f"redis: {type(exc).__name__}: {exc}")
    return None


class _unavailable_as_typed:  # noqa: N801 (used as a `with` block)
    """Turns redis-py's connection errors and error replies into the port's typed errors."""

    def __enter__(self) -> None:
        return None

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, _: Any
    ) -> None:
        typed = None if exc is None else typed_error(exc)
        if typed is not None:
            raise typed from exc
