"""RefreshAhead: the first read computes; later reads never wait; a stale value is refreshed once
in the background; a failed refresh keeps the last answer."""

from __future__ import annotations

import threading

from jobtrail.refresh import RefreshAhead


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_stale_value_is_served_while_one_refresh_runs_then_replaced() -> None:
    clock = Clock()
    release = threading.Event()
    calls: list[int] = []

    def compute() -> int:
        calls.append(len(calls))
        if len(calls) > 1:
            assert release.wait(5)
        return len(calls)

    answer = RefreshAhead(compute, max_age_s=2.0, clock=clock)
    assert answer.get() == 1  # the first read computes
    clock.now = 1.0
    assert answer.get() == 1 and len(calls) == 1  # fresh: no refresh
    clock.now = 3.0
    assert [answer.get() for _ in range(5)] == [1] * 5  # stale: served at once, refreshed once
    release.set()
    for _ in range(500):
        if answer.get() == 2:
            break
        threading.Event().wait(0.01)
    assert answer.get() == 2 and len(calls) == 2


def test_a_failed_refresh_keeps_the_last_answer() -> None:
    clock = Clock()
    results = iter([10])

    def compute() -> int:
        return next(results)  # the second call raises StopIteration

    answer = RefreshAhead(compute, max_age_s=1.0, clock=clock)
    assert answer.get() == 10
    clock.now = 5.0
    assert answer.get() == 10
    for _ in range(100):
        threading.Event().wait(0.01)
        if not answer._refreshing:
            break
    assert answer.get() == 10
