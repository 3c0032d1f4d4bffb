"""Shared pieces of the benchmarks: reference tools, timing, result files."""

from __future__ import annotations

import json
import os
import platform
import re
import subprocess
import time
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parent.parent
RESULTS_DIR = REPO_ROOT / "bench" / "results"


def kafka_libs() -> Path:
    infra = Path(os.environ.get("JOBTRAIL_INFRA_DIR", REPO_ROOT / ".infra-data"))
    libs = infra / "kafka" / "libs"
    if not libs.is_dir():
        raise SystemExit(f"Kafka jars not found in {libs}: run `make infra-install` first")
    return libs


@dataclass(frozen=True, slots=True)
class Measurement:
    name: str
    events: int
    seconds: float

    @property
    def events_per_s(self) -> float:
        return self.events / self.seconds

    @property
    def us_per_event(self) -> float:
        return self.seconds / self.events * 1e6

    def as_dict(self) -> dict[str, Any]:
        return {
            **asdict(self),
            "events_per_s": round(self.events_per_s, 1),
            "us_per_event": round(self.us_per_event, 3),
        }


class Stopwatch:
    def __enter__(self) -> Stopwatch:
        self.started = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *_: object) -> None:
        self.seconds = time.perf_counter() - self.started


def java_tool(main_class: str, *args: str, timeout: float = 600) -> str:
    """Runs one of Kafka's own Java tools from the project's jars; returns its stdout."""
    libs = kafka_libs()
    command = ["java", "-Xmx1g", "-cp", f"{libs}/*", main_class, *args]
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{main_class} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return done.stdout


def parse_producer_performance(output: str) -> tuple[int, float]:
    """(records, records/s) from ProducerPerformance's final summary line."""
    summaries = re.findall(r"(\d+) records sent, ([\d.]+) records/sec", output)
    if not summaries:
        raise SystemExit(f"unexpected ProducerPerformance output:\n{output[-2000:]}")
    records, per_s = summaries[-1]  # progress lines come first; the last one is the total
    return int(records), float(per_s)


def machine() -> dict[str, Any]:
    return {
        "host": platform.node(),
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
    }


def write_result(name: str, payload: dict[str, Any]) -> Path:
    RESULTS_DIR.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    path = RESULTS_DIR / f"{name}-{stamp}.json"
    document = {"benchmark": name, "at": stamp, "machine": machine(), **payload}
    path.write_text(json.dumps(document, indent=2) + "\n", encoding="utf-8")
    return path
