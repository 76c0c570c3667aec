"""What every figure group of the bench shares: the service and its servers, apps to compare
it with, and a bounded load with the server's CPU time per request.

A figure group is a function ``(Bench) -> Section``: it measures, prints its figures as it
goes, and returns its part of BENCHMARKS.md and of benchmarks/latest.json.
"""

import asyncio
import http.client
import json
import os
import random
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from checks.support import (
    APP_FACTORY,
    HEALTH,
    Servers,
    env_from_example,
    poetry_simple_index,
    proc_stat,
    process,
    process_tree,
    production_command,
    request,
    tail,
    uvicorn_command,
)

TEMPLATE = Path(__file__).resolve().parents[2]
# The release before this tree, rendered beside it as a comparator (no git tags in some
# clones: the release's commit). BENCH_PREVIOUS_RELEASE=VERSION=COMMIT names another.
PREVIOUS_RELEASE = tuple(
    os.environ.get("BENCH_PREVIOUS_RELEASE", "0.5.0=0bf9d4152bcb58c02179757a8e0782f50966162f").split("=", 1)
)


@dataclass(frozen=True)
class Load:
    """What one load run sends: METHOD on PATHS (taken in turn), with BODY where given, in
    which ``{n}`` becomes a number unique within the run (a unique name, a changing value)."""

    paths: tuple[str, ...] = (HEALTH,)
    method: str = "GET"
    body: str | None = None

    def nth(self, n: int) -> tuple[str, bytes | None]:
        """The N-th request's path and body."""
        path = self.paths[n % len(self.paths)]
        return path, None if self.body is None else self.body.replace("{n}", str(n)).encode()

    def raw(self, n: int) -> bytes:
        """The N-th request, as the asyncio client sends it."""
        path, body = self.nth(n)
        head = f"{self.method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        if body is None:
            return (head + "\r\n").encode()
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        return head.encode() + body

    def lua(self) -> str:
        """The same requests as a wrk script: each thread numbers its own from its own offset."""
        return WRK_SCRIPT % {
            "paths": ", ".join(json.dumps(path) for path in self.paths),
            "method": json.dumps(self.method),
            "body": json.dumps(self.body) if self.body is not None else "nil",
            "base": first_number(),
        }


def first_number() -> int:
    """Where a run's numbers start: every run writes names and values no run wrote before."""
    return random.randrange(1, 2**40) * 1000


WRK_SCRIPT = """
local paths = {%(paths)s}
local method, body = %(method)s, %(body)s
local headers = {["Content-Type"] = "application/json"}
local threads = 0

function setup(thread)
  threads = threads + 1
  thread:set("offset", %(base)d + threads * 100000000)
end

function init(args)
  counter = offset
end

function request()
  counter = counter + 1
  local path = paths[(counter %% #paths) + 1]
  if body == nil then
    return wrk.format(method, path)
  end
  return wrk.format(method, path, headers, (body:gsub("{n}", string.format("%%d", counter))))
end
"""


@dataclass
class Section:
    """A figure group's part of BENCHMARKS.md (under its title) and of benchmarks/latest.json."""

    title: str
    markdown: str
    data: dict[str, Any]


BIND_ATTEMPTS = 3


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
        self,
        name: str,
        app: str = APP_FACTORY,
        path: Path | None = None,
        *,
        production: bool = False,
        own_access_line: bool | None = None,
        **env: str,
    ) -> Iterator[Server]:
        """uvicorn serving APP (a factory; the service's own unless PATH holds it), or with PRODUCTION
        the service's production server (`python -m app`), with ENV added, once liveness answers 200.

        An app of the bench's own keeps uvicorn's access line unless OWN_ACCESS_LINE says it writes its own."""
        from devtools.servers import free_port  # the service's own tooling (bench.py puts it on sys.path)

        # A free port may be taken before the server binds it (by any connection's ephemeral
        # port): the server then exits at start, and starts again on another.
        for attempt in range(1, BIND_ATTEMPTS + 1):
            self.servers_started += 1
            port, log = free_port(), self.work / f"{self.servers_started:02d}-{name}.log"
            full_env = {**self.env, **env, **({"PYTHONPATH": str(path)} if path else {})}
            if production:
                command = production_command(self.backend)
                full_env.update(PORT=str(port), BIND_ADDRESS="127.0.0.1")
            else:
                own = path is None if own_access_line is None else own_access_line
                command = uvicorn_command(self.backend, port, app, access_log=not own)
            with process(command, self.backend, full_env, log) as proc:
                try:
                    started = first_200(port, proc, log)
                except SystemExit:
                    if attempt < BIND_ATTEMPTS and "address already in use" in tail(log):
                        continue
                    raise
                yield Server(proc, port, started)
                return

    def throughput(self, server: Server, path: str | Load = HEALTH) -> dict[str, float]:
        """Warm-up, then load PATH (GETs, or a Load) for SECONDS: requests per second, latency,
        and the CPU µs and RSS of every process of the server (a supervisor's workers too)."""
        what = path if isinstance(path, Load) else Load((path,))
        load(server.port, self.warmup, self.connections, self.tool, what)
        pids = process_tree(server.proc.pid)
        cpu_before, started = cpu_seconds(*pids), time.monotonic()
        result = load(server.port, self.seconds, self.connections, self.tool, what)
        elapsed, cpu = time.monotonic() - started, cpu_seconds(*pids) - cpu_before
        result.update(
            rps=round(result["requests"] / elapsed, 1),
            cpu_us_per_request=round(cpu / max(result["requests"], 1) * 1e6, 1),
            rss_mib=round(sum(rss_mib(pid) for pid in pids), 1),
        )
        return result


def first_200(port: int, proc: subprocess.Popen[bytes], log: Path, within: float = 30) -> float:
    started = time.monotonic()
    while time.monotonic() - started < within:
        if proc.poll() is not None:
            raise SystemExit(f"server exited with {proc.returncode} before answering; {log} ends:\n{tail(log)}")
        try:
            if request(port, HEALTH, timeout=1).status == 200:
                return time.monotonic() - started
        # Before the server listens, a connection from the same ephemeral port connects to
        # itself (TCP's simultaneous open) and reads its own request back.
        except (OSError, http.client.HTTPException):
            pass
        time.sleep(0.01)
    raise SystemExit(f"server did not answer within {within} s; {log} ends:\n{tail(log)}")


def cpu_seconds(*pids: int) -> float:
    """User and system CPU time of PIDS so far (of those still running)."""
    ticks = sum(int(fields[11]) + int(fields[12]) for pid in pids if (fields := proc_stat(pid)))
    return ticks / os.sysconf("SC_CLK_TCK")


def rss_mib(pid: int) -> float:
    match = re.search(r"VmRSS:\s+(\d+) kB", Path(f"/proc/{pid}/status").read_text())
    return round(int(match.group(1)) / 1024, 1) if match else float("nan")


def wrk(port: int, seconds: int, connections: int, what: Load) -> dict[str, float]:
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as script:
        script.write(what.lua())
        script.flush()
        command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name]
        out = subprocess.run(
            [*command, f"http://127.0.0.1:{port}"], capture_output=True, text=True, timeout=seconds + 30, check=True
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
    port: int, seconds: int, connections: int, what: Load, max_requests: int = 2_000_000
) -> dict[str, float]:
    """Keep-alive requests (WHAT) from CONNECTIONS clients until SECONDS pass or MAX_REQUESTS are done."""
    deadline, base = time.monotonic() + seconds, first_number()
    latencies: list[float] = []
    errors = 0

    async def client(number: int) -> None:
        nonlocal errors
        reader, writer = await asyncio.open_connection("127.0.0.1", port)
        n = base + number * 100_000_000
        try:
            while time.monotonic() < deadline and len(latencies) < max_requests:
                n += 1
                started = time.perf_counter()
                writer.write(what.raw(n))
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(re.search(rb"content-length: (\d+)", head, re.IGNORECASE).group(1))  # type: ignore[union-attr]
                await reader.readexactly(length)
                latencies.append(time.perf_counter() - started)
                if not head.startswith(b"HTTP/1.1 2"):
                    errors += 1
        finally:
            writer.close()

    await asyncio.gather(*(client(number) for number in range(1, connections + 1)))
    latencies.sort()
    return {
        "requests": len(latencies),
        "errors": errors,
        "p50_ms": latencies[len(latencies) // 2] * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99)] * 1000,
    }


def load(port: int, seconds: int, connections: int, tool: str, what: Load = Load()) -> dict[str, float]:
    """WHAT (GETs of liveness unless given) from CONNECTIONS keep-alive connections for SECONDS."""
    if tool == "wrk":
        return wrk(port, seconds, connections, what)
    return asyncio.run(asyncio_load(port, seconds, connections, what))


def rendered_release(bench: Bench, ref: str, name: str) -> tuple[Bench | None, str]:
    """The template at REF rendered with the default answers into the bench's NAME folder and
    installed, as a Bench on the same servers, and what it is; None (and why) where it cannot be."""
    copier = shutil.which("copier")
    if copier is None:
        return None, "not measured: copier is not on PATH"
    commit = subprocess.run(
        ["git", "-C", str(TEMPLATE), "rev-parse", "--short", ref], capture_output=True, text=True, check=False
    )
    if commit.returncode != 0:
        return None, f"not measured: no {ref} in the template repository"
    template, service = bench.work / f"{name}-template", bench.work / f"{name}-service"
    template.mkdir()
    archive = subprocess.run(
        ["git", "-C", str(TEMPLATE), "archive", "--format=tar", ref], capture_output=True, check=True
    )
    subprocess.run(["tar", "-x", "-C", str(template)], input=archive.stdout, check=True)
    subprocess.run([copier, "copy", "--defaults", "--quiet", str(template), str(service)], check=True)
    poetry_simple_index(service / "backend")  # as the noxfile's install() does
    installed = subprocess.run(["make", "install"], cwd=service, capture_output=True, text=True, check=False)
    if installed.returncode != 0:
        return None, f"not measured: make install failed: {installed.stdout[-300:]}{installed.stderr[-300:]}"
    backend = service / "backend"
    # Its own settings' defaults, on the bench's servers.
    env = {**env_from_example(backend), **{k: bench.env[k] for k in ("DATABASE_URL", "REDIS_URL")}}
    return replace(bench, backend=backend, env=env), commit.stdout.strip()


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
