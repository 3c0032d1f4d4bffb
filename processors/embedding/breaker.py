"""A circuit breaker, as a pure state machine over an injected clock.

Closed: calls go through; `failure_threshold` failures in a row open it. Open: no call for
`open_s` seconds (the embedder pauses its partitions instead of hammering a provider that is
down). Then half-open: one trial call; success closes it, failure opens it again for longer
(doubling up to `max_open_s`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from enum import StrEnum


class BreakerState(StrEnum):
    CLOSED = "closed"
    OPEN = "open"
    HALF_OPEN = "half_open"


@dataclass
class CircuitBreaker:
    clock: Callable[[], float]
    failure_threshold: int = 3
    open_s: float = 2.0
    max_open_s: float = 60.0
    failures: int = 0
    opened_at: float | None = None
    current_open_s: float = field(default=0.0)

    @property
    def state(self) -> BreakerState:
        if self.opened_at is None:
            return BreakerState.CLOSED
        if self.clock() - self.opened_at < self.current_open_s:
            return BreakerState.OPEN
        return BreakerState.HALF_OPEN

    def allows_call(self) -> bool:
        return self.state is not BreakerState.OPEN

    def wait_s(self) -> float:
        """How long until a call is allowed again (0 when it is)."""
        if self.opened_at is None:
            return 0.0
        return max(0.0, self.opened_at + self.current_open_s - self.clock())

    def succeeded(self) -> None:
        self.failures = 0
        self.opened_at = None
        self.current_open_s = 0.0

    def failed(self) -> None:
        self.failures += 1
        if self.state is BreakerState.HALF_OPEN:
            self._open(min(self.max_open_s, self.current_open_s * 2))
        elif self.opened_at is None and self.failures >= self.failure_threshold:
            self._open(self.open_s)

    def _open(self, seconds: float) -> None:
        self.opened_at = self.clock()
        self.current_open_s = seconds
