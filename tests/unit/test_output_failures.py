"""A lost output stops the processors for good (`Output(failures_are_final=True)`): Faust
retries a commit that failed, and a flush that forgot the loss would let the retry commit past
the record whose output never went. The embedders rewind and send again, so for them a loss is
reported once. Real librdkafka, pointed at a port nothing listens on: every record times out."""

from __future__ import annotations

import socket

import pytest

from processors.output import Output, OutputDeliveryError
from streams.settings import KafkaSettings


def nowhere() -> KafkaSettings:
    with socket.socket() as probe:  # a port that was free a moment ago: nothing answers there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return KafkaSettings(bootstrap_servers=f"127.0.0.1:{port}")


@pytest.mark.parametrize("final", [True, False])
def test_a_lost_record_fails_every_later_flush_only_when_failures_are_final(
    monkeypatch: pytest.MonkeyPatch, final: bool
) -> None:
    monkeypatch.setenv("JOBTRAIL_PRODUCER_DELIVERY_TIMEOUT_MS", "300")
    output = Output(nowhere(), failures_are_final=final)
    output.send("requests", b"k", b"v")
    with pytest.raises(OutputDeliveryError, match="1 records undelivered"):
        output.flush()
    if final:
        with pytest.raises(OutputDeliveryError, match="1 records undelivered"):
            output.flush()  # nothing new sent, and still refused: the loss is not forgotten
    else:
        output.flush()  # reported once: the caller rewinds and sends again
