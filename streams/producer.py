"""`JobEventProducer`: the SDK that job systems use to publish lifecycle events.

Guarantees (DESIGN.md): idempotent producer with acks=all, so a retried send is never written
twice and per-job order holds; key = job_id, so one job's events share a partition; asynchronous
sends with delivery reports; bounded memory (a full buffer applies back-pressure to the caller
rather than growing); flush on close; and no failure goes unnoticed: a delivery failure reaches
the caller's callback, and `flush()`/`close()` raise `DeliveryError` for failures not yet reported.
A record over a size limit raises `MessageTooLargeError` (a `DeliveryError` that is not
retryable): at once from `send` when librdkafka's own limit (message.max.bytes) refuses it, or from
`flush()`/`close()` when the broker does; never a raw KafkaException.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from types import TracebackType

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from jobtrail.errors import DeliveryError, MessageTooLargeError
from schemas.codec import JobEventCodec, create_codec
from schemas.job_event import JobEvent, JobEventType
from streams.backpressure import produce_waiting
from streams.kafka_config import producer_config
from streams.metadata import fetch_metadata
from streams.settings import KafkaSettings, ProducerSettings
from streams.topics import topic_catalog

TYPE_HEADER = "jobtrail.type"
SCHEMA_HEADER = "jobtrail.schema"

DeliveryCallback = Callable[[KafkaError | None, Message], None]
Headers = list[tuple[str, str | bytes | None]]


@dataclass(frozen=True, slots=True)
class DeliveryFailure:
    topic: str
    key: bytes | None
    error: str
    retryable: bool
    too_large: bool = False


def refused(exc: KafkaException, topic: str, size: int) -> DeliveryError:
    """The typed error for a record librdkafka refused to queue."""
    error = exc.args[0] if exc.args and isinstance(exc.args[0], KafkaError) else None
    if error is not None and error.code() == KafkaError.MSG_SIZE_TOO_LARGE:
        return MessageTooLargeError(f"a {size}-byte record for {topic} is over the size limit")
    retryable = error.retriable() if error is not None else False
    return DeliveryError(f"{topic}: the record was refused: {exc}", retryable=retryable)


class JobEventProducer:
    """Publishes JobEvents to the job-events topic. Use as a context manager, or call
    `start()` and `close()`."""

    def __init__(
        self,
        kafka: KafkaSettings | None = None,
        producer: ProducerSettings | None = None,
        *,
        codec: JobEventCodec | None = None,
        topic: str | None = None,
        on_delivery: DeliveryCallback | None = None,
    ) -> None:
        self._kafka = kafka or KafkaSettings()
        self._producer_settings = producer or ProducerSettings()
        self.codec = codec or create_codec(self._kafka.schema_registry_url)
        self.topic = topic or topic_catalog(self._kafka.topic_prefix).job_events.name
        self._on_delivery = on_delivery
        self._producer: Producer | None = None
        schema = self.codec.schema_label.encode()
        # Header lists are built once per event type: the hot path only looks them up.
        self._headers: dict[JobEventType, Headers] = {
            t: [(TYPE_HEADER, t.value.encode()), (SCHEMA_HEADER, schema)] for t in JobEventType
        }
        self.sent = 0
        self.failed = 0
        self._unreported: list[DeliveryFailure] = []

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> JobEventProducer:
        """Connects and checks that the broker answers and the topic exists (bounded in time)."""
        config = producer_config(self._kafka, self._producer_settings)
        # Without a caller callback, librdkafka reports only failures: a Python call per
        # successful record would cost about as much as the produce itself.
        config["delivery.report.only.error"] = self._on_delivery is None
        config["on_delivery"] = self._delivered
        config["error_cb"] = self._client_error
        producer = Producer(config)
        fetch_metadata(producer, self._kafka, required=[self.topic])
        self._producer = producer
        return self

    def __enter__(self) -> JobEventProducer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        # On an exception in the body, still deliver what was sent, but let that error win.
        self.close(raise_failures=exc is None)

    # -- sending -------------------------------------------------------------------------------

    def send(self, event: JobEvent) -> None:
        """Queues one event for delivery. Blocks (polling) only while the buffer is full."""
        self._produce(
            event.job_id.encode(), self.codec.encode(event, self.topic), self._headers[event.type]
        )
        self.sent += 1

    def send_all(self, events: Iterable[JobEvent]) -> int:
        """Queues many events; returns how many. The same as `send` in a loop, with the loop's
        lookups hoisted: this is the path of bulk producers, where each microsecond shows."""
        producer = self._require_started()
        encode, topic, headers = self.codec.encode, self.topic, self._headers
        count = 0
        try:
            for event in events:
                value = encode(event, topic)
                try:
                    producer.produce(
                        topic, value, event.job_id.encode(), headers=headers[event.type]
                    )
                except BufferError:
                    self._produce(event.job_id.encode(), value, headers[event.type])
                except KafkaException as exc:
                    raise refused(exc, topic, len(value)) from exc
                count += 1
                if not count % 10_000:
                    producer.poll(0)
        finally:
            self.sent += count
        return count

    def _produce(self, key: bytes, value: bytes, headers: Headers) -> None:
        try:
            produce_waiting(self._require_started(), self.topic, value, key, headers=headers)
        except KafkaException as exc:
            raise refused(exc, self.topic, len(value)) from exc

    def poll(self, timeout: float = 0.0) -> int:
        """Serves delivery reports; call it regularly (send paths do when the buffer fills)."""
        return self._require_started().poll(timeout)

    @property
    def in_flight(self) -> int:
        return len(self._producer) if self._producer is not None else 0

    def flush(self, timeout: float | None = None, *, raise_failures: bool = True) -> int:
        """Waits for every queued record; returns how many are still undelivered after
        `timeout` seconds (0 when all are acknowledged). Raises `DeliveryError` for failures
        that no callback has reported."""
        producer = self._require_started()
        remaining: int = producer.flush(
            timeout if timeout is not None else self._producer_settings.delivery_timeout_ms / 1000
        )
        if raise_failures:
            self.raise_failures()
        return remaining

    def close(self, timeout: float | None = None, *, raise_failures: bool = True) -> None:
        if self._producer is None:
            return
        remaining = self.flush(timeout, raise_failures=raise_failures)
        self._producer = None
        if remaining and raise_failures:
            raise DeliveryError(
                f"{remaining} records were still undelivered when the producer closed",
                retryable=True,
            )

    def raise_failures(self) -> None:
        """Raises `DeliveryError` summarizing failures since the last call, if any."""
        if not self._unreported:
            return
        failures, self._unreported = self._unreported, []
        first = failures[0]
        if all(f.too_large for f in failures):
            raise MessageTooLargeError(
                f"{len(failures)} records failed delivery to {first.topic}; first: {first.error}"
                " (over the size limit)"
            )
        raise DeliveryError(
            f"{len(failures)} records failed delivery to {first.topic}; first: {first.error}",
            retryable=all(f.retryable for f in failures),
        )

    # -- librdkafka callbacks (run inside poll/flush on the caller's thread) --------------------

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self.failed += 1
            failure = DeliveryFailure(
                message.topic() or self.topic,
                message.key(),
                error.str(),
                error.retriable(),
                error.code() == KafkaError.MSG_SIZE_TOO_LARGE,
            )
            if self._on_delivery is None:
                self._unreported.append(failure)
        if self._on_delivery is not None:
            self._on_delivery(error, message)

    def _client_error(self, error: KafkaError) -> None:
        # Connection-level errors are retried by librdkafka itself; a fatal one (for example an
        # idempotence violation) ends the producer, so surface it on the next call.
        if error.fatal():
            self._unreported.append(DeliveryFailure(self.topic, None, error.str(), False))

    def _require_started(self) -> Producer:
        if self._producer is None:
            raise RuntimeError("JobEventProducer is not started: use `with` or call start()")
        return self._producer
