"""The embedding consumer: vectorize requests in, error vectors out, in its own consumer group.

Per batch: decode the requests, keep those for this embedder's model that have no vector yet
(`plan`), embed them in one provider call, produce the ErrorVectors, wait for the broker's
acknowledgement, and only then commit (`BatchConsumer`). A provider failure rewinds the batch:
nothing is lost; the circuit breaker then pauses consumption while the provider is down.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field

from confluent_kafka import Message

from jobtrail.errors import SchemaError
from processors.embedding.breaker import CircuitBreaker
from processors.embedding.keepalive import GroupCommitConsumer, KeepAlive
from processors.embedding.metrics import EmbedderMetrics
from processors.embedding.ports import (
    Embedding,
    EmbeddingProvider,
    ProviderUnavailableError,
    RefusedText,
)
from processors.embedding.settings import EmbedderSettings
from processors.embedding.texts import EmbedText, Unembeddable, text_for
from processors.output import Output, OutputDeliveryError
from schemas.derived import (
    ErrorVector,
    VectorizeRequest,
    decode_vectorize_request,
    encode_error_vector,
    error_vector_key,
)
from streams.dlq import DeadLetter
from streams.reader import read_messages
from streams.settings import KafkaSettings
from streams.topics import topic_catalog


@dataclass
class BatchPlan:
    """What to do with one batch of records."""

    embed: list[tuple[Message, VectorizeRequest, EmbedText]] = field(default_factory=list)
    rejected: list[tuple[Message, str, str]] = field(default_factory=list)  # record, reason, why
    cache_hits: int = 0
    other_models: int = 0


def plan(messages: Sequence[Message], model: str, known: set[str], max_chars: int) -> BatchPlan:
    """Which requests need a vector from `model`: one per fingerprint, none already embedded."""
    result = BatchPlan()
    wanted: set[str] = set()
    for message in messages:
        try:
            request = decode_vectorize_request(message.value() or b"")
        except SchemaError as exc:
            result.rejected.append((message, "undecodable", str(exc)))
            continue
        if request.model != model:
            result.other_models += 1  # another embedder's (a group per model is the norm)
            continue
        if request.fingerprint in known or request.fingerprint in wanted:
            result.cache_hits += 1
            continue
        text = text_for(request, max_chars)
        if isinstance(text, Unembeddable):
            result.rejected.append((message, text.reason, text.detail))
            continue
        wanted.add(request.fingerprint)
        result.embed.append((message, request, text))
    return result


def group_id(kafka: KafkaSettings, model: str) -> str:
    """One consumer group per model: every model sees every request; embedders of one model
    share the partitions."""
    return f"{kafka.topic_prefix}embedders-{model.replace('/', '_')}"


class Embedder:
    def __init__(
        self,
        provider: EmbeddingProvider,
        kafka: KafkaSettings | None = None,
        settings: EmbedderSettings | None = None,
        metrics: EmbedderMetrics | None = None,
    ) -> None:
        self.kafka = kafka or KafkaSettings()
        self.settings = settings or EmbedderSettings()
        self.provider = provider
        self.metrics = (metrics or EmbedderMetrics.create()).zeroed(provider.model)
        self.catalog = topic_catalog(self.kafka.topic_prefix, self.kafka.partitions,
                                     self.kafka.replication_factor)  # fmt: skip
        self.consumer = GroupCommitConsumer(
            self.kafka,
            group_id(self.kafka, provider.model),
            [self.catalog.vectorize_requests.name],
            # Several model batches per round: the provider sorts them by length (less padding).
            batch_size=self.settings.batch_size * self.settings.fetch_batches,
            batch_wait_s=self.settings.batch_wait_s,
            **{
                "session.timeout.ms": self.settings.session_timeout_ms,
                "max.poll.interval.ms": self.settings.max_poll_interval_ms,
            },
        )
        # Provider calls and back-offs may outlast max.poll.interval.ms: poll (paused) meanwhile.
        self.keepalive = KeepAlive(lambda: self.consumer.consumer, self.settings.keepalive_poll_s)
        self.breaker = CircuitBreaker(
            time.monotonic,
            failure_threshold=self.settings.breaker_failures,
            open_s=self.settings.breaker_open_s,
            max_open_s=self.settings.breaker_max_open_s,
        )
        self.known: set[str] = set()  # fingerprints with a vector for this model
        self.embedded = 0
        self.output = Output(self.kafka)

    def start(self) -> Embedder:
        self.output.start()
        self.known = self._known_fingerprints()
        self.consumer.start()
        return self

    def run(self, idle_stop_s: float | None = None) -> None:
        self.consumer.run(self.handle, idle_stop_s=idle_stop_s, on_error=self._pause)

    def close(self) -> None:
        self.keepalive.close()
        self.consumer.close()
        self.output.close()

    def handle(self, messages: list[Message]) -> None:
        todo = plan(messages, self.provider.model, self.known, self.provider.max_chars)
        model = self.provider.model
        self.metrics.cache_hits.labels(model).inc(todo.cache_hits)
        for message, reason, detail in todo.rejected:
            self._dead_letter(message, reason, detail)
        embedded = 0
        if todo.embed:
            vectors = self._embed([text.text for _, _, text in todo.embed])
            for (message, request, text), vector in zip(todo.embed, vectors, strict=True):
                if isinstance(vector, RefusedText):
                    self._dead_letter(message, vector.reason, vector.detail)
                    continue
                self._send(ErrorVector(request.fingerprint, model, tuple(vector), text.truncated))
                embedded += 1
        self.output.flush()  # acknowledged before BatchConsumer commits
        # A refused fingerprint counts as known too: its repeats would only be refused again.
        self.known.update(request.fingerprint for _, request, _ in todo.embed)
        self.embedded += embedded
        self.metrics.texts.labels(model).inc(embedded)

    def _embed(self, texts: list[str]) -> Sequence[Embedding]:
        model = self.provider.model
        if not self.breaker.allows_call():
            raise ProviderUnavailableError("circuit breaker open")
        started = time.perf_counter()
        try:
            vectors = self.keepalive.call(lambda: self.provider.embed(texts))
        except ProviderUnavailableError:
            self.breaker.failed()
            self.metrics.provider_errors.labels(model).inc()
            raise
        self.breaker.succeeded()
        self.metrics.circuit_open.labels(model).set(0)
        self.metrics.latency.labels(model).observe(time.perf_counter() - started)
        self.metrics.batch_size.observe(len(texts))
        return vectors

    def _pause(self, error: BaseException) -> float:
        """After a failed batch (already rewound): how long to wait before polling again."""
        if not isinstance(error, ProviderUnavailableError | OutputDeliveryError):
            raise error
        wait = self.breaker.wait_s()
        self.metrics.circuit_open.labels(self.provider.model).set(1 if wait else 0)
        self.keepalive.sleep(wait or 0.5, self.consumer.stopping)  # still in the group
        return 0.0

    def _send(self, vector: ErrorVector) -> None:
        key = error_vector_key(vector.fingerprint, vector.model)
        self.output.send(self.catalog.error_vectors.name, key, encode_error_vector(vector))

    def _dead_letter(self, message: Message, reason: str, detail: str) -> None:
        letter = DeadLetter.of(message, reason, detail)
        self.output.send(self.catalog.vectorize_requests_dlq.name, letter.key,
                         letter.value or b"", letter.headers())  # fmt: skip
        self.metrics.rejected.labels(reason).inc()

    def _known_fingerprints(self) -> set[str]:
        """Fingerprints the compacted error-vectors topic has a vector of this model for."""
        suffix = f":{self.provider.model}".encode()
        known = set()
        for message in read_messages(self.kafka, self.catalog.error_vectors.name, idle_s=1.0):
            key = message.key() or b""
            if key.endswith(suffix) and message.value() is not None:
                known.add(key[: -len(suffix)].decode())
        return known
