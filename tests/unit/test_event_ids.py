"""The per-job event-id decision: a re-sent event counts once, a redelivered record is redone."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from processors.event_ids import SeenEvents, check, expired, id_hash
from processors.ingest import Duplicate, Record, Rejected, Step, first_stage
from schemas.codec import SingleObjectCodec
from schemas.job_event import millis
from tests.factories import make_event

DAY = 86_400_000
WEEK = 7 * DAY


def decide(
    row: SeenEvents | None, event_id: str, offset: int, at_ms: int = 1_000, max_ids: int = 4
) -> tuple[SeenEvents | None, bool]:
    return check(row, event_id, offset=offset, at_ms=at_ms, partition=3, max_ids=max_ids,
                 window_ms=WEEK)  # fmt: skip


def test_a_new_id_is_remembered_with_its_offset() -> None:
    row, duplicate = decide(None, "e1", offset=10)
    assert not duplicate
    assert row == SeenEvents(((id_hash("e1"), 10),), 1_000, 3)


def test_the_same_id_at_another_offset_is_a_duplicate() -> None:
    row, _ = decide(None, "e1", offset=10)
    again, duplicate = decide(row, "e1", offset=11)
    assert duplicate and again is row


def test_the_same_record_delivered_again_is_processed_again() -> None:
    row, _ = decide(None, "e1", offset=10)
    row, _ = decide(row, "e2", offset=12)
    again, duplicate = decide(row, "e1", offset=10)
    assert not duplicate and again is row  # nothing to write


def test_only_the_last_ids_are_kept() -> None:
    row = None
    for index in range(6):
        row, _ = decide(row, f"e{index}", offset=index)
    assert row is not None and len(row.ids) == 4
    assert decide(row, "e5", offset=99)[1]
    assert not decide(row, "e0", offset=99)[1]  # forgotten: beyond max_ids (documented)


def test_a_row_out_of_the_window_is_not_consulted() -> None:
    row, _ = decide(None, "e1", offset=1, at_ms=0)
    assert row is not None
    assert not expired(row, WEEK, WEEK) and expired(row, WEEK + 1, WEEK)
    fresh, duplicate = decide(row, "e1", offset=2, at_ms=WEEK + 1)
    assert not duplicate and fresh is not None and fresh.ids == ((id_hash("e1"), 2),)


def test_rows_round_trip_through_json() -> None:
    row, _ = decide(None, "e1", offset=2**40)
    assert row is not None and SeenEvents.from_json(row.to_json()) == row


@given(st.lists(st.sampled_from(["a", "b", "c", "d", "e"]), max_size=40))
def test_each_distinct_id_counts_once_in_any_resend_order(ids: list[str]) -> None:
    row: SeenEvents | None = None
    counted = []
    for offset, event_id in enumerate(ids):
        row, duplicate = check(row, event_id, offset=offset, at_ms=offset, partition=0,
                               max_ids=8, window_ms=WEEK)  # fmt: skip
        if not duplicate:
            counted.append(event_id)
    assert counted == list(dict.fromkeys(ids))


codec = SingleObjectCodec()


def stage(
    value: bytes, offset: int, seen: SeenEvents | None = None, timestamp_ms: int | None = None
) -> Rejected | Duplicate | Step:
    return first_stage(
        codec,
        Record(value, "t.job-events", 0, offset, timestamp_ms),
        seen_of=lambda job_id: seen,
        latest_of=lambda job_id: None,
        limits=None,
        max_ids=64,
        window_ms=WEEK,
    )


def test_first_stage_drops_a_resend_and_keeps_a_redelivery() -> None:
    value = codec.encode(make_event())
    first = stage(value, 5)
    assert isinstance(first, Step) and first.seen is not None and first.seen_new
    assert first.sighting is not None and first.edge is not None
    assert isinstance(stage(value, 9, first.seen), Duplicate)
    again = stage(value, 5, first.seen)
    assert isinstance(again, Step) and again.seen is None and again.edge == first.edge


def test_first_stage_applies_the_contract_with_the_record_timestamp() -> None:
    event = make_event()
    value = codec.encode(event)
    rejected = stage(value, 1, timestamp_ms=millis(event.occurred_at) - 2 * DAY)
    assert isinstance(rejected, Rejected) and rejected.violation.reason == "event_time_in_future"
    assert isinstance(stage(value, 1, timestamp_ms=millis(event.occurred_at)), Step)
