"""What keeps `make up` running: supervisor restarts a component that is killed, and `jobtrail
status` reports each component's process and its consumer group's lag (real supervisord, real
broker)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from confluent_kafka import Producer

from jobtrail.pipeline import supervised
from streams.settings import KafkaSettings
from tests.conftest import REPO_ROOT, catalog_of

SUPERVISORD = Path(sys.executable).parent / "supervisord"


def config(tmp: Path) -> Path:
    """The project's supervisor setup, with stand-ins for the components: long sleeps."""
    lines = [
        "[unix_http_server]", f"file={tmp}/s.sock",
        "[supervisorctl]", f"serverurl=unix://{tmp}/s.sock",
        "[supervisord]", f"logfile={tmp}/d.log", f"pidfile={tmp}/d.pid", f"childlogdir={tmp}",
        "[rpcinterface:supervisor]",
        "supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface",
    ]  # fmt: skip
    for name in ("processors", "embedder"):
        lines += [f"[program:{name}]", "command=sleep 600", "autorestart=true", "startsecs=1"]
    path = tmp / "supervisord.conf"
    path.write_text("\n".join(lines) + "\n")
    return path


def wait_for(what: str, check: object, seconds: float = 30) -> None:
    deadline = time.monotonic() + seconds
    while not check():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.3)


def test_a_killed_component_is_restarted_and_status_reports_it(
    kafka: KafkaSettings, tmp_path: Path
) -> None:
    socket = tmp_path / "s.sock"
    conf = config(tmp_path)
    subprocess.run([str(SUPERVISORD), "-c", str(conf)], check=True, timeout=30)
    try:

        def states() -> dict[str, tuple[str, str]]:
            return {p.name: (p.state, p.description) for p in supervised(socket) or []}

        wait_for("both components running",
                 lambda: [s for s, _ in states().values()] == ["RUNNING", "RUNNING"])  # fmt: skip
        pid = int(states()["processors"][1].split("pid ")[1].split(",")[0])
        os.kill(pid, signal.SIGKILL)

        def restarted() -> bool:  # one snapshot: it goes RUNNING -> BACKOFF/STARTING -> RUNNING
            state, description = states()["processors"]
            return state == "RUNNING" and f"pid {pid}," not in description

        wait_for("the killed component restarted", restarted)

        producer = Producer({"bootstrap.servers": kafka.bootstrap_servers})
        for n in range(25):
            producer.produce(catalog_of(kafka).job_events.name, key=b"j", value=b"%d" % n)
        assert producer.flush(30) == 0
        env = {**os.environ, "JOBTRAIL_SUPERVISOR_SOCKET": str(socket), "COLUMNS": "200",
               "JOBTRAIL_BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
               "JOBTRAIL_TOPIC_PREFIX": kafka.topic_prefix}  # fmt: skip
        done = subprocess.run([sys.executable, "-m", "jobtrail.cli", "status"], env=env,
                              cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                              check=False)  # fmt: skip
        assert done.returncode == 0, done.stdout + done.stderr
        rows = {line.split("│")[1].strip(): [c.strip() for c in line.split("│")[2:]]
                for line in done.stdout.splitlines() if line.startswith("│")}  # fmt: skip
        assert rows["processors"][0] == "RUNNING"
        assert rows["project-redis"][0] == "-"
        assert rows["project-redis"][2] == "25"  # nothing consumed: every record is lag
        assert rows["processors"][2] == "25"  # its internal topics do not exist yet
    finally:
        subprocess.run([str(Path(sys.executable).parent / "supervisorctl"), "-c", str(conf),
                        "shutdown"], timeout=30, check=False)  # fmt: skip
        pidfile = tmp_path / "d.pid"
        deadline = time.monotonic() + 15
        while pidfile.exists() and time.monotonic() < deadline:  # supervisord stops its children
            time.sleep(0.2)
        if pidfile.exists():  # shutdown did not get through: do not leave a daemon behind
            os.killpg(int(pidfile.read_text()), signal.SIGKILL)
