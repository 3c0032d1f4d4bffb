"""Runs the processors' Faust app as a worker process (`jobtrail processors`)."""

from __future__ import annotations

import logging

import faust
import uvloop

from processors.app import create_app
from processors.metrics import ProcessorMetrics
from processors.settings import ProcessorSettings
from processors.topology import changelog_topic_names, internal_topic_names
from streams.admin import TopicAdmin
from streams.settings import KafkaSettings
from streams.topics import TopicSpec, plan_topics, topic_catalog


def ensure_topics(kafka: KafkaSettings) -> list[str]:
    """Creates the catalog topics the app reads and writes, and its internal stream topics, and
    waits until the broker's metadata shows them.

    The internal ones Faust would create itself, but at startup, milliseconds before it
    subscribes: a topic not yet in the cluster's metadata when the group assigns partitions is
    left out of the assignment ("Ignoring missing topic"), and nothing is read from it until the
    next rebalance. For attempt-edges that meant a worker that never emitted an outcome (seen
    twice in CI). The tables' changelog topics likewise: one missing from the metadata when a
    table checks its partitions crashed the worker (PartitionsMismatch: "the changelog topic has
    0 partitions", seen in CI under load). Faust finds them existing and goes on."""
    admin = TopicAdmin(kafka)
    catalog = topic_catalog(kafka.topic_prefix, kafka.partitions, kafka.replication_factor)
    internal = [
        TopicSpec(name, "bytes", "json", kafka.partitions, kafka.replication_factor)
        for name in internal_topic_names(kafka).values()
    ] + [
        TopicSpec(name, "bytes", "json", kafka.partitions, kafka.replication_factor,
                  {"cleanup.policy": "compact"})  # as Faust creates a changelog
        for name in changelog_topic_names(kafka)
    ]  # fmt: skip
    existing = admin.existing(spec.name for spec in catalog.all())
    created = admin.apply(plan_topics(catalog, existing))
    missing = [s for s in internal if s.name not in admin.existing(t.name for t in internal)]
    return created + admin.create(missing)


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
    # uvloop: Faust's cost per record is mostly the event loop's; ~13% more records/s here.
    uvloop.install()
    app = create_app(settings, kafka, ProcessorMetrics.create())
    worker = _Worker(app, loglevel=_LEVELS[settings.log_level], quiet=True)
    worker.execute_from_commandline()
