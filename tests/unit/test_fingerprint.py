"""Error fingerprints: variable parts masked, constant parts kept, stable across runs."""

from __future__ import annotations

import subprocess
import sys

import pytest

from bench.fingerprint_accuracy import group_accuracy
from processors.fingerprint import fingerprint, fingerprint_message, stack_frames
from schemas.job_event import JobError
from tests.conftest import REPO_ROOT


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("job 123 failed after 3000 ms", "job 98765 failed after 12 ms"),
        ("GET https://api.example.com/v1/x?id=1 -> 502", "GET https://b.example.org/y -> 503"),
        ("user anna@example.com not found", "user li.wei@mail.test not found"),
        ("lock 0x7fa3c2 held", "lock 0xdeadbeef held"),
        ("request 6f1c0c1e-2b9a-4c8e-9a41-0b3c8e6d2f10 dropped",
         "request 0b3c8e6d-2f10-4c8e-9a41-6f1c0c1e2b9a dropped"),
        ("open /var/data/a/b.csv: no such file", "open /srv/x/y/z.json: no such file"),
        ("connect 10.0.0.1:5432 refused", "connect 192.168.7.20:6379 refused"),
        ("at 2026-01-01T10:00:00.123Z: stale", "at 2025-12-31 23:59:59,999: stale"),
        ("value '42abc' rejected", "value 'x9' rejected"),
    ],
)  # fmt: skip
def test_messages_that_differ_only_in_variable_parts_share_a_fingerprint(
    first: str, second: str
) -> None:
    assert fingerprint_message(first) == fingerprint_message(second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("connection refused", "connection reset"),
        ("missing key in order payload", "missing key in invoice payload"),
        ("HTTP 404 for /a/b", "HTTP 404 for /a/b and more"),
    ],
)
def test_messages_with_different_constant_parts_do_not(first: str, second: str) -> None:
    assert fingerprint_message(first) != fingerprint_message(second)


def test_stack_frames_drop_line_numbers_and_keep_locations() -> None:
    python = (
        'Traceback (most recent call last):\n  File "/app/jobs/x.py", line 42, in handle\n'
        "KeyError: 1"
    )
    node = "Error: x\n    at processJob (/srv/app/dist/jobs/x.js:120:17)"
    assert stack_frames(python) == ['File "/app/jobs/x.py", line , in handle']
    assert stack_frames(node) == ["at processJob (/srv/app/dist/jobs/x.js:)"]
    a = JobError("KeyError", "'k1'", python)
    b = JobError("KeyError", "'k2'", python.replace("line 42", "line 97"))
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(a) != fingerprint(JobError("ValueError", "'k1'", python))


def test_group_accuracy_follows_the_loghub_definition() -> None:
    truth = ["A", "A", "B", "B", "C"]
    assert group_accuracy(truth, ["1", "1", "2", "2", "3"]) == 1.0
    assert group_accuracy(truth, ["1", "1", "1", "1", "3"]) == 0.2  # A and B merged
    assert group_accuracy(truth, ["1", "2", "3", "3", "4"]) == 0.6  # A split
    assert group_accuracy([], []) == 1.0


def test_the_command_prints_one_line_per_input_line_in_order() -> None:
    lines = ["job 1 failed", "disk full", "job 22 failed", ""]
    done = subprocess.run(
        [sys.executable, "-m", "jobtrail.cli", "fingerprint"],
        input="\n".join(lines) + "\n", capture_output=True, text=True, check=True, cwd=REPO_ROOT,
    )  # fmt: skip
    rows = [row.split("\t") for row in done.stdout.splitlines()]
    assert len(rows) == len(lines)
    assert rows[0] == rows[2] and rows[0][1] == "job <num> failed"
    assert rows[1][1] == "disk full" and len(rows[1][0]) == 64
