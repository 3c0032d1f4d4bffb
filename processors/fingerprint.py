"""Error fingerprints: errors that differ only in their variable parts share one template, and the
fingerprint is the SHA-256 of that template.

Pure and stateless: the same error always yields the same fingerprint, in any process, on any
replay. The masking rules run from the most specific shape to the most general, each replacing a
variable part with a placeholder that names what was there.
"""

from __future__ import annotations

import functools
import hashlib
import re
from dataclasses import dataclass

from schemas.job_event import JobError

# (pattern, placeholder, a substring the pattern cannot match without, needs a digit): the
# cheap `in` checks skip most regex passes on most messages.
_RULE_SPECS: tuple[tuple[str, str, str, bool], ...] = (
    (r"[a-zA-Z][a-zA-Z0-9+.-]*://[^\s'\"<>]+", "<url>", "://", False),
    (r"[\w.+-]+@[\w-]+(?:\.[\w-]+)+", "<email>", "@", False),
    (r"(?:(?<=\s)|^|(?<=[('\"=:]))(?:/[\w.@%+-]+){2,}/?", "<path>", "/", False),
    (
        r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}:?\d{2})?",
        "<ts>",
        "-",
        True,
    ),
    (
        r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
        "<uuid>",
        "-",
        False,
    ),
    (r"\b(?:\d{1,3}\.){3}\d{1,3}(?::\d+)?\b", "<ip>", ".", True),
    (
        r"\b[a-zA-Z][\w-]*(?:\.[\w-]+)*\.(?:internal|local|com|net|org|io|example|test)\b(?::\d+)?",
        "<host>",
        ".",
        False,
    ),
    (r"\b0x[0-9a-fA-F]+\b", "<hex>", "0x", True),
    (r"\b(?=[0-9a-fA-F]*\d)(?=[0-9a-fA-F]*[a-fA-F])[0-9a-fA-F]{8,}\b", "<hex>", "", True),
    # Quoted text is a value (identifiers, file names, user input), whatever its spelling; except
    # logfmt's msg="...", which quotes the constant message itself.
    (r"'[^'\n]{1,120}'", "'<*>'", "'", False),
    (r"(?<!msg=)\"[^\"\n]{1,120}\"", '"<*>"', '"', False),
    (
        r"\b\d+(?:\.\d+)?\s?(?:ms|us|µs|ns|s|sec|secs|seconds|m|min|minutes|h|hours)\b",
        "<duration>",
        "",
        True,
    ),
    (r"(?<![\w<])[-+]?\d+(?:\.\d+)?(?![\w>])", "<num>", "", True),
    (r"\b\w*\d\w*\b", "<*>", "", True),
)
_RULES = tuple(
    (re.compile(pattern), placeholder, needle, digits)
    for pattern, placeholder, needle, digits in _RULE_SPECS
)
_DIGIT = re.compile(r"\d")

_STACK_LINE_NUMBERS = re.compile(r"(, line )\d+|(:)\d+(?::\d+)?(?=\)?$)")
_ADDRESSES = re.compile(r"\b0x[0-9a-fA-F]+\b")


@dataclass(frozen=True, slots=True)
class Fingerprint:
    sha256: str
    template: str


def normalize_message(message: str) -> str:
    """The message with every variable part replaced by a placeholder."""
    text = message.strip()
    has_digit = _DIGIT.search(text) is not None  # masking only removes digits, never adds one
    for pattern, placeholder, needle, needs_digit in _RULES:
        if (needs_digit and not has_digit) or needle not in text:
            continue
        text = pattern.sub(placeholder, text)
    return " ".join(text.split())


def stack_frames(stack: str) -> list[str]:
    """The frame lines of a stack trace (Python and JavaScript styles), without line numbers or
    addresses: code location identifies the error, line numbers change with every release."""
    frames = []
    for line in stack.splitlines():
        stripped = line.strip()
        if stripped.startswith(("File ", "at ")):
            frames.append(_ADDRESSES.sub("<hex>", _STACK_LINE_NUMBERS.sub(r"\1\2", stripped)))
    return frames


def error_template(error: JobError) -> str:
    lines = [f"{error.type}: {normalize_message(error.message)}"]
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
    return _of(normalize_message(message))


def _of(template: str) -> Fingerprint:
    return Fingerprint(hashlib.sha256(template.encode()).hexdigest(), template)
