"""A dead letter too large for the message limit goes as a marked, truncated copy."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from streams.dlq import RECORD_OVERHEAD_BYTES, TRUNCATED_HEADER, DeadLetter, fit


def letter(value: bytes | None, detail: str = "why") -> DeadLetter:
    return DeadLetter("undecodable", detail, "t.job-events", 3, 42, b"job-1", value)


def test_a_letter_that_fits_is_untouched() -> None:
    small = letter(b"x" * 1000)
    assert fit(small, 1_000_000) is small
    assert TRUNCATED_HEADER not in dict(small.headers())


def test_a_letter_over_the_limit_is_cut_and_says_its_original_size() -> None:
    big = letter(b"x" * 999_000, detail="d" * 5000)
    fitted = fit(big, 1_000_000)
    assert fitted.truncated_from == 999_000
    assert dict(fitted.headers())[TRUNCATED_HEADER] == b"999000"
    assert fitted.size() + RECORD_OVERHEAD_BYTES <= 1_000_000
    assert big.value is not None and fitted.value == big.value[: len(fitted.value or b"")]
    assert (fitted.reason, fitted.key, fitted.offset) == (big.reason, big.key, big.offset)


def test_cutting_again_keeps_the_first_original_size() -> None:
    once = fit(letter(b"x" * 500_000), 100_000)
    twice = fit(once, 0)
    assert twice.value == b"" and twice.truncated_from == 500_000


@given(st.integers(0, 300_000), st.integers(0, 400_000))
def test_a_fitted_letter_always_fits(size: int, limit: int) -> None:
    fitted = fit(letter(b"v" * size), limit)
    assert fitted.value == b"" or fitted.size() + RECORD_OVERHEAD_BYTES <= limit
