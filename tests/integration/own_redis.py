"""A redis-server of the test's own, on a free port in a temporary directory: one a test may
stop, restart from its snapshot, fill up or make a replica without disturbing the shared one."""

from __future__ import annotations

import contextlib
import shutil
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


class OwnRedis:
    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.port = free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self._process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        """Starts the server; it loads dump.rdb from its directory when there is one."""
        # Snapshotting on (as in production), but only on SAVE within a test's minutes.
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                   "--dir", str(self.directory), "--dbfilename", "dump.rdb",
                   "--save", "3600 1", "--appendonly", "no", "--daemonize", "no",
                   "--logfile", str(self.directory / "redis.log")]  # fmt: skip
        self._process = subprocess.Popen(command)
        deadline = time.monotonic() + 30
        while True:
            try:
                if self.client().ping():
                    return
            except (redis.ConnectionError, redis.exceptions.BusyLoadingError):
                if time.monotonic() > deadline or self._process.poll() is not None:
                    raise
                time.sleep(0.05)

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=30, decode_responses=True)

    def shutdown_nosave(self) -> None:
        """Stops the server, losing everything written since the last SAVE."""
        with contextlib.suppress(redis.ConnectionError):  # the server closes it as it goes
            self.client().shutdown(nosave=True)
        if self._process is not None:
            self._process.wait(30)
            self._process = None

    def stop(self) -> None:
        if self._process is not None:
            self._process.kill()
            self._process.wait(30)
            self._process = None


@pytest.fixture
def own_redis(tmp_path: Path) -> Iterator[OwnRedis]:
    if shutil.which("redis-server") is None:
        pytest.fail("redis-server is not installed: run `make infra-install`")
    server = OwnRedis(tmp_path)
    server.start()
    yield server
    server.stop()
