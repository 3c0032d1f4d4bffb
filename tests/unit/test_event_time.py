"""Event-time marks and the watermark that releases attempt edges."""

from __future__ import annotations

from processors.concurrency import EVERYTHING, Mark, SourceProgress, watermark
from schemas.derived import (
    AttemptOutcome,
    AttemptOutcomeType,
    VectorizeRequest,
    decode_attempt_outcome,
    decode_vectorize_request,
    encode_attempt_outcome,
    encode_vectorize_request,
)


def test_the_watermark_waits_for_every_source_and_ignores_idle_ones() -> None:
    assert watermark({0: Mark(100)}, sources=2) is None
    assert watermark({0: Mark(100), 1: Mark(40)}, sources=2) == 40
    assert watermark({0: Mark(100), 1: Mark(40, idle=True)}, sources=2) == 100
    assert watermark({0: Mark(100, idle=True), 1: Mark(-1, idle=True)}, sources=2) == EVERYTHING


def test_a_source_reports_its_latest_time_minus_the_grace_then_idle_once_quiet() -> None:
    progress = SourceProgress()
    assert progress.mark(now=0.0, grace_ms=500, idle_after_s=5, caught_up=False) is None
    progress.saw(10_000, now=1.0)
    progress.saw(9_000, now=2.0)  # out of order: the latest time stays
    assert progress.mark(now=3.0, grace_ms=500, idle_after_s=5, caught_up=True) == Mark(9_500)
    assert progress.mark(now=8.0, grace_ms=500, idle_after_s=5, caught_up=False) == Mark(9_500)
    assert progress.mark(now=8.0, grace_ms=500, idle_after_s=5, caught_up=True) == Mark(
        10_000, idle=True
    )


def test_a_partition_that_never_had_events_goes_idle() -> None:
    progress = SourceProgress()
    assert progress.mark(now=0.0, grace_ms=0, idle_after_s=1, caught_up=True) is None
    assert progress.mark(now=2.0, grace_ms=0, idle_after_s=1, caught_up=True) == Mark(-1, True)


def test_derived_records_round_trip_through_avro() -> None:
    outcome = AttemptOutcome("job-1", "send-email", 2, AttemptOutcomeType.FAILED, False, 1_000,
                             3_500, "worker-1", "ab" * 32, 3, 7)  # fmt: skip
    assert outcome.duration_ms == 2_500
    assert decode_attempt_outcome(encode_attempt_outcome(outcome)) == outcome
    never_ran = AttemptOutcome("job-2", "send-email", 1, AttemptOutcomeType.CANCELLED, True,
                               None, 9, None, None, None, 0)  # fmt: skip
    assert decode_attempt_outcome(encode_attempt_outcome(never_ran)) == never_ran
    request = VectorizeRequest("ab" * 32, "KeyError: <*>", "KeyError: 'x'", "all-MiniLM-L6-v2", 5)
    assert decode_vectorize_request(encode_vectorize_request(request)) == request
