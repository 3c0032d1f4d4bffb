"""Masking of the variable parts of a log or error message, one message at a time.

Every rule is a regex, from the most specific shape (a URL, a timestamp) to the most general
(any token with a digit in it); each replaces what it matches with a placeholder that names what
was there.
"""

from __future__ import annotations

import re
from collections.abc import Callable

# A month name, maybe after a weekday name, before a number: the three letters first, then a
# look back at them, so that the regex engine can skip to capital letters.
_MONTH_DAY = (
    r"[A-Z](?<!\w[A-Z])[a-z]{2}(?:(?<=Mon|Tue|Wed|Thu|Fri|Sat|Sun)(?:s|nes|rs|ur)?(?:day)?,?\s+"
    r"[A-Z][a-z]{2})?(?<=Jan|Feb|Mar|Apr|May|Jun|Jul|Aug|Sep|Oct|Nov|Dec)"
    r"(?:uary|ruary|ch|il|e|y|ust|t|tember|ober|ember)?\b\.?(?=[\s/-]+\d)"
)
# Characters that end a token: brackets, quotes, list and key/value punctuation.
_STOP = r"\s,;()\[\]{}<>\"'=|`"
# How a token ends: before a stop character or a colon, maybe after a full stop.
_END = rf"(?=\.?(?:[{_STOP}:]|$))"


def _quoted(opening: str, closing: str) -> str:
    """Text in quotes, up to 5 words: a quoted word must not be an apostrophe in a word.

    Quoted text stops at the next opening quote too: with distinct opening and closing marks,
    every unclosed opening quote would otherwise scan to the end of the message (quadratic)."""
    inside = rf"[^{opening}{closing}\n\s]"
    return rf"(?<![\w{opening}]){opening}{inside}*+(?:\s{inside}*+){{0,4}}[{closing}](?!\w)"


# (pattern, placeholder, a substring the pattern cannot match without, needs a digit): the
# cheap `in` checks skip most regex passes on most messages.
_RULE_SPECS: tuple[tuple[str, str, str, bool], ...] = (
    (
        r"(?<![a-zA-Z0-9+.-])([0-9+.-]*+)[a-zA-Z][a-zA-Z0-9+.-]*+://[^\s'\"<>]++",
        r"\1<url>",
        "://",
        False,
    ),
    (r"(?<![\w.+-])[\w.+-]++@[\w-]++(?:\.[\w-]++)+", "<email>", "@", False),
    # Quoted text is a value (identifiers, file names, user input), whatever its spelling; the
    # quote marks go with it, since one program quotes a value that another prints bare. Not a
    # quoted sentence (over 5 words: a wrapped message), nor logfmt's msg="...", which quotes
    # the constant message itself.
    (_quoted("'", "'"), "<*>", "'", False),
    (r"(?<!msg=)(?<!message=)" + _quoted('"', '"'), "<*>", '"', False),
    (_quoted("\u2018", "\u2019"), "<*>", "\u2018", False),
    (_quoted("\u201c", "\u201d"), "<*>", "\u201c", False),
    (_quoted("`", "`'"), "<*>", "`", False),
    # The value of key=value (spaced or not): the key names a field, the value is formatted in.
    (rf"(?<=\w)( {{0,2}}= {{0,2}})[^{_STOP}]+", r"\1<*>", "=", False),
    (
        r"\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?(?:Z|[+-]\d{2}(?::?\d{2})?)?",
        "<ts>",
        "-",
        True,
    ),
    # Month and weekday names are variable when they are part of a date.
    (_MONTH_DAY, "<ts>", "", True),
    (r"\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b", "<ts>", ":", True),
    (
        r"\b[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}\b",
        "<uuid>",
        "-",
        False,
    ),
    (r"(?<![\w.])(?:\d{1,3}\.){3}\d{1,3}(?![\w.])", "<*>", ".", True),
    (
        r"(?<![\w.-])([.-]*+)[a-zA-Z][\w-]*+(?:\.[\w-]++)*"
        r"\.(?:internal|local|com|net|org|io|example|test|invalid)\b(?!-|\.\w)",
        r"\1<*>",
        ".",
        False,
    ),
    (r"\blocalhost\b", "<*>", "localhost", False),
    (r"(?<!\w)[A-Za-z]:\\[^\s\"'<>|]*", "<*>", ":\\", False),  # a Windows path
    # Paths, absolute and relative: a slash between names (also git refs such as origin/main).
    (r"(?:(?<=[\s(\[=:,])|^)(?:~|\.{1,3})?/[\w.@%+~-]+(?:/[\w.@%+~-]*)*", "<*>", "/", False),
    (
        r"(?<![\w.-])([.-]*+)\b[\w.-]++(?:/[\w.@%+~-]*[\w@%+~-])+/?",
        r"\1<*>",
        "/",
        False,
    ),
    # File names: a name with a short lowercase extension (also `object.property` spellings).
    (
        r"(?<![\w.-])([.-]*+)\b[\w-]++(?:\.[\w-]++)*\.[a-z][a-z0-9]{0,4}\b(?![.(\w-])",
        r"\1<*>",
        ".",
        False,
    ),
    # Names of code: a function before its call parentheses, a snake_case identifier (not a key).
    (r"(?<![\w.])(?=[\w.]*+\(\))([\w.]*?)(?<!\w)[A-Za-z_][\w.]*+", r"\1<*>", "()", False),
    (r"(?<![\w-])_*[A-Za-z][A-Za-z0-9]*(?:_[A-Za-z0-9]+)+\b(?![=-])", "<*>", "_", False),
    # Hyphenated lowercase names (packages, services, threads, hosts); not -options.
    (r"(?<![\w-])[a-z][a-z0-9]*(?:-[a-z0-9]+)+\b(?!-)", "<*>", "-", False),
    (r"\b0x[0-9a-fA-F]+\b", "<hex>", "0x", True),
    # A quantity with its unit, unit included: humanized sizes and durations pick the unit per
    # value (512 B, 3.2 KB; 900 ms, 2 s).
    (r"\d(?<![\w.]\d)\d*(?:\.\d+)?\s?(?:[kKMGTP]i?B|B|bytes)\b", "<size>", "", True),
    (
        r"\d(?<![\w.]\d)\d*(?:\.\d+)?\s?(?:ns|us|µs|ms|s|sec|secs|seconds|min|mins|minutes|h|hours"
        r"|days)\b",
        "<duration>",
        "",
        True,
    ),
    # (Each starts with a character class and then looks back, which lets the regex engine skip
    # ahead to the next candidate character.)
    (rf"[-+\d](?<![^{_STOP}:].)(?:(?<=\d)|\d)\d*(?:\.\d+)?{_END}", "<num>", "", True),
    # Any other token with a digit in it: ids, versions, hashes, host names, thread names.
    (rf"(?<![^{_STOP}:])[^{_STOP}:]*?\d[^{_STOP}:]*?{_END}", "<*>", "", True),
)


def _replacement(placeholder: str) -> str | Callable[[re.Match[str]], str]:
    """What `sub` puts in place of a match. A template that keeps group 1 (r"\\1<*>") becomes a
    function: CPython 3.11 expands such templates in Python code, about three times the cost of
    this call, and a long message can hold tens of thousands of matches."""
    if not placeholder.startswith("\\1"):
        return placeholder
    suffix = placeholder[2:]
    return lambda match: match[1] + suffix


_RULES = tuple(
    (re.compile(pattern), _replacement(placeholder), needle, digits)
    for pattern, placeholder, needle, digits in _RULE_SPECS
)
_DIGIT = re.compile(r"\d")
# A run of placeholders is one variable of variable length: a list, a host:port, a date and time.
_PLACEHOLDER = r"<(?:\*|[a-z]+)>"
_RUN = re.compile(rf"({_PLACEHOLDER})(?:[\s,;:/.#@_+-]*+{_PLACEHOLDER})++")
_FIRST_OF_RUN = _replacement(r"\1")


def mask(message: str) -> str:
    """The message with every variable part replaced by a placeholder.

    Linear in the message: no rule has overlapping or nested quantifiers that could backtrack,
    and each rule is one pass (tests/unit/test_masking_time.py holds it to that). Callers that
    fingerprint bound the input first (processors/fingerprint.py).
    """
    text = message.strip()
    has_digit = _DIGIT.search(text) is not None  # masking only removes digits, never adds one
    for pattern, placeholder, needle, needs_digit in _RULES:
        if (needs_digit and not has_digit) or needle not in text:
            continue
        text, replaced = pattern.subn(placeholder, text)
        if needs_digit and replaced:  # the digits may all be gone: skip the rules that need one
            has_digit = _DIGIT.search(text) is not None
    if ">" in text:
        text = _RUN.sub(_FIRST_OF_RUN, text)
    return " ".join(text.split())
