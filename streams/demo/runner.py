"""Sends the simulated workload to Kafka through the SDK, at a chosen rate."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from schemas.job_event import JobEvent, JobEventType
from streams.demo.workload import TEMPLATE_ATTRIBUTE, Workload
from streams.producer import JobEventProducer


@dataclass(slots=True)
class DemoSummary:
    events: int = 0
    by_type: Counter[str] = field(default_factory=Counter)
    jobs: Counter[str] = field(default_factory=Counter)  # QUEUED per job name
    terminal_failures: int = 0
    templates: set[str] = field(default_factory=set)
    elapsed_s: float = 0.0
    first_event_at: str = ""
    last_event_at: str = ""

    def add(self, event: JobEvent) -> None:
        self.events += 1
        self.by_type[event.type.value] += 1
        if event.type is JobEventType.QUEUED:
            self.jobs[event.job_name] += 1
        elif event.type is JobEventType.FAILED:
            self.terminal_failures += event.will_retry is False
            template = event.attributes.get(TEMPLATE_ATTRIBUTE)
            if template:
                self.templates.add(template)
        moment = event.occurred_at.isoformat()
        self.first_event_at = self.first_event_at or moment
        self.last_event_at = moment


class Pacer:
    """Spaces calls to at most `rate` per second (0: unlimited) without drifting."""

    def __init__(self, rate: float) -> None:
        self._interval = 1.0 / rate if rate > 0 else 0.0
        self._next = time.monotonic()

    def wait(self) -> None:
        if not self._interval:
            return
        self._next += self._interval
        delay = self._next - time.monotonic()
        if delay > 0.001:
            time.sleep(delay)


def run_demo(
    workload: Workload,
    producer: JobEventProducer,
    *,
    rate: float = 0.0,
    on_progress: Callable[[int], None] | None = None,
) -> DemoSummary:
    """Produces every event of `workload`; returns once all are acknowledged by the broker."""
    summary = DemoSummary()
    pacer = Pacer(rate)
    started = time.monotonic()
    for event in workload.events():
        pacer.wait()
        producer.send(event)
        summary.add(event)
        if summary.events % 1000 == 0:
            producer.poll()
            if on_progress is not None:
                on_progress(1000)
    if on_progress is not None:
        on_progress(summary.events % 1000)
    producer.flush()
    summary.elapsed_s = time.monotonic() - started
    return summary
