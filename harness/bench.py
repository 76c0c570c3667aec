"""Benchmark of a rendered, installed service against bare FastAPI, on real servers.

Runs with the service's own Python (for ``devtools.servers``):

    backend/.venv/bin/python harness/bench.py SERVICE --json out.json --markdown out.md

Load comes from wrk when it is installed, otherwise from a bounded asyncio client;
the output says which. Every run is bounded in time (and the asyncio client in
requests too). Figures are reported, never asserted: timings flake on shared machines.
"""

import argparse
import asyncio
import json
import os
import platform
import re
import shutil
import socket
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path
from typing import Any

from check_service import env_from_example, process, request

BARE_APP = '''"""Bare FastAPI: the same route, no middleware, uvicorn's default (text) access log."""

from fastapi import FastAPI

app = FastAPI()


@app.get("/api/v1/health")
async def health() -> dict[str, str]:
    return {"status": "ok"}
'''
PATH = "/api/v1/health"


def servers_free_port() -> int:
    from devtools.servers import free_port  # the service's own tooling; main() puts it on sys.path

    return free_port()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return round(int(match.group(1)) / 1024, 1) if match else float("nan")


def first_200(base: str, proc: subprocess.Popen[bytes], within: float = 30) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode} before answering")
        try:
            if request(base + PATH, timeout=1).status == 200:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.01)
    raise SystemExit(f"server did not answer within {within} s")


def wrk(url: str, seconds: int, connections: int) -> dict[str, float]:
    out = subprocess.run(
        ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout

    def millis(label: str) -> float:
        match = re.search(rf"^\s+{label}\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
        if not match:
            return float("nan")
        return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)]

    requests = int(re.search(r"(\d+) requests in", out).group(1))  # type: ignore[union-attr]
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    errors += int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    return {"requests": requests, "errors": errors, "p50_ms": millis("50%"), "p99_ms": millis("99%")}


async def asyncio_load(port: int, seconds: int, connections: int, max_requests: int = 2_000_000) -> dict[str, float]:
    """Keep-alive GETs from CONNECTIONS clients until SECONDS pass or MAX_REQUESTS are done."""
    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    errors = 0
    raw = f"GET {PATH} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()

    async def client() -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        try:
            while time.monotonic() < deadline and len(latencies) < max_requests:
                started = time.perf_counter()
                writer.write(raw)
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"content-length: (\d+)", head, re.IGNORECASE).group(1))  # type: ignore[union-attr]
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                if not head.startswith(b"HTTP/1.1 200"):
                    errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
    }


def load(port: int, seconds: int, connections: int, tool: str) -> dict[str, float]:
    url = f"http://127.0.0.1:{port}{PATH}"
    return wrk(url, seconds, connections) if tool == "wrk" else asyncio.run(asyncio_load(port, seconds, connections))


def measure(
    name: str, command: list[str], cwd: Path, env: dict[str, str], log: Path, args: argparse.Namespace, tool: str
) -> dict[str, Any]:
    port = servers_free_port()
    with process([*command, "--port", str(port)], cwd, env, log) as proc:
        boot = first_200(f"http://127.0.0.1:{port}", proc)
        rss_boot = rss_mib(proc.pid)
        load(port, args.warmup, args.connections, tool)
        cpu_before, started = cpu_seconds(proc.pid), time.monotonic()
        result = load(port, args.seconds, args.connections, tool)
        elapsed, cpu = time.monotonic() - started, cpu_seconds(proc.pid) - cpu_before
        result.update(
            name=name,
            rps=round(result["requests"] / elapsed, 1),
            cpu_us_per_request=round(cpu / max(result["requests"], 1) * 1e6, 1),
            start_to_first_200_s=round(boot, 3),
            rss_after_boot_mib=rss_boot,
            rss_after_load_mib=rss_mib(proc.pid),
        )
        return result


def readiness_figures(
    service_cmd: list[str], backend: Path, env: dict[str, str], log: Path, servers: dict[str, Any]
) -> dict[str, Any]:
    figures: dict[str, Any] = {}
    port = servers_free_port()
    base = f"http://127.0.0.1:{port}"
    with process([*service_cmd, "--port", str(port)], backend, env, log) as proc:
        first_200(base, proc)
        samples = []
        for _ in range(300):
            started = time.perf_counter()
            request(base + "/api/v1/health/ready")
            samples.append((time.perf_counter() - started) * 1000)
        samples.sort()
        figures["readiness_p50_ms"] = round(samples[len(samples) // 2], 3)
        figures["readiness_p99_ms"] = round(samples[int(len(samples) * 0.99)], 3)
        for key, server_obj in servers.items():
            server_obj.stop()
            started = time.perf_counter()
            status = request(base + "/api/v1/health/ready").status
            figures[f"readiness_503_{key}_stopped_s"] = round(time.perf_counter() - started, 4)
            figures[f"readiness_status_{key}_stopped"] = status
            server_obj.start()
    # A database that accepts connections and never answers: the readiness timeout bounds it.
    with socket.socket() as silent:
        silent.bind(("127.0.0.1", 0))
        silent.listen(16)
        hang_env = {**env, "DATABASE_URL": f"postgresql://postgres@127.0.0.1:{silent.getsockname()[1]}/postgres"}
        port = servers_free_port()
        with process([*service_cmd, "--port", str(port)], backend, hang_env, log) as proc:
            first_200(f"http://127.0.0.1:{port}", proc)
            started = time.perf_counter()
            status = request(f"http://127.0.0.1:{port}/api/v1/health/ready").status
            figures["readiness_503_database_unresponsive_s"] = round(time.perf_counter() - started, 3)
            figures["readiness_status_database_unresponsive"] = status
    return figures


def versions() -> dict[str, str]:
    names = ["fastapi", "starlette", "uvicorn", "pydantic", "python-json-logger", "orjson", "uvloop", "httptools"]
    found = {}
    for name in names:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return {"python": platform.python_version(), **found}


# Figures from A/B runs made while tuning (2026-11-26, this machine, wrk, CPU µs per
# request, each pair measured side by side); `nox -s bench` does not re-measure them.
COST_NOTES = """## Where the cost is

Development A/B runs (2026-11-26, same machine and load, server CPU µs per request,
each pair side by side in one run). They explain the ratio above; `nox -s bench` does
not re-measure them.

| change | before | after |
| --- | --- | --- |
| bare FastAPI: uvicorn's default access line off (what the skeleton's JSON line competes with) | 94.4 | 67.3 |
| bare FastAPI: route on the app / one `include_router` level / two levels | 65.1 | 75.1 / 82.2 |
| skeleton: v1 routers nested two levels (up to 0.3.0) / one level (`RouterGroup`, 0.4.0) | 110.2 | 104.3 |
| skeleton: garbage collector's first threshold 700 / 10,000 while serving | 104.5 | 96.9 |
| skeleton: docs routes before / after the API's | 98.0 | 94.6 |
| a pure-ASGI middleware without / with a context variable set per request (uvloop) | 65.5 | 69.8 |

In process (no server), FastAPI's native telemetry costs 4.3 µs a request when no
OpenTelemetry provider is configured (31.0 against 26.7 µs with it off), and the access
record built by `AccessRecord` instead of `Logger.info` saves about 5 µs of 18. What the
skeleton still pays beyond bare FastAPI: the request-ID context variable, one router
level (each v1 routes module is included in the app directly, by the `RouterGroup` of
`router.py`), and its middleware. What it saves: uvicorn's text access line (its JSON
line is cheaper), the telemetry check, and most of the collector's work.
"""


def markdown(results: dict[str, Any]) -> str:
    rows = [
        "| run | skeleton req/s | bare req/s | skeleton p50 / p99 ms | bare p50 / p99 ms | "
        "skeleton CPU µs/req | bare CPU µs/req | ratio |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for i, pair in enumerate(results["pairs"], 1):
        a, b = pair["skeleton"], pair["bare"]
        rows.append(
            f"| {i} | {a['rps']:.0f} | {b['rps']:.0f} | {a['p50_ms']:.2f} / {a['p99_ms']:.2f} | "
            f"{b['p50_ms']:.2f} / {b['p99_ms']:.2f} | {a['cpu_us_per_request']} | {b['cpu_us_per_request']} | "
            f"{pair['ratio']:.2f} |"
        )
    other = results["other"]
    lines = [
        "# Benchmark",
        "",
        f"Measured {results['date']} on {results['machine']['cores']} cores ({results['machine']['platform']}), "
        f"load from {results['load_tool']}, {results['settings']['connections']} connections, "
        f"{results['settings']['seconds']} s a run after {results['settings']['warmup']} s of warm-up, "
        "runs interleaved skeleton / bare. Skeleton: the rendered service as `make api` starts it, without "
        "`--reload` (CORS, request ID, JSON access line for every request). Bare: FastAPI serving the same "
        "route with no middleware, uvicorn's default text access log. Both log to a file.",
        "",
        f"**Median ratio skeleton / bare (requests per second): {results['median_ratio']:.2f}** "
        "(target 1.0, never below 0.9).",
        "",
        *rows,
        "",
        "| other figure | value | target |",
        "| --- | --- | --- |",
        f"| readiness p50 / p99, both dependencies up | {other['readiness_p50_ms']} / {other['readiness_p99_ms']} ms"
        " | p50 ≤ 2 ms |",
        f"| readiness answer with Redis stopped | {other['readiness_503_redis_stopped_s']} s "
        f"(HTTP {other['readiness_status_redis_stopped']}) | ≤ 0.5 s |",
        f"| readiness answer with PostgreSQL stopped | {other['readiness_503_postgres_stopped_s']} s "
        f"(HTTP {other['readiness_status_postgres_stopped']}) | ≤ 0.5 s |",
        f"| readiness answer, database accepts but never answers | "
        f"{other['readiness_503_database_unresponsive_s']} s "
        f"(HTTP {other['readiness_status_database_unresponsive']}) | ≤ READINESS_TIMEOUT (2 s) |",
        f"| process start to first 200 (median of the skeleton runs) | {other['start_to_first_200_s']} s | ≤ 1.0 s |",
        f"| `copier copy --defaults` wall time (median of 3) | {other.get('copier_copy_s', 'n/a')} s | ≤ 1.0 s |",
        f"| RSS after boot / after load (skeleton) | {other['rss_after_boot_mib']} / "
        f"{other['rss_after_load_mib']} MiB | |",
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()) + ".",
        "",
        "Reproduce with `nox -s bench` (options after `--`: `--pairs`, `--seconds`, `--warmup`, `--connections`). "
        "CPU µs per request is the steadier figure on a shared machine; requests per second and latency "
        "move with whatever else runs.",
        "",
        "Start-up figures are with bytecode compiled at install, as pip does and as the service's "
        "`make install` does (`poetry install --compile`, uv's `compile-bytecode`). This machine sets "
        "`PYTHONDONTWRITEBYTECODE=1`, where an install without compiled bytecode makes Python compile "
        "every module it imports on every start: about 1.5 s to the first 200 and 1.1 s for `copier copy`.",
        "",
        COST_NOTES,
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service", type=Path)
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--markdown", type=Path, required=True)
    parser.add_argument("--pairs", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--copier-copy-seconds", type=float)
    args = parser.parse_args()

    service = args.service.resolve()
    backend = service / "backend"
    sys.path.insert(0, str(backend))
    from devtools.servers import running_servers

    tool = "wrk" if shutil.which("wrk") else "asyncio client"
    print(f"load: {tool}")
    bare_dir = service / "bench-bare"
    bare_dir.mkdir(exist_ok=True)
    (bare_dir / "bare_app.py").write_text(BARE_APP)
    uvicorn = str(backend / ".venv" / "bin" / "uvicorn")
    with running_servers() as (postgres, redis):
        env = env_from_example(backend)
        env.update(DATABASE_URL=postgres.url, REDIS_URL=redis.url)
        skeleton_cmd = [uvicorn, "--factory", "app.main:create_app", "--host", "127.0.0.1"]
        bare_cmd = [uvicorn, "bare_app:app", "--host", "127.0.0.1"]
        bare_env = {**env, "PYTHONPATH": str(bare_dir)}
        pairs = []
        for i in range(args.pairs):
            a = measure("skeleton", skeleton_cmd, backend, env, service / "bench-skeleton.log", args, tool)
            b = measure("bare", bare_cmd, backend, bare_env, service / "bench-bare.log", args, tool)
            ratio = a["rps"] / b["rps"]
            pairs.append({"skeleton": a, "bare": b, "ratio": round(ratio, 3)})
            print(
                f"pair {i + 1}: skeleton {a['rps']:.0f} req/s, p50 {a['p50_ms']:.2f} ms, p99 {a['p99_ms']:.2f} ms, "
                f"{a['cpu_us_per_request']} CPU µs/req | bare {b['rps']:.0f} req/s, p50 {b['p50_ms']:.2f} ms, "
                f"p99 {b['p99_ms']:.2f} ms, {b['cpu_us_per_request']} CPU µs/req | ratio {ratio:.2f}"
            )
        servers = {"redis": redis, "postgres": postgres}
        other = readiness_figures(skeleton_cmd, backend, env, service / "bench-readiness.log", servers)
    skeleton_runs = [p["skeleton"] for p in pairs]
    other.update(
        start_to_first_200_s=statistics.median(r["start_to_first_200_s"] for r in skeleton_runs),
        rss_after_boot_mib=statistics.median(r["rss_after_boot_mib"] for r in skeleton_runs),
        rss_after_load_mib=statistics.median(r["rss_after_load_mib"] for r in skeleton_runs),
    )
    if args.copier_copy_seconds is not None:
        other["copier_copy_s"] = round(args.copier_copy_seconds, 3)
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform()},
        "load_tool": tool,
        "settings": {
            "pairs": args.pairs,
            "seconds": args.seconds,
            "warmup": args.warmup,
            "connections": args.connections,
        },
        "pairs": pairs,
        "median_ratio": round(statistics.median(p["ratio"] for p in pairs), 3),
        "other": other,
        "versions": versions(),
    }
    for key, value in other.items():
        print(f"{key}: {value}")
    print(f"median ratio skeleton / bare: {results['median_ratio']:.2f}")
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    args.markdown.write_text(markdown(results))
    return 0


if __name__ == "__main__":
    sys.exit(main())
