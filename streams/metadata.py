"""One bounded metadata request, shared by every client: the place where an unreachable broker or
a missing topic becomes a clear, typed error instead of librdkafka retrying forever."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

from confluent_kafka import KafkaException
from confluent_kafka.admin._metadata import ClusterMetadata

from jobtrail.errors import KafkaUnavailableError
from streams.settings import KafkaSettings


class _MetadataClient(Protocol):
    """Producer, Consumer and AdminClient all answer this."""

    def list_topics(self, *args: Any, **kwargs: Any) -> ClusterMetadata: ...


def fetch_metadata(
    client: _MetadataClient, kafka: KafkaSettings, *, required: Sequence[str] = ()
) -> ClusterMetadata:
    """Cluster metadata within `connect_timeout_s`; every topic in `required` must exist."""
    try:
        metadata = client.list_topics(timeout=kafka.connect_timeout_s)
    except KafkaException as exc:
        raise KafkaUnavailableError(
            f"Kafka at {kafka.bootstrap_servers} did not answer within"
            f" {kafka.connect_timeout_s:g} s ({exc.args[0].str()}); is it running?"
            " (`make infra-up`, or set JOBTRAIL_BOOTSTRAP_SERVERS)"
        ) from exc
    missing = [
        name
        for name in required
        if name not in metadata.topics or metadata.topics[name].error is not None
    ]
    if missing:
        raise KafkaUnavailableError(
            f"topics {', '.join(missing)} do not exist; create them with `jobtrail topics apply`"
        )
    return metadata
