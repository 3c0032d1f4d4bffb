"""The job names of the demo workload and how each behaves."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from dataclasses import dataclass

from streams.demo.errors import FAMILIES, ErrorFamily, family_named

Payload = Callable[[random.Random], dict[str, object]]


@dataclass(frozen=True, slots=True)
class JobProfile:
    """How one job name behaves: durations are log-normal around `median_s`."""

    name: str
    queue: str
    weight: float  # share of arrivals
    median_s: float
    sigma: float
    failure_rate: float  # per attempt, on an idle worker
    load_sensitivity: float  # extra failure rate when the worker's slots are all busy
    max_attempts: int
    backoff_s: float  # exponential: backoff_s * 2 ** (attempt - 1)
    progress_steps: int
    families: tuple[ErrorFamily, ...]
    payload: Payload

    def input_json(self, rng: random.Random) -> str:
        return json.dumps(self.payload(rng), separators=(",", ":"), sort_keys=True)


def _families(*names: str) -> tuple[ErrorFamily, ...]:
    return tuple(family_named(name) for name in names)


PROFILES: tuple[JobProfile, ...] = (
    JobProfile(
        "send-email",
        "emails",
        0.30,
        0.4,
        0.5,
        0.04,
        0.06,
        5,
        2.0,
        0,
        _families("smtp-refused", "invalid-email", "rate-limited", "http-upstream"),
        lambda r: {
            "to": f"user{r.randint(1, 99999)}@example.com",
            "template": r.choice(["welcome", "reset", "digest", "receipt"]),
        },
    ),
    JobProfile(
        "resize-image",
        "media",
        0.18,
        2.0,
        0.6,
        0.03,
        0.12,
        3,
        5.0,
        2,
        _families("file-not-found", "out-of-memory", "s3-access"),
        lambda r: {"image_id": r.randint(1, 10**7), "sizes": [64, 256, 1024]},
    ),
    JobProfile(
        "charge-card",
        "payments",
        0.14,
        0.8,
        0.4,
        0.05,
        0.08,
        4,
        10.0,
        0,
        _families("http-upstream", "rate-limited", "deadlock", "lock-timeout"),
        lambda r: {
            "invoice": f"INV-{r.randint(1, 10**6):07d}",
            "amount_cents": r.randint(100, 500_000),
            "currency": "EUR",
        },
    ),
    JobProfile(
        "sync-crm",
        "integrations",
        0.10,
        8.0,
        0.7,
        0.08,
        0.10,
        5,
        30.0,
        4,
        _families("http-upstream", "rate-limited", "missing-key", "grpc-unavailable"),
        lambda r: {"account_id": r.randint(1, 50_000), "full": r.random() < 0.1},
    ),
    JobProfile(
        "generate-report",
        "reports",
        0.06,
        30.0,
        0.8,
        0.06,
        0.15,
        3,
        60.0,
        4,
        _families("db-timeout", "out-of-memory", "deadlock", "lock-timeout", "s3-access"),
        lambda r: {
            "report": r.choice(["sales", "churn", "inventory"]),
            "month": f"2026-{r.randint(1, 12):02d}",
        },
    ),
    JobProfile(
        "transcode-video",
        "media",
        0.04,
        90.0,
        0.6,
        0.07,
        0.20,
        2,
        120.0,
        4,
        _families("out-of-memory", "file-not-found", "grpc-unavailable"),
        lambda r: {"video_id": r.randint(1, 10**6), "profile": r.choice(["720p", "1080p"])},
    ),
    JobProfile(
        "index-document",
        "search",
        0.12,
        1.5,
        0.5,
        0.03,
        0.05,
        5,
        3.0,
        0,
        _families("db-timeout", "grpc-unavailable", "missing-key"),
        lambda r: {"document_id": r.randint(1, 10**8)},
    ),
    JobProfile(
        "deliver-webhook",
        "webhooks",
        0.06,
        0.5,
        0.9,
        0.10,
        0.05,
        8,
        5.0,
        0,
        _families("http-upstream", "rate-limited"),
        lambda r: {
            "endpoint": f"https://hooks{r.randint(1, 300)}.customer.example/jobtrail",
            "event": r.choice(["order.paid", "order.shipped"]),
        },
    ),
)

assert all(profile.families for profile in PROFILES)
assert {f.name for p in PROFILES for f in p.families} <= {f.name for f in FAMILIES}
