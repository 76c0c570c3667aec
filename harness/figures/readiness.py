"""Readiness: what checking PostgreSQL and Redis adds to a probe, and how fast a probe says one is down."""

import http.client
import socket
import statistics
import time
from typing import Any

from checks.support import HEALTH, READINESS, request

from figures.common import Bench, Section, percentile, table, verdict

SAMPLES = 500  # of each probe, alternating on one keep-alive connection
WARMUP = 50
# What a readiness probe may add to liveness's p50, with the same client (ms).
EXTRA_P50_MS = 1.5


def same_client(port: int) -> dict[str, list[float]]:
    """Liveness and readiness in turn on one keep-alive connection: each request's latency in ms."""
    latencies: dict[str, list[float]] = {HEALTH: [], READINESS: []}
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for number in range(WARMUP + SAMPLES):
            for path, samples in latencies.items():
                started = time.perf_counter()
                conn.request("GET", path)
                response = conn.getresponse()
                response.read()
                if response.status != 200:
                    raise SystemExit(f"GET {path}: {response.status}, not 200")
                if number >= WARMUP:
                    samples.append((time.perf_counter() - started) * 1000)
    finally:
        conn.close()
    return latencies


def timed_readiness(port: int) -> tuple[float, int]:
    started = time.perf_counter()
    status = request(port, READINESS, timeout=10).status
    return round(time.perf_counter() - started, 4), status


def figures(bench: Bench) -> Section:
    data: dict[str, Any] = {}
    with bench.serve("readiness") as server:
        latencies = same_client(server.port)
        for path, key in ((HEALTH, "liveness"), (READINESS, "readiness")):
            data[f"{key}_p50_ms"] = round(statistics.median(latencies[path]), 3)
            data[f"{key}_p99_ms"] = round(percentile(latencies[path], 0.99), 3)
        data["extra_p50_ms"] = round(data["readiness_p50_ms"] - data["liveness_p50_ms"], 3)
        for key, dependency in (("redis", bench.servers.redis), ("postgres", bench.servers.postgres)):
            dependency.stop()
            data[f"{key}_stopped_s"], data[f"{key}_stopped_status"] = timed_readiness(server.port)
            dependency.start()
    # A database that accepts connections and never answers: READINESS_TIMEOUT (2 s by default) bounds it.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        url = f"postgresql://postgres@127.0.0.1:{silent.getsockname()[1]}/postgres"
        with bench.serve("readiness-hang", DATABASE_URL=url) as server:
            data["database_unresponsive_s"], data["database_unresponsive_status"] = timed_readiness(server.port)
    for key, value in data.items():
        print(f"readiness: {key} {value}")

    rows = [
        [
            f"readiness p50 above liveness p50, same client ({SAMPLES} of each, alternating, one connection)",
            f"{data['extra_p50_ms']:+.3f} ms ({data['readiness_p50_ms']} against {data['liveness_p50_ms']})",
            f"≤ {EXTRA_P50_MS} ms",
            verdict(data["extra_p50_ms"] <= EXTRA_P50_MS),
        ],
        ["readiness p99 / liveness p99", f"{data['readiness_p99_ms']} / {data['liveness_p99_ms']} ms", "", ""],
    ]
    for key, label, bound in (
        ("redis_stopped", "answer with Redis stopped", 0.5),
        ("postgres_stopped", "answer with PostgreSQL stopped", 0.5),
        ("database_unresponsive", "answer, database accepts but never answers", 2.0),
    ):
        answered, status = data[f"{key}_s"], data[f"{key}_status"]
        target = f"≤ {bound} s, 503" + (" (READINESS_TIMEOUT, 2 s)" if bound == 2.0 else "")
        rows.append([label, f"{answered} s (HTTP {status})", target, verdict(answered <= bound and status == 503)])
    markdown = "The skeleton's probes, liveness `GET /api/v1/health` and readiness `GET /api/v1/health/ready`.\n\n"
    markdown += table(["figure", "value", "target", "verdict"], rows)
    return Section("Readiness", markdown, data)
