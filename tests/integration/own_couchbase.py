"""A CouchbaseMock of the test's own, started with the launcher's `--strict` flag on free ports:
it refuses what Couchbase Server refuses (infra/couchbase/JobtrailCouchbaseMock.java), and a test
may stop it without disturbing the shared one."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.own_redis import free_port

ROOT = Path(__file__).resolve().parents[2]
LIBS = ROOT / ".infra-data" / "couchbase" / "libs"
LAUNCHER = ROOT / "infra" / "couchbase" / "JobtrailCouchbaseMock.java"


class OwnCouchbase:
    def __init__(self, classes: Path) -> None:
        self.classes = classes
        self.port, self.http_port = free_port(), free_port()
        self.connstr = f"couchbase://127.0.0.1:{self.port}"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Starts an empty strict mock (the mock keeps data in memory only)."""
        command = ["java", "-Xms64m", "-Xmx1g", "-cp", f"{LIBS}/*:{self.classes}",
                   "JobtrailCouchbaseMock", "127.0.0.1", str(self.http_port), str(self.port),
                   "default", "--strict"]  # fmt: skip
        self._process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert self._process.stdout is not None
        deadline = time.monotonic() + 60
        line = b""
        while b"mock ready" not in line:
            line = self._process.stdout.readline()
            if (not line and self._process.poll() is not None) or time.monotonic() > deadline:
                raise RuntimeError(f"strict couchbase mock did not start: {line!r}")
        assert b"strict=true" in line, line

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(30)
            self._process = None


@pytest.fixture(scope="session")
def strict_mock_classes(tmp_path_factory: pytest.TempPathFactory, couchbase_connstr: str) -> Path:
    """The launcher compiled apart (the shared mock's build may predate it); couchbase_connstr
    makes sure the mock's jar was resolved."""
    del couchbase_connstr
    classes = tmp_path_factory.mktemp("couchbase-classes")
    subprocess.run(["javac", "-d", str(classes), "-cp", f"{LIBS}/*", str(LAUNCHER)], check=True)
    return classes


@pytest.fixture
def own_couchbase(strict_mock_classes: Path) -> Iterator[OwnCouchbase]:
    server = OwnCouchbase(strict_mock_classes)
    server.start()
    try:
        yield server
    finally:
        server.stop()
