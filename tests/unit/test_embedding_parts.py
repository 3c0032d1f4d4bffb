"""Pure parts of the embedders: the circuit breaker, the text to embed, request splitting."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from processors.embedding.breaker import BreakerState, CircuitBreaker
from processors.embedding.openai_provider import request_batches
from processors.embedding.texts import EmbedText, Unembeddable, text_for
from schemas.derived import ErrorVector, VectorizeRequest, decode_error_vector, encode_error_vector


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_the_breaker_opens_after_failures_waits_then_tries_once() -> None:
    clock = Clock()
    breaker = CircuitBreaker(clock, failure_threshold=2, open_s=5, max_open_s=12)
    breaker.failed()
    assert breaker.state is BreakerState.CLOSED
    breaker.failed()
    assert breaker.state is BreakerState.OPEN and not breaker.allows_call()
    assert breaker.wait_s() == 5
    clock.now = 5
    assert breaker.state is BreakerState.HALF_OPEN and breaker.allows_call()
    breaker.failed()  # the trial failed: open again, for longer
    assert breaker.state is BreakerState.OPEN and breaker.wait_s() == 10
    clock.now = 15
    breaker.failed()
    assert breaker.wait_s() == 12  # capped
    clock.now = 27
    breaker.succeeded()
    assert breaker.state is BreakerState.CLOSED and breaker.wait_s() == 0


def request(template: str) -> VectorizeRequest:
    return VectorizeRequest("ab" * 32, template, "sample", "m", 0)


def test_the_text_is_the_template_cut_to_the_limit_and_empty_ones_are_refused() -> None:
    assert text_for(request("  KeyError:\n <*> "), 100) == EmbedText("KeyError: <*>", False)
    assert text_for(request("x" * 50), 10) == EmbedText("x" * 10, True)
    refused = text_for(request(" \n\t"), 10)
    assert isinstance(refused, Unembeddable) and refused.reason == "empty_text"


@given(st.lists(st.text(max_size=30), max_size=60), st.integers(1, 7), st.integers(1, 80))
def test_request_batches_cover_every_text_once_within_the_limits(
    texts: list[str], max_inputs: int, max_chars: int
) -> None:
    slices = list(request_batches(texts, max_inputs, max_chars))
    assert [i for start, end in slices for i in range(start, end)] == list(range(len(texts)))
    for start, end in slices:
        assert 0 < end - start <= max_inputs
        # Only a single text longer than the limit may make a batch exceed it.
        assert sum(len(t) for t in texts[start:end]) <= max_chars or end - start == 1


def test_error_vectors_round_trip_as_little_endian_float32() -> None:
    vector = ErrorVector("ab" * 32, "all-MiniLM-L6-v2", (0.5, -1.25, 3.0), truncated=True)
    assert decode_error_vector(encode_error_vector(vector)) == vector


def test_commit_errors_of_a_member_that_lost_its_partitions_are_told_apart() -> None:
    from confluent_kafka import KafkaError, KafkaException

    from processors.embedding.keepalive import lost_membership

    for code in (KafkaError.UNKNOWN_MEMBER_ID, KafkaError.ILLEGAL_GENERATION,
                 KafkaError.REBALANCE_IN_PROGRESS, KafkaError._MAX_POLL_EXCEEDED):  # fmt: skip
        assert lost_membership(KafkaException(KafkaError(code)))
    assert not lost_membership(KafkaException(KafkaError(KafkaError._TRANSPORT)))
    assert not lost_membership(KafkaException("no KafkaError inside"))
