"""Cluster I/O for the topic catalog: read what exists, create what is missing."""

from __future__ import annotations

import time
from collections.abc import Iterable

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient
from confluent_kafka.admin._config import ConfigResource
from confluent_kafka.admin._metadata import ClusterMetadata
from confluent_kafka.cimpl import NewTopic

from jobtrail.errors import JobtrailError
from streams.kafka_config import admin_config
from streams.metadata import fetch_metadata
from streams.settings import KafkaSettings
from streams.topics import ExistingTopic, TopicPlan, TopicSpec


class TopicAdmin:
    """Reads and creates jobtrail topics. Connects lazily; every call is bounded in time."""

    def __init__(self, settings: KafkaSettings) -> None:
        self._settings = settings
        self._client: AdminClient | None = None

    @property
    def client(self) -> AdminClient:
        if self._client is None:
            self._client = AdminClient(admin_config(self._settings))
        return self._client

    def metadata(self) -> ClusterMetadata:
        """Cluster metadata, or `KafkaUnavailableError` once `connect_timeout_s` has passed."""
        return fetch_metadata(self.client, self._settings)

    def existing(self, names: Iterable[str]) -> dict[str, ExistingTopic]:
        wanted = set(names)
        metadata = self.metadata()
        present = {name: topic for name, topic in metadata.topics.items() if name in wanted}
        if not present:
            return {}
        resources = [ConfigResource(ConfigResource.Type.TOPIC, name) for name in present]
        futures = self.client.describe_configs(resources, request_timeout=self._timeout)
        result: dict[str, ExistingTopic] = {}
        for resource, future in futures.items():
            entries = future.result(timeout=self._timeout)
            topic = present[resource.name]
            first = next(iter(topic.partitions.values()), None)
            result[resource.name] = ExistingTopic(
                name=resource.name,
                partitions=len(topic.partitions),
                replication_factor=len(first.replicas) if first else 0,
                config={key: str(entry.value) for key, entry in entries.items()},
            )
        return result

    def create(self, specs: Iterable[TopicSpec]) -> list[str]:
        """Creates the topics; one created concurrently by someone else counts as created."""
        new = [
            NewTopic(s.name, s.partitions, s.replication_factor, config=dict(s.config))
            for s in specs
        ]
        if not new:
            return []
        created: list[str] = []
        for name, future in self.client.create_topics(new, request_timeout=self._timeout).items():
            try:
                future.result(timeout=self._timeout)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise JobtrailError(f"could not create topic {name}: {exc}") from exc
            created.append(name)
        self._wait_until_visible(created)
        return created

    def _wait_until_visible(self, names: list[str]) -> None:
        """Creation is acknowledged before every partition has a leader; callers that produce
        right after `create` need the topics usable, so wait for that (bounded)."""
        deadline = time.monotonic() + self._timeout
        pending = set(names)
        while pending and time.monotonic() < deadline:
            topics = self.metadata().topics
            pending = {
                name
                for name in pending
                if name not in topics
                or topics[name].error is not None
                or any(p.leader < 0 for p in topics[name].partitions.values())
            }
            if pending:
                time.sleep(0.1)
        if pending:
            raise JobtrailError(f"topics {sorted(pending)} were created but have no leader yet")

    def apply(self, plan: TopicPlan) -> list[str]:
        return self.create(plan.create)

    def delete(self, names: Iterable[str]) -> None:
        """Deletes topics (tests and `jobtrail topics delete`); missing ones are ignored."""
        names = list(names)
        if not names:
            return
        for future in self.client.delete_topics(names, request_timeout=self._timeout).values():
            try:
                future.result(timeout=self._timeout)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.UNKNOWN_TOPIC_OR_PART:
                    raise

    @property
    def _timeout(self) -> float:
        return self._settings.connect_timeout_s
