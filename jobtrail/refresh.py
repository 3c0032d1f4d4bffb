"""An answer that is expensive to compute and fine to serve a few seconds old (health, dead
letters): readers get the last value at once, and a stale one is refreshed in the background.

Unlike a TTL cache, no reader waits for the refresh: under load, a cache that expires makes every
request that arrives during the recomputation wait for it (here a broker round trip per consumer
group, over a second under load), which is the p99 of the route. Only the very first call waits.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

import structlog

T = TypeVar("T")
log = structlog.get_logger("jobtrail.refresh")


class RefreshAhead(Generic[T]):
    def __init__(
        self,
        compute: Callable[[], T],
        max_age_s: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._compute = compute
        self._max_age_s = max_age_s
        self._clock = clock
        self._lock = threading.Lock()
        self._value: T | None = None
        self._at = 0.0
        self._refreshing = False

    def get(self) -> T:
        with self._lock:
            if self._value is None:  # the first call: nothing to serve yet
                self._value, self._at = self._compute(), self._clock()
            elif self._clock() - self._at >= self._max_age_s and not self._refreshing:
                self._refreshing = True
                threading.Thread(target=self._refresh, daemon=True).start()
            return self._value

    def _refresh(self) -> None:
        try:
            value = self._compute()
        except Exception as exc:  # keep serving the last answer; the next stale read retries
            log.warning("refresh failed, serving the last answer", error=str(exc))
            value = None
        with self._lock:
            if value is not None:
                self._value, self._at = value, self._clock()
            self._refreshing = False
