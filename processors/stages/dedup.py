"""Stage 2, on fingerprint-sightings: one vectorize request per distinct error and model.

Each fingerprint is owned by one partition and its row (`processors.dedup.FingerprintEntry`) by
the table; `observe` decides per sighting. The requests of a batch go out and are delivered before
the rows that say they were made are written: a row saying "requested" without the request on
the broker would lose it after a crash. A `Sweep` (sent at start) requests every known error the
configured model lacks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from processors.dedup import FingerprintEntry, observe, request_missing
from processors.metrics import ProcessorMetrics
from processors.records import Sightings, Sweep, decode
from processors.stages.ports import Incoming, Sink, Table, reject_internal
from processors.topology import Topology
from schemas.derived import VectorizeRequest, encode_vectorize_request


class DedupStage:
    def __init__(
        self, *, topology: Topology, model: str, metrics: ProcessorMetrics, sink: Sink,
        fingerprints: Table,
    ) -> None:  # fmt: skip
        self._topology = topology
        self._model = model
        self._metrics = metrics
        self._sink = sink
        self._table = fingerprints

    async def handle(self, batch: Sequence[Incoming]) -> Sequence[object]:
        rows: dict[str, tuple[FingerprintEntry, int]] = {}  # this batch's, with their partition
        requests: list[VectorizeRequest] = []

        def known(fingerprint: str) -> FingerprintEntry | None:
            if fingerprint in rows:
                return rows[fingerprint][0]
            stored = self._table.get(fingerprint)
            return None if stored is None else FingerprintEntry.from_json(fingerprint, stored)

        for record in batch:
            try:
                decoded = decode(record.value)
            except ValueError as exc:
                self._dead_letter(record, str(exc))
                continue
            if isinstance(decoded, Sweep):
                for fingerprint, entry in self._owned(record.partition, decoded.model, known):
                    requested, request = request_missing(entry, decoded.model)
                    if request is not None:
                        requests.append(request)
                        rows[fingerprint] = (requested, record.partition)
            elif isinstance(decoded, Sightings):
                for sighting in decoded.items:
                    entry, request = observe(known(sighting.fingerprint), sighting, self._model)
                    rows[sighting.fingerprint] = (entry, record.partition)
                    self._metrics.dedup.labels("new" if request is not None else "seen").inc()
                    if request is not None:
                        requests.append(request)
            else:
                self._dead_letter(record, f"not a sighting: {type(decoded).__name__}")
        self._metrics.events_in.labels(self._topology.sightings).inc(len(batch))
        for request in requests:
            self._sink.send(self._topology.requests, request.fingerprint.encode(),
                            encode_vectorize_request(request))  # fmt: skip
        if requests:
            await self._sink.delivered()  # the requests first, then the rows that say so
        for fingerprint, (entry, partition) in rows.items():
            self._table.put(partition, fingerprint, {**entry.to_json(), "p": partition})
        return [record.token for record in batch]

    def _owned(self, partition: int, model: str, known: Any) -> list[tuple[str, FingerprintEntry]]:
        """The partition's fingerprints that `model` lacks."""
        owned = []
        for fingerprint, stored in list(self._table.items()):
            if stored.get("p") == partition and model not in stored["models"]:
                entry = known(fingerprint)
                if entry is not None:
                    owned.append((fingerprint, entry))
        return owned

    def _dead_letter(self, record: Incoming, detail: str) -> None:
        reject_internal(self._sink, self._topology.dlq, self._metrics, record, detail)

    def forget(self) -> None:
        """Nothing is held in memory between batches."""
