"""Figures for the production server (`make serve`, i.e. `python -m app`) of a rendered, installed service.

Runs with the service's own Python (for ``devtools.servers``):

    backend/.venv/bin/python harness/bench_serve.py SERVICE [--markdown BENCHMARKS.md] [--json out.json]

Each round measures, one after the other on real servers: ``python -m app`` with one
worker; uvicorn as `make api` runs it, without reload; ``python -m app`` with two workers.
The ratios are taken within each round and their medians set against the goals (one
worker >= 1.3x uvicorn; two workers >= 1.5x one). The load generator runs on the same
cores as the server. ``--candidates`` adds granian, the server `make serve` was chosen
against (when installed); ``--pinned`` adds the one-worker servers again with the server on
one core and the load on the other; ``--cpu-limit`` adds them under a 1-CPU CFS quota (a
cgroup, as a Kubernetes CPU limit of 1 sets it; needs root).

Load comes from wrk when it is installed, else a bounded asyncio client. Every run is
bounded in time. Figures are printed and written, never asserted.
"""

import argparse
import asyncio
import importlib.util
import json
import os
import platform
import re
import shutil
import signal
import statistics
import subprocess
import sys
import time
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

PATH = "/api/v1/health"
HEADING = "## Production server"
GOAL_OVER_UVICORN, GOAL_TWO_OVER_ONE = 1.3, 1.5

# Why this server, in words; the figures above it are the run's own. (Written into BENCHMARKS.md.)
CHOICE = """\
**The choice.** `python -m app` runs gunicorn with uvicorn workers (the uvicorn-worker
package), the conventional choice, because granian, measured against it side by side, was
not the faster server where the service is meant to run. With no CPU limit, on two cores
shared with the load generator, granian answered about as many requests per second as
uvicorn, its Rust threads spending more CPU per request; held to one core ("pinned") it
answered more; under a 1-CPU limit (the kernel's CFS quota, which a Kubernetes
`limits.cpu: 1` sets) it ran out of its quota in most periods and answered fewer. The
1.35x that made granian worth measuring did not show here. gunicorn with uvicorn-worker
meets every requirement of `make serve`, which `harness/checks/test_serve.py` checks: a
supervisor that respawns a worker that dies, with one worker too (uvicorn's own
`--workers` supervises only from two), `graceful_timeout` bounding SIGTERM, uvicorn's
trusted-proxy handling fed from `forwarded_allow_ips`, and `logconfig_dict` so its own
lines are JSON. Its workers are uvicorn, so against `make api`'s uvicorn it runs at the
same speed and the 1.3x goal is not met; more throughput comes from more workers (the
second figure) and replicas.
"""


def env_from_example(backend: Path) -> dict[str, str]:
    """The environment a user gives the service: .env.example's values, nothing from this shell."""
    drop = ("DATABASE_URL", "REDIS_URL", "VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "UV_PYTHON", "WEB_CONCURRENCY")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    for line in (backend / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name] = value
    return env


@contextmanager
def running(
    command: list[str], cwd: Path, env: dict[str, str], log: Path, preexec: Callable[[], None] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(
            command,
            cwd=cwd,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            preexec_fn=preexec,  # joins the 1-CPU cgroup; nothing else runs threads here
        )
    try:
        yield proc
    finally:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def wait_serving(url: str, proc: subprocess.Popen[bytes], log: Path, within: float = 60) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise SystemExit(
                f"server exited with {proc.returncode} before answering; {log}:\n{log.read_text()[-3000:]}"
            )
        with suppress(OSError), urllib.request.urlopen(url, timeout=1) as response:
            if response.status == 200:
                return
        time.sleep(0.05)
    raise SystemExit(f"server did not answer within {within} s; see {log}")


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError, IndexError):
            ppid = int(stat.read_text().rsplit(")", 1)[1].split()[1])
            children.setdefault(ppid, []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_seconds(pids: list[int]) -> float:
    ticks = 0
    for pid in pids:
        with suppress(OSError, IndexError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            ticks += int(fields[11]) + int(fields[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def wrk(url: str, seconds: int, connections: int, prefix: list[str]) -> dict[str, float]:
    out = subprocess.run(
        [*prefix, "wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--latency", url],
        capture_output=True,
        text=True,
        timeout=seconds + 30,
        check=True,
    ).stdout
    done = re.search(r"(\d+) requests in", out)
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    errors += int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    p50 = re.search(r"^\s+50%\s+([\d.]+)(us|ms|s)\s*$", out, re.MULTILINE)
    p50_ms = float(p50.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[p50.group(2)] if p50 else float("nan")
    return {"requests": int(done.group(1)) if done else 0, "errors": errors, "p50_ms": p50_ms}


async def asyncio_load(port: int, seconds: int, connections: int, max_requests: int = 1_000_000) -> dict[str, float]:
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
                length = re.search(rb"content-length: (\d+)", head, re.IGNORECASE)
                await reader.readexactly(int(length.group(1)) if length else 0)
                latencies.append(time.perf_counter() - started)
                errors += not head.startswith(b"HTTP/1.1 200")
        finally:
            writer.close()

    await asyncio.gather(*(client() for _ in range(connections)))
    latencies.sort()
    return {"requests": len(latencies), "errors": errors, "p50_ms": latencies[len(latencies) // 2] * 1000}


@dataclass
class Run:
    """One server as measured: its command (PORT is given in the environment too), extra environment, placement."""

    name: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)
    placement: str = ""  # "pinned": the server on core 0, the load on the others; "limited": a 1-CPU quota


def runs(venv: Path, args: argparse.Namespace) -> list[Run]:
    python, uvicorn = str(venv / "python"), str(venv / "uvicorn")
    api = [uvicorn, "--factory", "app.main:create_app", "--host", "127.0.0.1", "--port", "{port}"]
    plan = [
        Run("serve, 1 worker", [python, "-m", "app"], {"WEB_CONCURRENCY": "1"}),
        Run("uvicorn (make api)", api),
        Run("serve, 2 workers", [python, "-m", "app"], {"WEB_CONCURRENCY": "2"}),
    ]
    if args.candidates:
        granian = [str(venv / "granian"), "--interface", "asgi", "--factory", "app.main:create_app", "--workers", "1"]
        plan.append(Run("granian", [*granian, "--host", "127.0.0.1", "--port", "{port}"]))
    one_worker = [run for run in plan if run.name != "serve, 2 workers"]
    if args.pinned:
        plan += [Run(f"{r.name}, pinned", r.command, r.env, placement="pinned") for r in one_worker]
    if args.cpu_limit:
        plan += [Run(f"{r.name}, 1-CPU limit", r.command, r.env, placement="limited") for r in one_worker]
    return plan


class CpuLimit:
    """A cgroup (v1 cpu controller, or v2) that holds what runs in it to one CPU's worth of time.

    What a Kubernetes CPU limit of 1 does: the kernel's CFS quota, not a core of its own. Needs
    root and a writable cgroup file system; ``path`` is None where there is none.
    """

    NAME = "bench-serve-cpu-limit"

    def __init__(self) -> None:
        self.path: Path | None = None
        v1, v2 = Path("/sys/fs/cgroup/cpu"), Path("/sys/fs/cgroup")
        with suppress(OSError):
            if (v1 / "cpu.cfs_quota_us").exists():
                self.path = v1 / self.NAME
                self.path.mkdir(exist_ok=True)
                (self.path / "cpu.cfs_period_us").write_text("100000")
                (self.path / "cpu.cfs_quota_us").write_text("100000")
            elif "cpu" in (v2 / "cgroup.controllers").read_text().split():
                (v2 / "cgroup.subtree_control").write_text("+cpu")
                self.path = v2 / self.NAME
                self.path.mkdir(exist_ok=True)
                (self.path / "cpu.max").write_text("100000 100000")

    def enter(self) -> None:
        """In the child before it runs the server (Popen's preexec_fn): join the cgroup."""
        assert self.path is not None
        (self.path / "cgroup.procs").write_text(str(os.getpid()))

    def throttled(self) -> int:
        """Periods so far in which the cgroup used up its quota and had to wait."""
        assert self.path is not None
        stat = dict(line.split() for line in (self.path / "cpu.stat").read_text().splitlines())
        return int(stat["nr_throttled"])

    def remove(self) -> None:
        if self.path is not None:
            with suppress(OSError):
                self.path.rmdir()


def measure(run: Run, base_env: dict[str, str], backend: Path, args: argparse.Namespace) -> dict[str, Any]:
    from devtools.servers import free_port  # the service's own tooling; main() puts it on sys.path

    port = free_port()
    command = [part.replace("{port}", str(port)) for part in run.command]
    server_prefix, load_prefix, preexec = [], [], None
    if run.placement == "pinned":
        cores = os.cpu_count() or 2
        server_prefix, load_prefix = ["taskset", "-c", "0"], ["taskset", "-c", "1" if cores == 2 else f"1-{cores - 1}"]
    elif run.placement == "limited":
        preexec = args.cpu_limit.enter
    log = args.logs / (re.sub(r"\W+", "-", run.name).strip("-") + ".log")
    env = {**base_env, **run.env, "PORT": str(port), "BIND_ADDRESS": "127.0.0.1"}
    with running([*server_prefix, *command], backend, env, log, preexec) as proc:
        wait_serving(f"http://127.0.0.1:{port}{PATH}", proc, log)
        load(port, args.warmup, args, load_prefix)
        pids = process_tree(proc.pid)
        throttled = args.cpu_limit.throttled() if preexec else 0
        cpu_before, started = cpu_seconds(pids), time.monotonic()
        result = load(port, args.seconds, args, load_prefix)
        elapsed, cpu = time.monotonic() - started, cpu_seconds(pids) - cpu_before
        throttled = args.cpu_limit.throttled() - throttled if preexec else 0
    result.update(
        rps=round(result["requests"] / elapsed, 1),
        cpu_us_per_request=round(cpu / max(result["requests"], 1) * 1e6, 1),
        throttled_periods=throttled,
        access_lines=log.read_text(errors="replace").count('"app.access"'),
    )
    print(
        f"  {run.name:38s} {result['rps']:8.0f} req/s  p50 {result['p50_ms']:6.2f} ms  "
        f"{result['cpu_us_per_request']:6.1f} CPU µs/req  errors {result['errors']}  "
        f"access lines {result['access_lines']}" + (f"  throttled periods {throttled}" if preexec else ""),
        flush=True,
    )
    return result


def load(port: int, seconds: int, args: argparse.Namespace, prefix: list[str]) -> dict[str, float]:
    if args.tool == "wrk":
        return wrk(f"http://127.0.0.1:{port}{PATH}", seconds, args.connections, prefix)
    return asyncio.run(asyncio_load(port, seconds, args.connections))


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in ("fastapi", "granian", "uvicorn", "uvloop", "httptools", "gunicorn", "uvicorn-worker"):
        with suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def markdown(results: dict[str, Any]) -> str:
    names = list(results["rounds"][0]["runs"])
    over_uvicorn, two_over_one = results["median_serve_over_uvicorn"], results["median_two_over_one"]
    settings = results["settings"]
    table = [
        "| server | " + " | ".join(f"round {i}" for i in range(1, len(results["rounds"]) + 1)) + " | median |",
        "| --- |" + " --- |" * (len(results["rounds"]) + 1),
    ]
    for name in names:
        cells = [f"{r['runs'][name]['rps']:.0f} ({r['runs'][name]['cpu_us_per_request']})" for r in results["rounds"]]
        rps = statistics.median(r["runs"][name]["rps"] for r in results["rounds"])
        cpu = statistics.median(r["runs"][name]["cpu_us_per_request"] for r in results["rounds"])
        table.append(f"| {name} | " + " | ".join(cells) + f" | {rps:.0f} ({cpu:.1f}) |")
    lines = [
        HEADING,
        "",
        f"Measured {results['date']} by `harness/bench_serve.py` (`nox -s bench_serve`) on "
        f"{results['machine']['cores']} cores ({results['machine']['platform']}), a machine shared with other "
        "jobs: absolute figures move with their load, so the ratios are taken within each round. "
        f"Load from {results['load_tool']} on the same cores as the server, {settings['connections']} "
        f"connections, {settings['seconds']} s a run after {settings['warmup']} s of warm-up, `GET {PATH}`, the "
        "service's JSON access line written for every request (to a file). `make serve` is `python -m app`; "
        "uvicorn runs as `make api` does, without `--reload`. CPU µs per request counts every process of the "
        "server (supervisor and workers).",
        "",
        "| figure (median of the rounds) | value | goal |",
        "| --- | --- | --- |",
        f"| `make serve`, 1 worker / uvicorn as `make api` runs it (requests per second) | **{over_uvicorn:.2f}** "
        f"| ≥ {GOAL_OVER_UVICORN} ({'met' if over_uvicorn >= GOAL_OVER_UVICORN else 'not met'}) |",
        f"| `make serve`, 2 workers / 1 worker (requests per second) | **{two_over_one:.2f}** "
        f"| ≥ {GOAL_TWO_OVER_ONE} ({'met' if two_over_one >= GOAL_TWO_OVER_ONE else 'not met'}) |",
        "",
        "Requests per second (CPU µs per request), rounds interleaved:",
        "",
        *table,
        "",
    ]
    if "granian" in names:
        lines += [
            "granian: its own command line, one worker, without the trusted-proxy wrapper "
            "(`granian.utils.proxies`) that `make serve` would need and that costs it a few µs a request more.",
            "",
        ]
    if any("pinned" in name for name in names):
        lines += ["Pinned: the server held to core 0 (`taskset`), the load on the other core.", ""]
    if any("limit" in name for name in names):
        throttled = {
            name: statistics.median(r["runs"][name]["throttled_periods"] for r in results["rounds"])
            for name in names
            if "limit" in name
        }
        periods = settings["seconds"] * 10  # 100 ms periods
        lines += [
            "1-CPU limit: the server in a cgroup whose CFS quota is one CPU (100 ms of CPU time every 100 ms), as a "
            "Kubernetes CPU limit of 1 sets it; the load outside it. Periods in which the quota ran out, of "
            f"{periods}: "
            + ", ".join(f"{name.removesuffix(', 1-CPU limit')} {n:.0f}" for name, n in throttled.items())
            + ".",
            "",
        ]
    lines += [
        "Two workers share the machine's cores with the load generator (wrk runs two threads), as the goal "
        "asks: what a second worker adds here is bounded by the core the load leaves it.",
        "",
        CHOICE,
        "Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()) + ".",
        "",
        "Reproduce with `nox -s bench_serve` (options after `--`: `--rounds`, `--seconds`, `--warmup`, "
        "`--connections`, `--candidates`, `--pinned`, `--cpu-limit`).",
        "",
    ]
    return "\n".join(lines)


def write_section(path: Path, section: str) -> None:
    """Replaces this module's section of PATH (from its heading to the next heading of its level), or appends it."""
    text = path.read_text() if path.exists() else ""
    start = text.find(HEADING + "\n")
    if start < 0:
        text = (text.rstrip("\n") + "\n\n" if text else "") + section
    else:
        following = re.search(r"^## ", text[start + len(HEADING) :], re.MULTILINE)
        end = start + len(HEADING) + following.start() if following else len(text)
        text = text[:start] + section + ("\n" + text[end:] if following else "")
    path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service", type=Path)
    parser.add_argument("--markdown", type=Path, help="a file whose production-server section is written or replaced")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--candidates", action="store_true", help="also granian (one worker), if installed")
    parser.add_argument("--pinned", action="store_true", help="also the one-worker servers held to one core")
    parser.add_argument("--cpu-limit", action="store_true", help="also the one-worker servers under a 1-CPU quota")
    args = parser.parse_args()
    if min(args.rounds, args.seconds, args.connections) < 1 or args.warmup < 0:
        parser.error("--rounds, --seconds and --connections must be at least 1, --warmup at least 0")
    service = args.service.resolve()
    backend = service / "backend"
    if not (backend / "app" / "__main__.py").is_file():
        parser.error(f"{service} is not a rendered service with a production server (no backend/app/__main__.py)")
    if args.candidates and importlib.util.find_spec("granian") is None:
        print("--candidates: granian is not installed in the service's environment; left out")
        args.candidates = False
    if args.pinned and (not shutil.which("taskset") or (os.cpu_count() or 1) < 2):
        print("--pinned: needs taskset and at least two cores; left out")
        args.pinned = False

    if args.cpu_limit:
        args.cpu_limit = CpuLimit()
        if args.cpu_limit.path is None:
            print("--cpu-limit: needs root and a writable cgroup file system with the cpu controller; left out")
            args.cpu_limit = None
    sys.path.insert(0, str(backend))
    from devtools.servers import running_servers

    args.tool = "wrk" if shutil.which("wrk") else "asyncio client"
    args.logs = service / "bench-serve-logs"
    args.logs.mkdir(exist_ok=True)
    plan = runs(Path(sys.executable).parent, args)
    print(f"load: {args.tool}, {args.connections} connections, {args.seconds} s a run; {os.cpu_count()} cores")
    rounds = []
    with running_servers() as (postgres, redis), ExitStack() as cleanup:
        if args.cpu_limit:
            cleanup.callback(args.cpu_limit.remove)
        env = env_from_example(backend)
        env.update(DATABASE_URL=postgres.url, REDIS_URL=redis.url)
        for i in range(args.rounds):
            print(f"round {i + 1}/{args.rounds}")
            measured = {run.name: measure(run, env, backend, args) for run in plan}
            one, two = measured["serve, 1 worker"]["rps"], measured["serve, 2 workers"]["rps"]
            rounds.append(
                {
                    "runs": measured,
                    "serve_over_uvicorn": round(one / measured["uvicorn (make api)"]["rps"], 3),
                    "two_over_one": round(two / one, 3),
                }
            )
            print(f"  serve 1 / uvicorn {rounds[-1]['serve_over_uvicorn']:.2f}; 2 / 1 {rounds[-1]['two_over_one']:.2f}")

    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform()},
        "load_tool": args.tool,
        "settings": {k: getattr(args, k) for k in ("rounds", "seconds", "warmup", "connections")},
        "rounds": rounds,
        "median_serve_over_uvicorn": round(statistics.median(r["serve_over_uvicorn"] for r in rounds), 2),
        "median_two_over_one": round(statistics.median(r["two_over_one"] for r in rounds), 2),
        "errors": sum(run["errors"] for r in rounds for run in r["runs"].values()),
        "versions": versions(),
    }
    print(
        f"median serve 1 worker / uvicorn: {results['median_serve_over_uvicorn']:.2f} (goal {GOAL_OVER_UVICORN}); "
        f"median serve 2 / 1 workers: {results['median_two_over_one']:.2f} (goal {GOAL_TWO_OVER_ONE}); "
        f"errors: {results['errors']}"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if args.markdown:
        write_section(args.markdown, markdown(results))
        print(f"wrote the section {HEADING!r} of {args.markdown}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
