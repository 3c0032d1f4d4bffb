"""`make bench-api`: every route of `jobtrail serve` under 50 concurrent clients, over the read
models of 1,000,000 demo events, measured with wrk (a real HTTP load generator, its own process).

  1. builds the read models without Kafka (the same stores the projectors write): the job read
     model (Redis), the analytics model (Redis) with the events' attempt outcomes and a vector per
     error, and the Couchbase job documents of a sample of jobs (for the history);
  2. starts `jobtrail serve` as deployed (its own process; JOBTRAIL_API_WORKERS workers);
  3. per route, `wrk -c 50 -d <seconds> --latency`: requests/s, p50 and p99, against the target
     p99 < 50 ms; the reference in the same run: wrk against /openapi.json (a cached document: the
     HTTP stack alone, no read model) and redis-benchmark PING (the store's round trip).
Results go to bench/results/api-<time>.json. The target is a goal to measure against: where a
route misses it, the table says so.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from typing import Any

from bench.common import REPO_ROOT, Stopwatch, write_result
from processors.fingerprint import fingerprint
from processors.outcomes import recompute
from projections.analytics.redis_store import AnalyticsRedisStore
from projections.couchbase import CouchbaseStore
from projections.model import Position
from projections.redis import RedisStore
from projections.settings import CouchbaseSettings, RedisSettings
from schemas.derived import ErrorVector
from schemas.job_event import JobEvent
from streams.demo.workload import Workload, WorkloadConfig

P99_TARGET_MS = 50.0
CLIENTS = 50


def build(events: list[JobEvent], prefix: str, couchbase_prefix: str) -> dict[str, float]:
    timings = {}
    redis_store = RedisStore(RedisSettings(prefix=prefix))
    redis_store.setup()
    with Stopwatch() as watch:
        generation = redis_store.current_generation()
        items = [(Position("job-events", 0, n), e) for n, e in enumerate(events)]
        for start in range(0, len(items), 5000):
            redis_store.apply_batch(items[start : start + 5000], generation)
    timings["job read model (s)"] = watch.seconds
    print(f"  job read model: {watch.seconds:.1f} s", flush=True)

    analytics = AnalyticsRedisStore(RedisSettings(prefix=prefix))
    analytics.setup()
    with Stopwatch() as watch:
        outcomes = sorted(recompute(events).values(), key=lambda o: o.ended_at_ms)
        prints = sorted({fingerprint(e.error).sha256 for e in events if e.error is not None})
        records: list[Any] = [
            *[(Position("job-events", 0, n), e) for n, e in enumerate(events)],
            *[(Position("attempt-outcomes", 0, n), o) for n, o in enumerate(outcomes)],
            *[(Position("error-vectors", 0, n), ErrorVector(fp, "bench", tuple([0.5] * 384)))
              for n, fp in enumerate(prints)],
        ]  # fmt: skip
        generation = analytics.current_generation()
        for start in range(0, len(records), 5000):
            analytics.apply_batch(records[start : start + 5000], generation)
    timings["analytics model (s)"] = watch.seconds
    print(f"  analytics model: {watch.seconds:.1f} s ({len(records):,} records)", flush=True)

    documents = CouchbaseStore(CouchbaseSettings(prefix=couchbase_prefix))
    documents.setup()
    sample = {e.job_id for e in events[:20_000]}
    kept = [e for e in events if e.job_id in sample]
    with Stopwatch() as watch:
        generation = documents.current_generation()
        items = [(Position("job-events", 0, n), e) for n, e in enumerate(kept)]
        for start in range(0, len(items), 2000):
            documents.apply_batch(items[start : start + 2000], generation)
    timings["couchbase job documents (s)"] = watch.seconds
    print(f"  couchbase documents of {len(sample):,} jobs: {watch.seconds:.1f} s", flush=True)
    return timings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def serve(env: dict[str, str]) -> tuple[subprocess.Popen[bytes], str]:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "jobtrail.cli", "serve", "--port", str(port)],
        env={**os.environ, **env}, cwd=REPO_ROOT,
    )  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(url + "/openapi.json", timeout=1).read()
            return process, url
        except OSError:
            time.sleep(0.3)
    process.kill()
    raise SystemExit("jobtrail serve did not answer within 60 s")


_UNIT_MS = {"us": 0.001, "ms": 1.0, "s": 1000.0}


def wrk(url: str, seconds: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t", "2", "-c", str(CLIENTS), "-d", f"{seconds}s", "--latency", url],
        capture_output=True, text=True, check=True, timeout=seconds + 60,
    ).stdout  # fmt: skip

    def latency(percent: str) -> float:
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        if match is None:
            raise SystemExit(f"unexpected wrk output:\n{out}")
        return float(match.group(1)) * _UNIT_MS[match.group(2)]

    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    if rate is None:
        raise SystemExit(f"unexpected wrk output:\n{out}")
    return {
        "requests_per_s": float(rate.group(1)),
        "p50_ms": latency("50"),
        "p99_ms": latency("99"),
        "non_2xx": float(errors.group(1)) if errors else 0.0,
    }


def redis_ping() -> float:
    command = ["redis-benchmark", "-t", "ping", "-n", "200000", "-c", str(CLIENTS), "-q"]
    out = subprocess.run(command, capture_output=True, text=True, check=True, timeout=300).stdout
    match = re.search(r"PING_MBULK: ([\d.]+) requests per second", out)
    if match is None:
        raise SystemExit(f"unexpected redis-benchmark output: {out!r}")
    return float(match.group(1))


def routes(events: list[JobEvent], store: AnalyticsRedisStore) -> dict[str, str]:
    job = events[len(events) // 3].job_id
    sample = events[100].job_id
    name = events[0].job_name
    worker = next(e.worker for e in events if e.worker)
    top = str(store.client.zrevrange(store.current() + "errors", 0, 0)[0])
    return {
        "/api/health": "/api/health",
        "/api/job-names": "/api/job-names",
        "/api/job-names/{name}": f"/api/job-names/{name}",
        "/api/job-names/{name}/jobs": f"/api/job-names/{name}/jobs?page=3&size=50",
        "/api/job-names/{name}/jobs?state=failed": f"/api/job-names/{name}/jobs?state=failed",
        "/api/job-names/{name}/retries": f"/api/job-names/{name}/retries",
        "/api/job-names/{name}/concurrency": f"/api/job-names/{name}/concurrency",
        "/api/workers/{worker}/concurrency": f"/api/workers/{worker}/concurrency",
        "/api/jobs/{id} (state + history)": f"/api/jobs/{sample}",
        "/api/jobs/{id} (no history)": f"/api/jobs/{job}",
        "/api/errors": "/api/errors",
        "/api/errors?job_name=": f"/api/errors?job_name={name}",
        "/api/errors/{fingerprint}": f"/api/errors/{top}",
        "/api/gaps": "/api/gaps",
        "/api/queues": "/api/queues",
        "/api/dead-letters": "/api/dead-letters",
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--seconds", type=int, default=10, help="wrk run per route")
    parser.add_argument(
        "--workers", type=int, default=int(os.environ.get("JOBTRAIL_API_WORKERS", "2"))
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        raise SystemExit("wrk not found: apt-get install wrk (make bench-api installs it)")
    prefix = f"jobtrail-bench-api-{uuid.uuid4().hex[:8]}:"
    couchbase_prefix = prefix.replace(":", "::")
    print(f"building the read models of {args.events:,} demo events ...", flush=True)
    events = list(Workload(WorkloadConfig(jobs=None, events=args.events), seed=11).events())
    build_s = build(events, prefix, couchbase_prefix)
    analytics = AnalyticsRedisStore(RedisSettings(prefix=prefix))
    analytics.setup()
    paths = routes(events, analytics)
    env = {"JOBTRAIL_REDIS_PREFIX": prefix, "JOBTRAIL_COUCHBASE_PREFIX": couchbase_prefix,
           "JOBTRAIL_API_TOKEN": "", "JOBTRAIL_API_WORKERS": str(args.workers)}  # fmt: skip
    process, url = serve(env)
    results: dict[str, dict[str, float]] = {}
    try:
        print(f"wrk: {CLIENTS} connections, {args.seconds} s per route, {args.workers} API workers")
        reference = wrk(url + "/openapi.json", args.seconds)
        for label, path in paths.items():
            results[label] = wrk(url + path, args.seconds)
            row = results[label]
            verdict = "ok" if row["p99_ms"] < P99_TARGET_MS else "MISSES"
            print(f"  {label:42} {row['requests_per_s']:8,.0f} req/s  p50 {row['p50_ms']:7.2f} ms"
                  f"  p99 {row['p99_ms']:7.2f} ms  {verdict}"
                  + (f"  ({row['non_2xx']:.0f} non-2xx)" if row["non_2xx"] else ""),
                  flush=True)  # fmt: skip
    finally:
        process.terminate()
        process.wait(30)
        cleanup(prefix, couchbase_prefix)
    ping = redis_ping()
    print(f"  reference: /openapi.json (HTTP stack only) {reference['requests_per_s']:,.0f} req/s,"
          f" p50 {reference['p50_ms']:.2f} ms, p99 {reference['p99_ms']:.2f} ms;"
          f" redis-benchmark PING {ping:,.0f} req/s")  # fmt: skip
    missed = [label for label, row in results.items() if row["p99_ms"] >= P99_TARGET_MS]
    print(f"p99 < {P99_TARGET_MS:.0f} ms: {len(results) - len(missed)} of {len(results)} routes"
          + (f"; missed: {', '.join(missed)}" if missed else ""))  # fmt: skip
    saved = write_result("api", {
        "events": args.events, "clients": CLIENTS, "seconds_per_route": args.seconds,
        "api_workers": args.workers, "build": build_s, "routes": results,
        "reference": {"openapi_json": reference, "redis_benchmark_ping_per_s": ping},
        "p99_target_ms": P99_TARGET_MS,
    })  # fmt: skip
    print(f"results: {saved}")


def cleanup(prefix: str, couchbase_prefix: str) -> None:
    import redis

    client = redis.Redis.from_url(RedisSettings().url)
    keys = list(client.scan_iter(match=prefix + "*", count=5000))
    for start in range(0, len(keys), 5000):
        client.unlink(*keys[start : start + 5000])
    documents = CouchbaseStore(CouchbaseSettings(prefix=couchbase_prefix))
    documents.setup()
    documents.drop(documents.current_generation())


if __name__ == "__main__":
    main()
