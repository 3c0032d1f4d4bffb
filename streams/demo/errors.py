"""Realistic error messages in a dozen families whose variable parts change on every draw.

Each family has a few fixed variants (operation, table, service...) and variable parts (ids,
numbers, hex, uuids, paths, hosts, urls, emails, durations, quoted values, timestamps, stack
frames). `ErrorSample.template_id` names the family and variant: every message with the same
id should share one fingerprint, which is what the fingerprinting processors are tested against.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable
from dataclasses import dataclass

from schemas.job_event import JobError


@dataclass(frozen=True, slots=True)
class ErrorSample:
    error: JobError
    template_id: str
    retryable: bool


Render = Callable[[random.Random, str], str]


@dataclass(frozen=True, slots=True)
class ErrorFamily:
    name: str
    error_type: str
    variants: tuple[str, ...]
    render: Render
    retryable: bool
    language: str  # "python" or "node": which stack-trace style it comes with


def _host(rng: random.Random) -> str:
    return f"{rng.choice(['db', 'cache', 'api', 'search', 'queue'])}-{rng.randint(1, 40)}.internal"


def _ip(rng: random.Random) -> str:
    return ".".join(str(rng.randint(1, 254)) for _ in range(4))


def _uuid(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _email(rng: random.Random) -> str:
    user = rng.choice(["anna", "li.wei", "j.smith", "omar", "sven", "maria.g", "kofi"])
    return f"{user}{rng.randint(1, 9999)}@{rng.choice(['example.com', 'mail.test', 'corp.io'])}"


def _ts(rng: random.Random) -> str:
    return (
        f"2026-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d}T{rng.randint(0, 23):02d}:"
        f"{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{rng.randint(0, 999):03d}Z"
    )


FAMILIES: tuple[ErrorFamily, ...] = (
    ErrorFamily(
        "db-timeout",
        "OperationalError",
        ("SELECT", "UPDATE", "INSERT"),
        lambda r, v: (
            f'connection to server at "{_host(r)}" ({_ip(r)}), port {r.choice([5432, 6432])}'
            f" failed: timeout expired after {r.randint(1000, 30000)}ms during {v}"
        ),
        True,
        "python",
    ),
    ErrorFamily(
        "http-upstream",
        "HTTPError",
        ("502 Bad Gateway", "503 Service Unavailable", "504 Gateway Timeout"),
        lambda r, v: (
            f"{v} for url: https://{r.choice(['payments', 'crm', 'geo'])}.partner.example"
            f"/v{r.randint(1, 3)}/orders/{r.randint(10000, 999999)}?trace={r.getrandbits(64):016x}"
        ),
        True,
        "python",
    ),
    ErrorFamily(
        "missing-key",
        "KeyError",
        ("order payload", "invoice payload", "shipping payload", "profile payload"),
        lambda r, v: (
            f"'{r.choice(['customer_id', 'invoice_total', 'shipping_address', 'locale'])}'"
            f" missing in {v} for record {r.randint(1, 10**7)}"
        ),
        False,
        "python",
    ),
    ErrorFamily(
        "file-not-found",
        "FileNotFoundError",
        ("reading export", "writing thumbnail", "loading upload"),
        lambda r, v: (
            f"{v} failed: [Errno 2] No such file or directory: '/var/data/"
            f"{r.choice(['exports', 'uploads', 'thumbnails'])}/{r.randint(2020, 2026)}/"
            f"{_uuid(r)}.{r.choice(['csv', 'png', 'json'])}'"
        ),
        False,
        "python",
    ),
    ErrorFamily(
        "deadlock",
        "DeadlockDetected",
        ("ShareLock", "ExclusiveLock"),
        lambda r, v: (
            f"deadlock detected: Process {r.randint(1000, 65000)} waits for {v} on"
            f" transaction {r.randint(10**6, 10**8)}; blocked by process {r.randint(1000, 65000)}."
        ),
        True,
        "python",
    ),
    ErrorFamily(
        "rate-limited",
        "RateLimitError",
        ("sendgrid", "stripe", "openai", "hubspot"),
        lambda r, v: (
            f"429 Too Many Requests from {v}: rate limit exceeded for key"
            f" sk_{r.getrandbits(48):012x}, retry after {r.randint(1, 120)}s"
        ),
        True,
        "node",
    ),
    ErrorFamily(
        "s3-access",
        "AccessDenied",
        ("GetObject", "PutObject"),
        lambda r, v: (
            f"An error occurred (AccessDenied) when calling the {v} operation:"
            f" Access Denied for s3://{r.choice(['media', 'reports', 'backups'])}-prod/"
            f"{r.randint(1, 9999)}/{_uuid(r)}"
        ),
        False,
        "python",
    ),
    ErrorFamily(
        "invalid-email",
        "ValidationError",
        ("Message", "Recipient", "Template"),
        lambda r, v: (
            f"1 validation error for {v}: field '{r.choice(['to', 'reply_to', 'cc'])}' value"
            f" '{_email(r)}' is not a valid email address (received at {_ts(r)})"
        ),
        False,
        "python",
    ),
    ErrorFamily(
        "out-of-memory",
        "MemoryError",
        ("an array", "a mask"),
        lambda r, v: (
            f"Unable to allocate {r.randint(100, 9000)}. MiB for {v} with shape"
            f" ({r.randint(100, 50000)}, {r.randint(100, 50000)}) and data type"
            f" {r.choice(['float64', 'uint8', 'int32'])}"
        ),
        True,
        "python",
    ),
    ErrorFamily(
        "smtp-refused",
        "SMTPRecipientsRefused",
        ("mailbox unavailable", "mailbox full"),
        lambda r, v: f"recipient {_email(r)} refused: {r.choice([550, 552, 554])} {v}",
        False,
        "python",
    ),
    ErrorFamily(
        "lock-timeout",
        "LockTimeoutError",
        ("report", "sync", "invoice"),
        lambda r, v: (
            f'could not acquire {v} lock "{v}:{r.randint(1, 10**6)}" within'
            f" {r.choice([500, 1000, 2500, 5000])}ms (held by worker-{r.randint(1, 12)})"
        ),
        True,
        "node",
    ),
    ErrorFamily(
        "grpc-unavailable",
        "ServiceUnavailable",
        ("inventory", "pricing", "recommendations"),
        lambda r, v: (
            f"14 UNAVAILABLE: {v}: failed to connect to all addresses; last error:"
            f" ipv4:{_ip(r)}:{r.randint(1024, 65535)}: Connection refused after"
            f" {r.randint(1, 9)}.{r.randint(0, 999):03d}s"
        ),
        True,
        "node",
    ),
)


def _python_stack(
    rng: random.Random, job_name: str, family: ErrorFamily, variant: str, message: str
) -> str:
    module = job_name.replace("-", "_")
    frames = [
        ("/app/worker/runner.py", "run_job"),
        (f"/app/jobs/{module}.py", "handle"),
        (f"/app/lib/{variant.split(maxsplit=1)[0].lower()}_client.py", "call"),
    ]
    lines = ["Traceback (most recent call last):"]
    for path, function in frames:
        lines.append(f'  File "{path}", line {rng.randint(10, 900)}, in {function}')
    lines.append(f"{family.error_type}: {message}")
    return "\n".join(lines)


def _node_stack(
    rng: random.Random, job_name: str, family: ErrorFamily, variant: str, message: str
) -> str:
    lines = [f"{family.error_type}: {message}"]
    for path, function in (
        (f"/srv/app/dist/jobs/{job_name}.js", "processJob"),
        ("/srv/app/node_modules/bullmq/dist/cjs/classes/worker.js", "Worker.callProcessJob"),
    ):
        lines.append(f"    at {function} ({path}:{rng.randint(1, 800)}:{rng.randint(1, 80)})")
    return "\n".join(lines)


def draw_error(
    rng: random.Random, job_name: str, families: tuple[ErrorFamily, ...] = FAMILIES
) -> ErrorSample:
    """One error as the job `job_name` would raise it.

    The template id covers what a fingerprint must keep apart: family, variant, and (when a
    stack trace comes with it) the frames, which name the job's own module.
    """
    family = rng.choice(families)
    variant = rng.choice(family.variants)
    message = family.render(rng, variant)
    template_id = f"{family.name}/{variant}"
    stack = None
    if rng.random() < 0.7:
        stack_style = _python_stack if family.language == "python" else _node_stack
        stack = stack_style(rng, job_name, family, variant, message)
        template_id += f"/stack:{job_name}"
    return ErrorSample(
        error=JobError(type=family.error_type, message=message, stack=stack),
        template_id=template_id,
        retryable=family.retryable,
    )


def family_named(name: str) -> ErrorFamily:
    for family in FAMILIES:
        if family.name == name:
            return family
    raise KeyError(name)
