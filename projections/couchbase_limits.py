"""Couchbase Server's limits, and the pure functions that keep every write within them.

Couchbase Server refuses what CouchbaseMock accepts (the tests run the mock with its launcher's
`--strict` flag, which refuses the same):
- at most `SPEC_LIMIT` (16) sub-document specs in one mutate_in call;
- keys of at most `KEY_LIMIT` (250) bytes, the store's prefix and generation included;
- documents of at most `DOCUMENT_LIMIT` (20 MiB);
- strict JSON (RFC 8259): no NaN or Infinity, which Python's json module writes by default.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

SPEC_LIMIT = 16
KEY_LIMIT = 250
DOCUMENT_LIMIT = 20 * 1024 * 1024

# How long a hashed key's readable part may be at least: a namespace longer than this leaves no
# room for one (the prefix setting is the only thing that makes a namespace long).
_HASH_SUFFIX = 1 + 64 + 2  # "#" + sha256 hex + "::"
_MIN_READABLE = 16


def document_key(namespace: str, name: str) -> str:
    """The key of document `name` ("job::<id>", "index::jobs::<source>::<page>", ...) in
    `namespace`. Names that fit are used as they are; a longer one becomes
    `<namespace>#<sha256 of name>::<as much of name as fits>`: still readable, unique (a plain
    name never starts with "#"), and computed the same way by writers and readers."""
    key = namespace + name
    if len(key.encode()) <= KEY_LIMIT:
        return key
    room = KEY_LIMIT - len(namespace.encode()) - _HASH_SUFFIX
    if room < _MIN_READABLE:
        raise ValueError(f"couchbase namespace {namespace!r} leaves no room for keys")
    digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()
    readable = name.encode("utf-8", "surrogatepass")[:room].decode("utf-8", "ignore")
    return f"{namespace}#{digest}::{readable}"


def strict_json(value: Any) -> bytes:
    """`value` as RFC 8259 JSON; ValueError for NaN or Infinity (Server would refuse them)."""
    return json.dumps(value, allow_nan=False, ensure_ascii=False, separators=(",", ":")).encode()


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"not strict JSON: {name}")


def parse_strict_json(data: bytes | str) -> Any:
    return json.loads(data, parse_constant=_refuse_constant)


def document_size(value: Any) -> int:
    return len(strict_json(value))
