"""Runs the processors' Faust app as a worker process (`jobtrail processors`)."""

from __future__ import annotations

import faust

from processors.app import create_app
from processors.metrics import ProcessorMetrics
from processors.settings import ProcessorSettings
from streams.admin import TopicAdmin
from streams.settings import KafkaSettings
from streams.topics import plan_topics, topic_catalog


def ensure_topics(kafka: KafkaSettings) -> list[str]:
    """Creates the catalog topics the app reads and writes (its internal ones Faust creates)."""
    admin = TopicAdmin(kafka)
    catalog = topic_catalog(kafka.topic_prefix, kafka.partitions, kafka.replication_factor)
    existing = admin.existing(spec.name for spec in catalog.all())
    return admin.apply(plan_topics(catalog, existing))


def run_worker(settings: ProcessorSettings, kafka: KafkaSettings) -> None:
    """Blocks until the worker stops (SIGINT/SIGTERM); one worker per process."""
    ensure_topics(kafka)
    app = create_app(settings, kafka, ProcessorMetrics.create())
    worker = faust.Worker(app, loglevel=settings.log_level, quiet=True)
    worker.execute_from_commandline()
