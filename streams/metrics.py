"""Prometheus metrics for producers, and the HTTP endpoint components serve them on.

The producer's hot path only increments plain integers; this collector reads them at scrape time,
so metrics cost nothing per event.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import TYPE_CHECKING

from prometheus_client import REGISTRY, CollectorRegistry, start_http_server
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from streams.producer import JobEventProducer


class ProducerCollector(Collector):
    """Exports `jobtrail_producer_*` for one JobEventProducer, labelled by topic."""

    def __init__(self, producer: JobEventProducer, component: str) -> None:
        self._producer = producer
        self._component = component

    def collect(self) -> Iterator[Metric]:
        labels = ["component", "topic"]
        values = [self._component, self._producer.topic]
        sent = CounterMetricFamily(
            "jobtrail_producer_events_sent", "Events handed to the Kafka client", labels=labels
        )
        sent.add_metric(values, self._producer.sent)
        failed = CounterMetricFamily(
            "jobtrail_producer_errors", "Events whose delivery failed", labels=labels
        )
        failed.add_metric(values, self._producer.failed)
        in_flight = GaugeMetricFamily(
            "jobtrail_producer_in_flight", "Events queued, not yet acknowledged", labels=labels
        )
        in_flight.add_metric(values, self._producer.in_flight)
        yield from (sent, failed, in_flight)


def register_producer(
    producer: JobEventProducer, component: str, registry: CollectorRegistry = REGISTRY
) -> ProducerCollector:
    collector = ProducerCollector(producer, component)
    registry.register(collector)
    return collector


def serve_metrics(port: int, registry: CollectorRegistry = REGISTRY) -> None:
    """Serves /metrics on 0.0.0.0:`port` from a daemon thread; port 0 disables it."""
    if port:
        start_http_server(port, registry=registry)
