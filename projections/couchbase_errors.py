"""How the Couchbase store tells a store that will answer again from a document that never will.

- Transient (`guarded` turns them into StoreUnavailableError; the projector backs off and
  retries the batch): timeouts, cancelled requests, temporary failures, a locked document, a
  service or connection not available, rate limits, a sync write in progress.
- Permanent for one document (`refusal_reason` names them): the document or value is too large,
  not strict JSON, too deep, or an argument is invalid. Checked before writing where possible
  (`check_document`, `check_mutations`); the event is then dead-lettered and the batch goes on.
- Anything else from the SDK is a StoreFaultError: retried too (skipping would lose the batch),
  but it is an error an operator has to look at.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, TypeVar

from couchbase.exceptions import (
    AmbiguousTimeoutException,
    CouchbaseException,
    DeltaInvalidException,
    DocumentLockedException,
    DocumentNotJsonException,
    DurabilitySyncWriteAmbiguousException,
    DurabilitySyncWriteInProgressException,
    InternalServerFailureException,
    InvalidArgumentException,
    InvalidValueException,
    MissingConnectionException,
    NumberTooBigException,
    PathTooBigException,
    PathTooDeepException,
    RateLimitedException,
    RequestCanceledException,
    ServiceUnavailableException,
    TemporaryFailException,
    TimeoutException,
    UnAmbiguousTimeoutException,
    ValueTooDeepException,
)

from jobtrail.errors import JobtrailError
from projections.couchbase_docs import Mutation
from projections.couchbase_limits import DOCUMENT_LIMIT, strict_json
from projections.ports import StoreFaultError, StoreUnavailableError

T = TypeVar("T")

# How many dead letters a generation's `dead-letters` document keeps; later ones are counted in
# its `dropped` field (and in the metric), never stored: the document stays far below 20 MB.
DEAD_LETTER_LIMIT = 1000

TRANSIENT: tuple[type[CouchbaseException], ...] = (
    AmbiguousTimeoutException,
    UnAmbiguousTimeoutException,
    TimeoutException,
    RequestCanceledException,
    TemporaryFailException,
    ServiceUnavailableException,
    DocumentLockedException,
    DurabilitySyncWriteInProgressException,
    DurabilitySyncWriteAmbiguousException,
    RateLimitedException,
    InternalServerFailureException,
    MissingConnectionException,
)

_PERMANENT: tuple[tuple[type[CouchbaseException], str], ...] = (
    (InvalidValueException, "not_strict_json"),
    (DocumentNotJsonException, "not_strict_json"),
    (PathTooDeepException, "too_deep"),
    (ValueTooDeepException, "too_deep"),
    (PathTooBigException, "too_deep"),
    (NumberTooBigException, "number_too_big"),
    (DeltaInvalidException, "number_too_big"),
    (InvalidArgumentException, "invalid_argument"),
)
_VALUE_TOO_LARGE = 104  # the SDK's key_value error code; it has no exception class of its own


class DocumentRefusedError(JobtrailError):
    """A write its document would refuse whatever the wait: the event is dead-lettered."""

    retryable = False

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"couchbase refuses the document ({reason}): {detail}")
        self.reason = reason


def refusal_reason(exc: CouchbaseException) -> str | None:
    """The dead-letter reason when `exc` is permanent for its document, else None."""
    if isinstance(exc, TRANSIENT):
        return None
    for kind, reason in _PERMANENT:
        if isinstance(exc, kind):
            return reason
    if getattr(exc, "error_code", None) == _VALUE_TOO_LARGE:
        return "too_large"
    return None


def guarded(call: Callable[[], T]) -> T:
    """Runs `call`, turning the SDK's errors into the port's retryable ones."""
    try:
        return call()
    except TRANSIENT as exc:
        raise StoreUnavailableError(f"couchbase: {type(exc).__name__}: {exc}") from exc
    except CouchbaseException as exc:
        raise StoreFaultError(f"couchbase: {type(exc).__name__}: {exc}") from exc


def _size(value: Any) -> int:
    try:
        return len(strict_json(value))
    except ValueError as exc:  # NaN or Infinity, or a string that is not valid Unicode
        raise DocumentRefusedError("not_strict_json", str(exc)) from exc


def check_document(document: dict[str, Any]) -> dict[str, Any]:
    size = _size(document)
    if size > DOCUMENT_LIMIT:
        raise DocumentRefusedError("too_large", f"{size} bytes > {DOCUMENT_LIMIT}")
    return document


def check_mutations(existing: Mapping[str, Any], mutations: Sequence[Mutation]) -> None:
    """Refuses mutations with a value that is not strict JSON, or that could take the document
    past the size limit (its size plus every value's: an upper bound, as the strict mock's)."""
    size = _size(existing) + sum(_size(m.value) for m in mutations)
    if size > DOCUMENT_LIMIT:
        raise DocumentRefusedError("too_large", f"up to {size} bytes > {DOCUMENT_LIMIT}")


def add_dead_letters(
    current: Mapping[str, Any] | None, letters: Mapping[str, dict[str, Any]]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """The dead-letters document with `letters` (keyed by position: a replay adds nothing) and
    the letters new to it; beyond DEAD_LETTER_LIMIT a letter is only counted in `dropped`."""
    kept = dict((current or {}).get("letters") or {})
    dropped = int((current or {}).get("dropped") or 0)
    added = []
    for key, letter in letters.items():
        if key in kept:
            continue
        added.append(letter)
        if len(kept) < DEAD_LETTER_LIMIT:
            kept[key] = letter
        else:
            dropped += 1
    return {"letters": kept, "dropped": dropped}, added
