"""One vectorization request per distinct error and model: the dedup decision, as pure functions.

The processors repartition fingerprint sightings by fingerprint, so one task owns each fingerprint
and its `FingerprintEntry` (a changelog-backed table row). `observe` folds a sighting into the
entry and says whether a request must go out: only on the first sighting for the configured model.
`request_missing` covers a newly configured model: every known fingerprint is requested once.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from schemas.derived import VectorizeRequest

# A fingerprint seen under many job names keeps the first few: enough to say "shared by", bounded
# so that a table row stays small.
MAX_JOB_NAMES = 16
MAX_SAMPLE_CHARS = 2000


@dataclass(frozen=True, slots=True)
class Sighting:
    """A FAILED event's error, reduced to what dedup needs. Key: `fingerprint`."""

    fingerprint: str
    template: str
    message: str
    job_name: str
    occurred_at_ms: int

    def to_json(self) -> dict[str, Any]:
        return {
            "fp": self.fingerprint,
            "t": self.template,
            "m": self.message,
            "n": self.job_name,
            "at": self.occurred_at_ms,
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Sighting:
        return cls(data["fp"], data["t"], data["m"], data["n"], data["at"])


@dataclass(frozen=True, slots=True)
class FingerprintEntry:
    """What is known about one fingerprint: the table row."""

    fingerprint: str
    template: str
    sample: str
    first_seen_ms: int
    last_seen_ms: int
    count: int
    job_names: tuple[str, ...]
    models: tuple[str, ...]  # models a request was emitted for

    def to_json(self) -> dict[str, Any]:
        return {
            "template": self.template,
            "sample": self.sample,
            "first_seen": self.first_seen_ms,
            "last_seen": self.last_seen_ms,
            "count": self.count,
            "job_names": list(self.job_names),
            "models": list(self.models),
        }

    @classmethod
    def from_json(cls, fingerprint: str, data: dict[str, Any]) -> FingerprintEntry:
        return cls(
            fingerprint=fingerprint,
            template=data["template"],
            sample=data["sample"],
            first_seen_ms=data["first_seen"],
            last_seen_ms=data["last_seen"],
            count=data["count"],
            job_names=tuple(data["job_names"]),
            models=tuple(data["models"]),
        )


def observe(
    entry: FingerprintEntry | None, sighting: Sighting, model: str
) -> tuple[FingerprintEntry, VectorizeRequest | None]:
    """The entry after `sighting`, and the request to emit (None when the model has it)."""
    if entry is None:
        entry = FingerprintEntry(
            fingerprint=sighting.fingerprint,
            template=sighting.template,
            sample=sighting.message[:MAX_SAMPLE_CHARS],
            first_seen_ms=sighting.occurred_at_ms,
            last_seen_ms=sighting.occurred_at_ms,
            count=1,
            job_names=(sighting.job_name,),
            models=(),
        )
    else:
        names = entry.job_names
        if sighting.job_name not in names and len(names) < MAX_JOB_NAMES:
            names = (*names, sighting.job_name)
        entry = replace(
            entry,
            # Event time, not arrival order: a late sighting can move first_seen earlier.
            first_seen_ms=min(entry.first_seen_ms, sighting.occurred_at_ms),
            last_seen_ms=max(entry.last_seen_ms, sighting.occurred_at_ms),
            count=entry.count + 1,
            job_names=names,
        )
    return request_missing(entry, model)


def request_missing(
    entry: FingerprintEntry, model: str
) -> tuple[FingerprintEntry, VectorizeRequest | None]:
    """Requests `entry` for `model` unless that was done before (a newly configured model)."""
    if model in entry.models:
        return entry, None
    request = VectorizeRequest(
        fingerprint=entry.fingerprint,
        template=entry.template,
        sample=entry.sample,
        model=model,
        first_seen_ms=entry.first_seen_ms,
    )
    return replace(entry, models=(*entry.models, model)), request
