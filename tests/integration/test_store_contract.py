"""One contract, every adapter: memory (the reference), Redis, Couchbase."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from projections.memory import MemoryStore
from projections.model import Position, ReadModel
from projections.ports import ProjectionStore, StaleGenerationError, StoreBehindError
from projections.redis import RedisStore
from schemas.job_event import JobEvent
from streams.demo.workload import Workload, WorkloadConfig
from tests.factories import positioned
from tests.integration.stores import store_of

EVENTS = list(Workload(WorkloadConfig(jobs=600), seed=21).events())
ITEMS = positioned(EVENTS)


def reference(items: list[tuple[Position, JobEvent]] = ITEMS) -> ReadModel:
    """The pure fold of `items`, read as a log that starts with them."""
    memory = MemoryStore()
    starts: dict[str, int] = {}
    for position, _ in items:
        starts.setdefault(position.source, position.offset)
    memory.apply_batch(items, memory.current_generation(), log_starts=starts)
    return memory.snapshot(memory.current_generation())


def comparable(store: ProjectionStore, model: ReadModel) -> ReadModel:
    """Couchbase keeps no per-name aggregates: compare what each store keeps."""
    if store.name == "couchbase":
        model.names = {}
    return model


@pytest.fixture(params=["memory", "redis", "couchbase"])
def store(
    request: pytest.FixtureRequest, redis_url: str, couchbase_connstr: str
) -> Iterator[ProjectionStore]:
    with store_of(request.param, redis_url, couchbase_connstr) as opened:
        yield opened


class TestProjectionStoreContract:
    def test_batches_fold_to_the_reference_model(self, store: ProjectionStore) -> None:
        generation = store.current_generation()
        for start in range(0, len(ITEMS), 250):
            store.apply_batch(ITEMS[start : start + 250], generation)
        assert store.snapshot(generation) == comparable(store, reference())

    def test_redelivered_and_overlapping_batches_are_applied_once(
        self, store: ProjectionStore
    ) -> None:
        generation = store.current_generation()
        first = store.apply_batch(ITEMS[:400], generation)
        again = store.apply_batch(ITEMS[200:700], generation)  # 200 seen, 300 new
        assert (first.applied, first.duplicates) == (400, 0)
        assert (again.applied, again.duplicates) == (300, 200)
        store.apply_batch(ITEMS, generation)
        assert store.snapshot(generation) == comparable(store, reference())

    def test_undecodable_records_advance_the_offsets_only(self, store: ProjectionStore) -> None:
        generation = store.current_generation()
        position = ITEMS[0][0]
        store.apply_batch([(position, None)], generation)
        assert store.applied_offsets(generation) == {position.source: position.offset}
        store.apply_batch(ITEMS[1:], generation)
        assert store.snapshot(generation) == comparable(store, reference(ITEMS[1:]))

    def test_offsets_say_where_to_resume(self, store: ProjectionStore) -> None:
        generation = store.current_generation()
        store.apply_batch(ITEMS[:300], generation)
        highest: dict[str, int] = {}
        for position, _ in ITEMS[:300]:
            highest[position.source] = max(highest.get(position.source, -1), position.offset)
        assert store.applied_offsets(generation) == highest

    def test_a_new_generation_is_invisible_until_switched_then_old_writers_are_stale(
        self, store: ProjectionStore
    ) -> None:
        old = store.current_generation()
        store.apply_batch(ITEMS[:100], old)
        new = store.new_generation()
        assert new != old and store.current_generation() == old
        store.apply_batch(ITEMS, new, check_current=False)
        store.switch_to(new)
        assert store.current_generation() == new
        with pytest.raises(StaleGenerationError):
            store.apply_batch(ITEMS[100:200], old)
        store.drop(old)
        assert store.snapshot(new) == comparable(store, reference())
        assert store.applied_offsets(old) == {}


def test_redis_pages_job_ids_newest_first(redis_url: str, couchbase_connstr: str) -> None:
    with store_of("redis", redis_url, couchbase_connstr) as opened:
        store = opened
        assert isinstance(store, RedisStore)
        store.apply_batch(ITEMS, store.current_generation())
        expected = sorted(
            reference().names["send-email"].jobs.items(),
            key=lambda kv: (kv[1], kv[0]),
            reverse=True,
        )
        pages = [store.jobs_page("send-email", page, 50) for page in range(len(expected) // 50 + 1)]
        assert [job for page in pages for job in page] == [job for job, _ in expected]
        assert store.job_names() == sorted(reference().names)


def with_resent_copies(events: list[JobEvent], every: int = 20) -> list[JobEvent]:
    """`events` with one in `every` sent again with the same event_id: some right after the
    original, some much later (after everything else)."""
    result: list[JobEvent] = []
    late: list[JobEvent] = []
    for index, event in enumerate(events):
        result.append(event)
        if index % every == 0:
            (result if index % (2 * every) == 0 else late).append(event)
    return result + late


def without_offsets(model: ReadModel) -> ReadModel:
    model.offsets = {}
    return model


class TestEventIdGuard:
    def test_resent_events_count_once(self, store: ProjectionStore) -> None:
        resent = positioned(with_resent_copies(EVENTS))
        copies = len(resent) - len(ITEMS)
        generation = store.current_generation()
        applied = duplicates = 0
        for start in range(0, len(resent), 250):
            result = store.apply_batch(resent[start : start + 250], generation)
            applied, duplicates = applied + result.applied, duplicates + result.duplicates
        assert (applied, duplicates) == (len(ITEMS), copies)
        snapshot = store.snapshot(generation)
        assert snapshot == comparable(store, reference(resent))
        assert without_offsets(snapshot) == without_offsets(comparable(store, reference()))

    def test_a_copy_within_one_batch_counts_once(self, store: ProjectionStore) -> None:
        resent = positioned(EVENTS[:50] + EVENTS[:50])
        result = store.apply_batch(resent, store.current_generation())
        assert (result.applied, result.duplicates) == (50, 50)
        snapshot = store.snapshot(store.current_generation())
        assert without_offsets(snapshot) == without_offsets(
            comparable(store, reference(ITEMS[:50]))
        )


class TestStoreThatLostWrites:
    def test_a_batch_after_a_hole_applies_nothing(self, store: ProjectionStore) -> None:
        generation = store.current_generation()
        store.apply_batch(ITEMS[:300], generation)
        before = store.snapshot(generation)
        # ITEMS[300:350] are "lost" (written to a store that then forgot them): the next batch
        # would skip them forever if it applied.
        with pytest.raises(StoreBehindError) as raised:
            store.apply_batch(ITEMS[350:600], generation)
        assert raised.value.retryable
        assert raised.value.gap.first > raised.value.gap.recorded + 1
        assert store.snapshot(generation) == before
        store.apply_batch(ITEMS[300:], generation)
        assert store.snapshot(generation) == comparable(store, reference())

    def test_a_batch_at_the_log_start_applies_whatever_the_store_recorded(
        self, store: ProjectionStore
    ) -> None:
        # Retention deleted the head of the log: a batch starting at the low watermark is all
        # there is, not a hole.
        generation = store.current_generation()
        tail = ITEMS[100:]
        starts: dict[str, int] = {}
        for position, _ in tail:
            starts.setdefault(position.source, position.offset)
        with pytest.raises(StoreBehindError):
            store.apply_batch(tail, generation)
        store.apply_batch(tail, generation, log_starts=starts)
        assert store.snapshot(generation) == comparable(store, reference(tail))

    def test_submit_batch_raises_the_gap_on_result(self, store: ProjectionStore) -> None:
        generation = store.current_generation()
        store.apply_batch(ITEMS[:300], generation)
        pending = store.submit_batch(ITEMS[350:600], generation)
        with pytest.raises(StoreBehindError):
            pending.result()
