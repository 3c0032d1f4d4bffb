"""A Faust worker that only takes job-events in batches and acknowledges them: the floor under
the processors' ingest on this machine (Faust's own cost per record consumed), run as a
subprocess by `bench.processors`. Writes the seconds from the first record to the last to the
file named by its second argument (Faust's spinner owns stdout)."""

from __future__ import annotations

import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any, cast

import faust
import uvloop

from processors.faust_config import app_settings
from processors.settings import ProcessorSettings
from processors.topology import Topology
from streams.settings import KafkaSettings


def main() -> None:
    events, result = int(sys.argv[1]), Path(sys.argv[2])
    settings = ProcessorSettings()
    kafka = KafkaSettings()
    group = f"{kafka.topic_prefix}bench-faust-floor-{uuid.uuid4().hex[:8]}"  # from the start
    app = faust.App(group, **app_settings(settings, kafka))
    topic = app.topic(Topology.of(kafka).job_events)
    seen = {"n": 0, "first": 0.0}

    async def take(stream: Any) -> None:
        batches = cast(faust.Stream[bytes], stream).noack_take(settings.batch_size,
                                                              settings.batch_within_s)  # fmt: skip
        async for batch in batches:
            if not seen["n"]:
                seen["first"] = time.perf_counter()
            for event in batch:
                await stream.ack(event)
            seen["n"] += len(batch)
            if seen["n"] >= events:
                result.write_text(f"{time.perf_counter() - seen['first']:.3f}")
                os._exit(0)  # measured: no need for a graceful stop

    app.agent(topic, name="floor")(take)
    uvloop.install()  # as the processors' worker does
    worker = faust.Worker(app, loglevel="WARNING", quiet=True)
    worker.execute_from_commandline()


if __name__ == "__main__":
    main()
