"""Runs the processors' Faust app as a worker process (`jobtrail processors`)."""

from __future__ import annotations

import logging

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


_LEVELS = {"crit": logging.CRITICAL, "error": logging.ERROR, "warn": logging.WARNING,
           "info": logging.INFO, "debug": logging.DEBUG}  # fmt: skip


class _Worker(faust.Worker):
    """A Faust worker whose root logger really has the configured level: Faust leaves it at
    NOTSET, and aiokafka then builds a debug record per produced batch (8% of the CPU)."""

    def on_setup_root_logger(self, logger: logging.Logger, level: int) -> None:
        super().on_setup_root_logger(logger, level)
        logger.setLevel(level or logging.WARNING)


def run_worker(settings: ProcessorSettings, kafka: KafkaSettings) -> None:
    """Blocks until the worker stops (SIGINT/SIGTERM); one worker per process."""
    ensure_topics(kafka)
    app = create_app(settings, kafka, ProcessorMetrics.create())
    worker = _Worker(app, loglevel=_LEVELS[settings.log_level], quiet=True)
    worker.execute_from_commandline()
