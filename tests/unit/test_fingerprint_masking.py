"""Masking principles, one by one: each variable kind gets its placeholder, and the constant
wording around it stays."""

from __future__ import annotations

import pytest

from processors.fingerprint import normalize_message


@pytest.mark.parametrize(
    ("message", "template"),
    [
        # numbers and ids (any token with a digit in it)
        ("job 123 failed", "job <num> failed"),
        ("retry blk_-1608999687919862906 on worker-7", "retry <*> on <*>"),
        ("offset -1 for partition queue-3", "offset <num> for partition <*>"),
        # hex, uuids
        ("lock 0x7fa3c2 held", "lock <hex> held"),
        ("request 6f1c0c1e-2b9a-4c8e-9a41-0b3c8e6d2f10 dropped", "request <uuid> dropped"),
        ("no note found for object 73b2ba62368920dfcd79a3f9.", "no note found for object <*>."),
        # paths: absolute, relative, Windows, and a source location
        ("open /var/data/a/b.csv: no such file", "open <*>: no such file"),
        ("cat: /srv: Is a directory", "cat: <*>: Is a directory"),
        ("fatal: invalid reference: origin/main", "fatal: invalid reference: <*>"),
        ("Loaded C:\\Windows\\System\\x.dll", "Loaded <*>"),
        ("retry.c:7:10: error: expected ';'", "<*>: error: expected <*>"),
        # hosts and addresses, with or without a port
        ("connect 10.0.0.1:5432 refused", "connect <*> refused"),
        ("resolve db-7.internal failed", "resolve <*> failed"),
        ("Connecting to localhost:6379", "Connecting to <*>"),
        # urls and emails
        ("GET https://api.example.com/v1/x?id=1 -> 502", "GET <url> -> <num>"),
        ("user anna@example.com not found", "user <email> not found"),
        # durations and sizes, unit included
        ("timed out after 3000 ms", "timed out after <duration>"),
        ("took 1.5s, read 300 KB", "took <duration>, read <size>"),
        # quoted values, in every quoting style; not a quoted sentence, not logfmt's msg
        ("value '42abc' rejected", "value <*> rejected"),
        ('column "total" does not exist', "column <*> does not exist"),
        ("error: \u2018foo\u2019 undeclared", "error: <*> undeclared"),
        ("unknown option `no-verfy'", "unknown option <*>"),
        ("invalid literal for int(): ''", "invalid literal for <*>(): <*>"),
        ('str="No such property: a b c d e"', 'str="No such property: a b c d e"'),
        ('msg="Loading config" file=/etc/p.yml', 'msg="Loading config" file=<*>'),
        # timestamps, including month and weekday names that are part of a date
        ("at 2026-01-01T10:00:00.123Z: stale", "at <ts>: stale"),
        ("at 2025-12-31 23:59:59,999: stale", "at <ts>: stale"),
        ("[Sun Dec 04 04:47:44 2005] [notice] ready", "[<ts>] [notice] ready"),
        ("March 3 is a Monday", "<ts> is a Monday"),
        # key=value: the key stays, the value goes
        ("id=5 addr=127.0.0.1:57172 flags=N name=", "id=<*> addr=<*> flags=<*> name="),
        ("allDrawn= false, moved =  true", "allDrawn= <*>, moved = <*>"),
        # names of code: a called function, snake_case, hyphenated lowercase names
        ("upload_file() takes 3 positional arguments", "<*>() takes <num> positional arguments"),
        ("no such table: invoice_lines", "no such table: <*>"),
        ("Setting up media-types ...", "Setting up <*> ..."),
        ("unknown flag --dry-run", "unknown flag --dry-run"),
        # a run of placeholders is one variable: lists, host and port, date and time
        ("with args beginning with: 'a' 'b' 'c'", "with args beginning with: <*>"),
        ("voters [1, 2, 3] elected", "voters [<num>] elected"),
    ],
)  # fmt: skip
def test_each_variable_kind_is_masked(message: str, template: str) -> None:
    assert normalize_message(message) == template


@pytest.mark.parametrize(
    ("first", "second"),
    [
        # log lines with their headers: time, host, pid, thread, level of the line
        ("Nov 22 16:07:55 vm sshd[32511]: Invalid user admin from 127.0.0.1 port 44592",
         "Dec  3 01:02:03 vm sshd[7]: Invalid user admin from 10.1.2.3 port 5"),
        ("[2026-11-22 14:45:43,600] INFO [controller-1-Reaper]: Starting (kafka.server.X)",
         "[2026-11-23 01:00:00,001] INFO [broker-2-Reaper]: Starting (kafka.server.X)"),
        ("2026-11-22 15:09:45.826 UTC [13326] LOG:  checkpoint complete: wrote 3 buffers",
         "2026-11-22 16:00:00.000 UTC [9] LOG:  checkpoint complete: wrote 120 buffers"),
        ("4150:M 22 Nov 2026 13:08:56.047 * DB saved on disk",
         "77:M 1 Dec 2026 09:00:00.000 * DB saved on disk"),
        # a value printed quoted by one caller and bare by another (repr of str and int)
        ("KeyError: 'k1'", "KeyError: 42x"),
        # an address that is an IP or a host name or a socket path
        ("addr=127.0.0.1:57172 closed", "addr=/tmp/redis.sock:0 closed"),
        ("connecting to localhost:6379", "connecting to 10.0.0.5:6379"),
    ],
)  # fmt: skip
def test_lines_that_differ_only_in_variable_parts_share_a_template(first: str, second: str) -> None:
    assert normalize_message(first) == normalize_message(second)


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("[Errno 2] No such file or directory", "[Errno 21] Is a directory"),
        ("WARN connection reset by peer", "ERROR connection reset by peer"),
        ("Accepted publickey for root", "Failed publickey for root"),
        ('msg="Starting TSDB"', 'msg="TSDB started"'),
        ("Data-plane acceptor started", "Control plane acceptor started"),
    ],
)
def test_constant_wording_is_kept(first: str, second: str) -> None:
    assert normalize_message(first) != normalize_message(second)


def test_masking_is_idempotent_and_deterministic() -> None:
    message = "job 42 on db-7.internal:5432 failed after 30s: 'x' (id=9)"
    template = normalize_message(message)
    assert normalize_message(template) == template
    assert normalize_message(message) == template


def test_whitespace_does_not_matter() -> None:
    assert normalize_message("  disk   full\ton  /dev/sda1 ") == "disk full on <*>"
