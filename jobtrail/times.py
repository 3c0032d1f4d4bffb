"""Event times: the read models keep milliseconds since the epoch, answers carry UTC datetimes."""

from __future__ import annotations

from datetime import UTC, datetime


def utc_from_ms(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, UTC)
