"""Lexical evidence for the classifier: the words of an error message, with well-known codes
spelled out.

A sentence embedding model knows "permission denied" but not EACCES, "[Errno 13]" or a bare 429,
and the words a team put in a category's description and examples are strong evidence when an
error repeats them. The glossary below is knowledge about error messages in general (POSIX errno
names and numbers, HTTP statuses, signals), not about anyone's categories: it turns codes into the
words a description would use. Linear in the input and bounded (MAX_CHARS): a message of any
length or shape costs at most one pass over its first MAX_CHARS characters.
"""

from __future__ import annotations

import re

MAX_CHARS = 4096
MIN_TOKEN_CHARS = 3

# Symbolic codes (errno names, libuv/Node, signals, Kubernetes reasons) -> plain words.
GLOSSARY: dict[str, str] = {
    "etimedout": "timed out timeout",
    "esockettimedout": "socket timed out timeout",
    "econnrefused": "connection refused",
    "econnreset": "connection reset by peer",
    "econnaborted": "connection aborted",
    "epipe": "broken pipe connection closed",
    "enotfound": "host not found dns lookup",
    "eai_again": "dns lookup temporary failure in name resolution",
    "ehostunreach": "host unreachable network",
    "enetunreach": "network unreachable",
    "enoent": "no such file or directory",
    "eacces": "permission denied",
    "eperm": "operation not permitted",
    "erofs": "read only file system",
    "enomem": "out of memory cannot allocate memory",
    "emfile": "too many open files",
    "enospc": "no space left on device",
    "eagain": "resource temporarily unavailable",
    "enoexec": "exec format error",
    "sigkill": "killed",
    "sigsegv": "segmentation fault",
    "oomkilled": "out of memory killed",
}
# errno numbers as Linux numbers them, seen as "[Errno 13]" or "error=2".
ERRNO: dict[str, str] = {
    "1": "eperm", "2": "enoent", "8": "enoexec", "11": "eagain", "12": "enomem", "13": "eacces",
    "28": "enospc", "30": "erofs", "32": "epipe", "104": "econnreset", "110": "etimedout",
    "111": "econnrefused", "113": "ehostunreach",
}  # fmt: skip
HTTP_STATUS: dict[str, str] = {
    "401": "unauthorized", "403": "forbidden", "404": "not found", "408": "request timeout",
    "413": "payload too large", "429": "too many requests rate limit",
    "500": "internal server error", "502": "bad gateway", "503": "service unavailable",
    "504": "gateway timeout",
}  # fmt: skip
# Words every error says: they tell no category apart.
_STOPWORDS_TEXT = (
    "the a an of to in on for and or is was be not no with by at from this that it as are were "
    "has have had can could after before while when into its error exception failed failure"
)
STOPWORDS = frozenset(_STOPWORDS_TEXT.split())

_ERRNO = re.compile(r"errno[ =]?(\d{1,3})\b|error=(\d{1,3})\b", re.IGNORECASE)
_THREE_DIGITS = re.compile(r"(?<![\w.])(\d{3})(?![\w.])")  # not 500kB, 502ms or v1.429
_CAMEL = re.compile(r"([a-z])([A-Z])")
_WORD = re.compile(r"[A-Za-z_]+")
_LETTERS = re.compile(r"[A-Za-z]+")
_PLACEHOLDER = re.compile(r"<[a-z*]{1,10}>")  # the mask's <num>, <uuid>, <*>: not words
_SUFFIXES = ("ations", "ation", "ing", "ed", "es", "s", "ion")


def expansions(text: str) -> list[str]:
    """The glossary's words for the codes `text` contains."""
    text = text[:MAX_CHARS]
    found: list[str] = []
    for match in _ERRNO.finditer(text):
        name = ERRNO.get(match.group(1) or match.group(2))
        if name:
            found.append(GLOSSARY[name])
    found += [HTTP_STATUS[code] for code in _THREE_DIGITS.findall(text) if code in HTTP_STATUS]
    words = {w.lower() for w in _WORD.findall(text)}
    found += [GLOSSARY[w] for w in sorted(words & GLOSSARY.keys())]
    return found


def stem(word: str) -> str:
    """A light suffix strip: enough for timed/timeout, denied/deny, not a linguist's stemmer."""
    for suffix in _SUFFIXES:
        if word.endswith(suffix) and len(word) - len(suffix) >= 4:
            return word[: -len(suffix)]
    return word


def tokens(text: str) -> frozenset[str]:
    """Stemmed words of `text` and of its codes' expansions (CamelCase split: TimeoutError ->
    timeout, error)."""
    text = text[:MAX_CHARS]
    spelled = " ".join([text, *expansions(text)])
    words = _LETTERS.findall(_CAMEL.sub(r"\1 \2", spelled))
    return frozenset(
        stem(w.lower()) for w in words
        if len(w) >= MIN_TOKEN_CHARS and w.lower() not in STOPWORDS
    )  # fmt: skip


def evidence(template: str, sample: str) -> frozenset[str]:
    """What an error says in words: its template's first line (type and masked message; the
    stack frames are code locations, not evidence) and the codes of a raw sample message spelled
    out (the errno and HTTP status numbers the mask replaced). Only the sample's codes: its other
    words are the variable parts (hosts, ids, paths) the template masks, and would make an
    error's category depend on which occurrence was sampled."""
    first_line = _PLACEHOLDER.sub(" ", template[:MAX_CHARS].split("\n", 1)[0])
    return tokens(first_line) | tokens(" ".join(expansions(sample)))
