"""What every figure group of the bench shares: the service and its servers, apps to compare
it with, and a bounded load with the server's CPU time per request.

A figure group is a function ``(Bench) -> Section``: it measures, prints its figures as it
goes, and returns its part of BENCHMARKS.md and of benchmarks/latest.json.
"""

import asyncio
import json
import os
import re
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from checks.support import (
    APP_FACTORY,
    HEALTH,
    Servers,
    proc_stat,
    process,
    process_tree,
    production_command,
    request,
    uvicorn_command,
)


@dataclass
class Section:
    """A figure group's part of BENCHMARKS.md (under its title) and of benchmarks/latest.json."""

    title: str
    markdown: str
    data: dict[str, Any]


@dataclass
class Server:
    proc: subprocess.Popen[bytes]  # the server's main process (gunicorn's supervisor for the production server)
    port: int
    start_seconds: float  # process start to the first 200 of liveness


@dataclass
class Bench:
    """The rendered service on its PostgreSQL and Redis, and how hard and how long to load it."""

    backend: Path
    env: dict[str, str]  # .env.example's values with the servers' URLs
    servers: Servers
    work: Path  # apps written for the comparison, and every server's log
    tool: str  # "wrk", or "asyncio client" where wrk is missing
    rounds: int
    seconds: int
    warmup: int
    connections: int
    copier_copy_seconds: float | None = None
    servers_started: int = 0  # numbers the logs

    def write_app(self, module: str, source: str) -> Path:
        """SOURCE as MODULE.py in a folder of its own: what PYTHONPATH gets to serve it."""
        folder = self.work / module
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"{module}.py").write_text(source)
        return folder

    @contextmanager
    def serve(
        self, name: str, app: str = APP_FACTORY, path: Path | None = None, *, production: bool = False, **env: str
    ) -> Iterator[Server]:
        """uvicorn serving APP (a factory; the service's own unless PATH holds it), or with PRODUCTION
        the service's production server (`python -m app`), with ENV added, once liveness answers 200."""
        from devtools.servers import free_port  # the service's own tooling (bench.py puts it on sys.path)

        self.servers_started += 1
        port, log = free_port(), self.work / f"{self.servers_started:02d}-{name}.log"
        full_env = {**self.env, **env, **({"PYTHONPATH": str(path)} if path else {})}
        if production:
            command = production_command(self.backend)
            full_env.update(PORT=str(port), BIND_ADDRESS="127.0.0.1")
        else:
            # An app of the bench's own (PATH) keeps uvicorn's default access line.
            command = uvicorn_command(self.backend, port, app, access_log=path is not None)
        with process(command, self.backend, full_env, log) as proc:
            yield Server(proc, port, first_200(port, proc))

    def throughput(self, server: Server, path: str = HEALTH) -> dict[str, float]:
        """Warm-up, then load PATH for SECONDS: requests per second, latency, and the CPU µs and
        RSS of every process of the server (a supervisor's workers too)."""
        load(server.port, self.warmup, self.connections, self.tool, path)
        pids = process_tree(server.proc.pid)
        cpu_before, started = cpu_seconds(*pids), time.monotonic()
        result = load(server.port, self.seconds, self.connections, self.tool, path)
        elapsed, cpu = time.monotonic() - started, cpu_seconds(*pids) - cpu_before
        result.update(
            rps=round(result["requests"] / elapsed, 1),
            cpu_us_per_request=round(cpu / max(result["requests"], 1) * 1e6, 1),
            rss_mib=round(sum(rss_mib(pid) for pid in pids), 1),
        )
        return result


def first_200(port: int, proc: subprocess.Popen[bytes], within: float = 30) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode} before answering")
        try:
            if request(port, HEALTH, timeout=1).status == 200:
                return time.monotonic() - started
        except OSError:
            pass
        time.sleep(0.01)
    raise SystemExit(f"server did not answer within {within} s")


def cpu_seconds(*pids: int) -> float:
    """User and system CPU time of PIDS so far (of those still running)."""
    ticks = sum(int(fields[11]) + int(fields[12]) for pid in pids if (fields := proc_stat(pid)))
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return round(int(match.group(1)) / 1024, 1) if match else float("nan")


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


async def asyncio_load(
    port: int, seconds: int, connections: int, max_requests: int = 2_000_000, path: str = HEALTH
) -> dict[str, float]:
    """Keep-alive GETs of PATH from CONNECTIONS clients until SECONDS pass or MAX_REQUESTS are done."""
    deadline = time.monotonic() + seconds
    latencies: list[float] = []
    errors = 0
    raw = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()

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


def load(port: int, seconds: int, connections: int, tool: str, path: str = HEALTH) -> dict[str, float]:
    """GET PATH (liveness unless given) from CONNECTIONS keep-alive connections for SECONDS."""
    if tool == "wrk":
        return wrk(f"http://127.0.0.1:{port}{path}", seconds, connections)
    return asyncio.run(asyncio_load(port, seconds, connections, path=path))


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(int(len(ordered) * fraction), len(ordered) - 1)]


def verdict(met: bool) -> str:
    return "met" if met else "**not met**"


def table(header: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    lines += ["| " + " | ".join(str(cell) for cell in row) + " |" for row in rows]
    return "\n".join(lines)


def fastest_rounds(label: str, command: list[str], cwd: Path, env: dict[str, str], timeout: float) -> tuple[Any, Any]:
    """Runs an in-process timing script whose last line is {name: [µs per round]}; returns the
    rounds and the fastest of each, the round least disturbed by whatever else ran (as timeit advises)."""
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{label} failed:\n{done.stdout}{done.stderr}")
    results: dict[str, list[float]] = json.loads(done.stdout.strip().splitlines()[-1])
    fastest = {name: round(min(values), 1) for name, values in results.items()}
    for name, value in fastest.items():
        print(f"{label}: {name}: fastest {value} µs of {results[name]}")
    return results, fastest
