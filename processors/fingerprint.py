"""Error fingerprints: errors that differ only in their variable parts share one template, and the
fingerprint is the SHA-256 of that template.

Pure and stateless: the same error always yields the same fingerprint, in any process, on any
replay. The masking rules (processors/masking.py) run from the most specific shape to the most
general, each replacing a variable part with a placeholder.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass

from processors.masking import mask
from schemas.job_event import JobError

# What a fingerprint reads of an error, whatever its size (the contract allows 64 KB of message
# and stack): the start of the message, where every reporter puts the error's identity, and the
# first frames as the stack lists them, each cut to a sane length. The rest is a dumped payload,
# a recursion's repeats or a stack too deep to tell errors apart; a cut message ends in TRUNCATED,
# so it never shares a template with one that really ends there. Bounding the input bounds the
# time per event.
MAX_MESSAGE_CHARS = 4096
MAX_STACK_FRAMES = 64
MAX_FRAME_CHARS = 512
TRUNCATED = " <truncated>"

_STACK_LINE_NUMBERS = re.compile(r"(, line )\d+|(:)\d+(?::\d+)?(?=\)?$)")
_ADDRESSES = re.compile(r"\b0x[0-9a-fA-F]+\b")


@dataclass(frozen=True, slots=True)
class Fingerprint:
    sha256: str
    template: str


def normalize_message(message: str) -> str:
    """The message with every variable part replaced by a placeholder."""
    return mask(message)


def stack_frames(stack: str) -> list[str]:
    """The frame lines of a stack trace (Python and JavaScript styles), without line numbers or
    addresses: code location identifies the error, line numbers change with every release."""
    frames: list[str] = []
    for line in stack.splitlines():
        stripped = line.strip()[:MAX_FRAME_CHARS]
        if stripped.startswith(("File ", "at ")):
            frames.append(_ADDRESSES.sub("<hex>", _STACK_LINE_NUMBERS.sub(r"\1\2", stripped)))
            if len(frames) == MAX_STACK_FRAMES:
                break
    return frames


def bounded_message(message: str) -> str:
    """The message as far as a fingerprint reads it (MAX_MESSAGE_CHARS), masked."""
    if len(message) <= MAX_MESSAGE_CHARS:
        return normalize_message(message)
    return normalize_message(message[:MAX_MESSAGE_CHARS]) + TRUNCATED


def error_template(error: JobError) -> str:
    lines = [f"{error.type}: {bounded_message(error.message)}"]
    if error.stack:
        lines.extend(stack_frames(error.stack))
    return "\n".join(lines)


# The Couchbase projection asks three times per failed event (fingerprint document, history
# entry, reference fold): a small cache makes that one computation. Bounded: unique messages
# only cost the cache's hashing.
@functools.lru_cache(maxsize=1024)
def fingerprint(error: JobError) -> Fingerprint:
    return _of(error_template(error))


def fingerprint_message(message: str) -> Fingerprint:
    """The fingerprint of a bare message (a log line, an error text without type or stack)."""
    return _of(bounded_message(message))


def _of(template: str) -> Fingerprint:
    return Fingerprint(hashlib.sha256(template.encode()).hexdigest(), template)
