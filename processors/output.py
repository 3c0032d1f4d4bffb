"""What the processors and embedders produce, through librdkafka (for the Faust app: rather than
Faust's own aiokafka producer).

Faust's produce path costs ~100 µs of Python per record here; librdkafka's costs a few µs and
batches in its own thread. At-least-once is kept by flushing these records before Faust commits
any offset (`processors.faust_workarounds.flush_outputs_before_commit`), and a record that
could not be delivered stops the worker: it restarts from the last commit rather than skip one.
For that, the processors' output keeps failing once a record is lost (`failures_are_final`):
Faust retries a failed commit, and a flush that had forgotten the loss would let the retry
commit past the record whose output never went. (The embedders rewind their batch after a
failed flush and send it again, so for them a failure is reported once.)

Dead letters are the exception to "stop the worker": a poison record whose dead letter is too
large would otherwise stop it again on every restart. `send_dead_letter` fits the letter under
`max_message_bytes` (this producer's message.max.bytes) as a truncated copy; if the broker still
refuses it for its size (the DLQ topic's max.message.bytes is lower), it goes again with its
headers only.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Message, Producer

from jobtrail.errors import JobtrailError
from streams.backpressure import produce_waiting
from streams.dlq import DEFAULT_MAX_MESSAGE_BYTES, DeadLetter, fit
from streams.kafka_config import producer_config
from streams.settings import KafkaSettings, ProducerSettings

Headers = list[tuple[str, str | bytes | None]]


class OutputDeliveryError(JobtrailError):
    """An output record was not delivered: nothing may be committed after it."""

    retryable = True


class Output:
    def __init__(
        self,
        kafka: KafkaSettings,
        on_sent: Callable[[str], None] | None = None,
        *,
        max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES,
        on_truncated: Callable[[], None] | None = None,
        failures_are_final: bool = False,
    ) -> None:
        # A short linger: outputs are small, and commits wait for them.
        settings = ProducerSettings(linger_ms=5)
        self._config = {
            **producer_config(kafka, settings),
            "client.id": "jobtrail-processors",
            "message.max.bytes": max_message_bytes,
        }
        self.max_message_bytes = max_message_bytes
        self._producer: Producer | None = None
        self._on_sent = on_sent  # called with the topic of every record sent
        self._on_truncated = on_truncated  # called for every dead letter sent truncated
        self._failures: list[str] = []
        self._failures_are_final = failures_are_final
        self._resend: list[tuple[str, DeadLetter]] = []  # letters the broker found too large

    def start(self) -> None:
        self._producer = Producer(self._config, error_cb=self._client_error)

    def send(
        self,
        topic: str,
        key: bytes | None,
        value: bytes | None,
        headers: Headers | None = None,
        partition: int | None = None,
    ) -> None:
        producer = self._require()
        extra: dict[str, Any] = {} if partition is None else {"partition": partition}
        produce_waiting(producer, topic, value, key, headers=headers,
                        on_delivery=self._delivered, **extra)  # fmt: skip
        producer.poll(0)
        if self._on_sent is not None:
            self._on_sent(topic)

    def send_dead_letter(self, topic: str, letter: DeadLetter) -> None:
        """Sends `letter`, truncated to fit the message limit where it must be (never raises
        for its size: a poison record must not stop the worker)."""
        self._send_letter(topic, letter, fit(letter, self.max_message_bytes))

    def _send_letter(self, topic: str, original: DeadLetter, letter: DeadLetter) -> None:
        def delivered(error: KafkaError | None, message: Message) -> None:
            if error is not None and error.code() == KafkaError.MSG_SIZE_TOO_LARGE and letter.value:
                self._resend.append((topic, original))  # flush() sends it with headers only
                return
            self._delivered(error, message)

        try:
            produce_waiting(self._require(), topic, letter.value, letter.key,
                            headers=letter.headers(), on_delivery=delivered)  # fmt: skip
        except KafkaException as exc:
            if exc.args[0].code() != KafkaError.MSG_SIZE_TOO_LARGE or not letter.value:
                raise
            self._send_letter(topic, original, fit(original, 0))
            return
        if letter.truncated_from is not None and self._on_truncated is not None:
            self._on_truncated()
        if self._on_sent is not None:
            self._on_sent(topic)

    def flush(self) -> None:
        """Blocks until every record is acknowledged; raises if any was not."""
        producer = self._require()
        while True:
            while producer.flush(1.0):
                pass
            if not self._resend:
                break
            # Appended by delivery callbacks, maybe on another thread: take the list whole.
            pending, self._resend = self._resend, []
            for topic, letter in pending:
                self._send_letter(topic, letter, fit(letter, 0))
        if self._failures:
            failures = self._failures
            if not self._failures_are_final:
                self._failures = []
            raise OutputDeliveryError(f"{len(failures)} records undelivered: {failures[0]}")

    async def delivered(self) -> None:
        """Waits (off the event loop) until everything sent so far is acknowledged. Before a
        table write that records an output as done: the table's changelog and this output are
        two producers, and a crash must never leave the first without the second."""
        await asyncio.get_running_loop().run_in_executor(None, self.flush)

    def close(self) -> None:
        if self._producer is not None:
            self.flush()
            self._producer = None

    def _delivered(self, error: KafkaError | None, message: Message) -> None:
        if error is not None:
            self._failures.append(f"{message.topic()}: {error}")

    def _client_error(self, error: KafkaError) -> None:
        if error.fatal():
            self._failures.append(f"fatal producer error: {error}")

    def _require(self) -> Producer:
        if self._producer is None:
            self.start()  # on first use, from a running worker: never while the app is built
        assert self._producer is not None
        return self._producer
