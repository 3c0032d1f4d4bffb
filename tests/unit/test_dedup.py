"""The dedup decision: exactly one vectorize request per (fingerprint, model)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from processors.dedup import MAX_JOB_NAMES, FingerprintEntry, Sighting, observe, request_missing


def sighting(at: int, name: str = "send-email", fingerprint: str = "f" * 64) -> Sighting:
    return Sighting(fingerprint, "TimeoutError: timed out after <duration>", "TimeoutError: x",
                    name, at)  # fmt: skip


def test_the_first_sighting_requests_the_model_and_later_ones_do_not() -> None:
    entry, request = observe(None, sighting(10), "m1")
    assert request is not None
    assert (request.fingerprint, request.model, request.first_seen_ms) == ("f" * 64, "m1", 10)
    entry, again = observe(entry, sighting(5, name="resize-image"), "m1")
    assert again is None
    assert (entry.count, entry.first_seen_ms, entry.last_seen_ms) == (2, 5, 10)
    assert entry.job_names == ("send-email", "resize-image")


def test_a_new_model_requests_every_known_fingerprint_once() -> None:
    entry, _ = observe(None, sighting(1), "m1")
    entry, request = request_missing(entry, "m2")
    assert request is not None and request.model == "m2"
    assert request_missing(entry, "m2") == (entry, None)
    assert observe(entry, sighting(2), "m2")[1] is None
    assert entry.models == ("m1", "m2")


@given(st.lists(st.tuples(st.integers(0, 10**6), st.sampled_from("abcdefghijklmnopqrstu")),
                min_size=1, max_size=60))  # fmt: skip
def test_any_sequence_makes_one_request_and_counts_everything(
    sightings: list[tuple[int, str]],
) -> None:
    entry: FingerprintEntry | None = None
    requests = 0
    for at, name in sightings:
        entry, request = observe(entry, sighting(at, name), "m1")
        requests += request is not None
    assert entry is not None
    assert requests == 1
    assert entry.count == len(sightings)
    assert entry.first_seen_ms == min(at for at, _ in sightings)
    assert entry.last_seen_ms == max(at for at, _ in sightings)
    assert len(entry.job_names) <= MAX_JOB_NAMES
    assert FingerprintEntry.from_json(entry.fingerprint, entry.to_json()) == entry
