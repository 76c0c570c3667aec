"""Figures for the production server (`make serve`, i.e. `python -m app`) of a rendered, installed service.

Runs with the service's own Python (for ``devtools.servers``):

    backend/.venv/bin/python harness/bench_serve.py SERVICE [--markdown BENCHMARKS.md] [--json out.json]

Each round measures, one after the other on the same machine and real servers:
``python -m app`` with one worker; uvicorn as `make api` runs it without reload; and
``python -m app`` with two workers. Ratios are taken within a round (interleaved), and the
medians are reported against the goals (>= 1.3x over uvicorn, >= 1.5x for two workers
over one). ``--candidates`` adds the servers the choice was made between, each with one
worker, when they are installed (granian, gunicorn with uvicorn-worker).

Load comes from wrk when it is installed, else a bounded asyncio client, on the same cores
as the server. Every run is bounded in time. Figures are printed, never asserted.
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
from contextlib import contextmanager, suppress
from importlib import metadata
from pathlib import Path
from typing import Any

PATH = "/api/v1/health"
HEADING = "## Production server"
GOALS = {"serve_over_uvicorn": 1.3, "two_over_one": 1.5}


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
def running(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
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
        with suppress(OSError):
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        time.sleep(0.05)
    raise SystemExit(f"server did not answer within {within} s; see {log}")


def process_tree(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with suppress(OSError):
            fields = stat.read_text().rsplit(")", 1)[1].split()
            children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


def cpu_seconds(pids: list[int]) -> float:
    total = 0
    for pid in pids:
        with suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / os.sysconf("SC_CLK_TCK")


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
        return float(match.group(1)) * {"us": 0.001, "ms": 1.0, "s": 1000.0}[match.group(2)] if match else float("nan")

    done = re.search(r"(\d+) requests in", out)
    errors = sum(int(n) for n in re.findall(r"(?:connect|read|write|timeout) (\d+)", out))
    errors += int(m.group(1)) if (m := re.search(r"Non-2xx or 3xx responses: (\d+)", out)) else 0
    return {"requests": int(done.group(1)) if done else 0, "errors": errors, "p50_ms": millis("50%")}


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


def load(port: int, seconds: int, connections: int, tool: str) -> dict[str, float]:
    if tool == "wrk":
        return wrk(f"http://127.0.0.1:{port}{PATH}", seconds, connections)
    return asyncio.run(asyncio_load(port, seconds, connections))


def free_port() -> int:
    from devtools.servers import free_port as servers_free_port  # the service's own tooling; on sys.path

    return servers_free_port()


# name -> (command for a port, extra environment). `python -m app` reads PORT and
# WEB_CONCURRENCY like the image does; the others take the port on their command line.
Command = Callable[[Path, int], list[str]]
RUNS: dict[str, tuple[Command, dict[str, str]]] = {
    "serve-1": (lambda venv, port: [str(venv / "python"), "-m", "app"], {"WEB_CONCURRENCY": "1"}),
    "serve-2": (lambda venv, port: [str(venv / "python"), "-m", "app"], {"WEB_CONCURRENCY": "2"}),
    "uvicorn": (
        lambda venv, port: [str(venv / "uvicorn"), "--factory", "app.main:create_app", "--port", str(port)],
        {},
    ),
}
CANDIDATES: dict[str, tuple[str, Command]] = {
    "granian": (
        "granian",
        lambda venv, port: (
            [str(venv / "granian"), "--interface", "asgi", "--factory", "app.main:create_app"]
            + ["--port", str(port), "--workers", "1"]
        ),
    ),
    "gunicorn+uvicorn-worker": (
        "uvicorn_worker",
        lambda venv, port: (
            [str(venv / "gunicorn"), "-k", "uvicorn_worker.UvicornWorker", "-w", "1"]
            + ["-b", f"127.0.0.1:{port}", "app.main:create_app()"]
        ),
    ),
    "uvicorn --workers 1": (
        "uvicorn",
        lambda venv, port: (
            [str(venv / "uvicorn"), "--factory", "app.main:create_app", "--port", str(port)] + ["--workers", "1"]
        ),
    ),
}


def measure(name: str, command: list[str], env: dict[str, str], port: int, backend: Path, args: Any) -> dict[str, Any]:
    log = args.logs / f"{name.replace(' ', '_')}.log"
    with running(command, backend, {**env, "PORT": str(port)}, log) as proc:
        wait_serving(f"http://127.0.0.1:{port}{PATH}", proc, log)
        load(port, args.warmup, args.connections, args.tool)
        pids = process_tree(proc.pid)
        cpu_before, started = cpu_seconds(pids), time.monotonic()
        result = load(port, args.seconds, args.connections, args.tool)
        elapsed, cpu = time.monotonic() - started, cpu_seconds(pids) - cpu_before
    access_lines = log.read_text(errors="replace").count('"app.access"')
    result.update(
        name=name,
        rps=round(result["requests"] / elapsed, 1),
        cpu_us_per_request=round(cpu / max(result["requests"], 1) * 1e6, 1),
        processes=len(pids),
        access_lines=access_lines,
    )
    print(
        f"  {name:24s} {result['rps']:8.0f} req/s  p50 {result['p50_ms']:6.2f} ms  "
        f"{result['cpu_us_per_request']:6.1f} CPU µs/req  errors {result['errors']}  "
        f"({len(pids)} processes, {access_lines} access lines)",
        flush=True,
    )
    return result


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in ("fastapi", "uvicorn", "uvloop", "httptools", "granian", "gunicorn", "uvicorn-worker"):
        with suppress(metadata.PackageNotFoundError):
            found[name] = metadata.version(name)
    return found


def median_of(rounds: list[dict[str, Any]], key: str) -> float:
    return round(statistics.median(r[key] for r in rounds), 2)


def markdown(results: dict[str, Any], chosen: str) -> str:
    rounds = results["rounds"]
    goal_a, goal_b = GOALS["serve_over_uvicorn"], GOALS["two_over_one"]
    ratio_a, ratio_b = results["median_serve_over_uvicorn"], results["median_two_over_one"]
    rows = [
        "| round | serve, 1 worker req/s | uvicorn (`make api`) req/s | serve, 2 workers req/s | "
        "CPU µs/req (serve 1 / uvicorn / serve 2) | serve 1 / uvicorn | serve 2 / serve 1 |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for i, r in enumerate(rounds, 1):
        one, uvi, two = r["serve-1"], r["uvicorn"], r["serve-2"]
        rows.append(
            f"| {i} | {one['rps']:.0f} | {uvi['rps']:.0f} | {two['rps']:.0f} | {one['cpu_us_per_request']} / "
            f"{uvi['cpu_us_per_request']} / {two['cpu_us_per_request']} | {r['serve_over_uvicorn']:.2f} | "
            f"{r['two_over_one']:.2f} |"
        )
    settings = results["settings"]
    lines = [
        HEADING,
        "",
        f"Measured {results['date']} by `harness/bench_serve.py` on {results['machine']['cores']} cores "
        f"({results['machine']['platform']}), a machine shared with other jobs (its figures move with their "
        f"load; the ratios are taken within each round). Load from {results['load_tool']} on the same cores "
        f"as the server, {settings['connections']} connections, {settings['seconds']} s a run after "
        f"{settings['warmup']} s of warm-up, `GET {PATH}`, the service's JSON access line on, logging to a "
        f"file. `make serve` runs {chosen}; uvicorn runs as `make api` does, without `--reload`. CPU µs per "
        "request counts every process of the server (supervisor and workers).",
        "",
        f"| figure | median | goal |",
        "| --- | --- | --- |",
        f"| `make serve` (1 worker) / uvicorn as `make api` runs it, requests per second | **{ratio_a:.2f}** | "
        f"≥ {goal_a} ({'met' if ratio_a >= goal_a else 'not met'}) |",
        f"| `make serve` 2 workers / 1 worker, requests per second | **{ratio_b:.2f}** | "
        f"≥ {goal_b} ({'met' if ratio_b >= goal_b else 'not met'}) |",
        "",
        *rows,
    ]
    if results.get("candidates"):
        names = list(results["candidates"][0])
        lines += [
            "",
            "The servers the choice was made between, one worker each, interleaved in the same run:",
            "",
            "| round | " + " | ".join(f"{n} req/s (CPU µs/req)" for n in names) + " |",
            "| --- | " + " | ".join("---" for _ in names) + " |",
        ]
        for i, r in enumerate(results["candidates"], 1):
            cells = [f"{r[n]['rps']:.0f} ({r[n]['cpu_us_per_request']})" for n in names]
            lines.append(f"| {i} | " + " | ".join(cells) + " |")
        medians = [
            f"{n} {statistics.median(r[n]['rps'] for r in results['candidates']):.0f} req/s, "
            f"{statistics.median(r[n]['cpu_us_per_request'] for r in results['candidates']):.1f} CPU µs/req"
            for n in names
        ]
        lines += ["", "Medians: " + "; ".join(medians) + "."]
    lines += [
        "",
        "Versions: " + ", ".join(f"{k} {v}" for k, v in results["versions"].items()) + ".",
        "",
        "Reproduce with `nox -s bench_serve` (options after `--`: `--rounds`, `--seconds`, `--warmup`, "
        "`--connections`, `--candidates`).",
        "",
    ]
    return "\n".join(lines)


def write_section(path: Path, section: str) -> None:
    """Replaces this module's section of PATH (from its heading to the next one of its level), or appends it."""
    text = path.read_text() if path.exists() else ""
    start = text.find(HEADING + "\n")
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section if text else section
    else:
        following = re.search(r"^## ", text[start + len(HEADING) :], re.MULTILINE)
        end = start + len(HEADING) + following.start() if following else len(text)
        text = text[:start] + section + ("\n" + text[end:] if following else "")
    path.write_text(text)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("service", type=Path)
    parser.add_argument("--markdown", type=Path, help="file whose production-server section is written or replaced")
    parser.add_argument("--json", type=Path)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--seconds", type=int, default=8)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--candidates", action="store_true", help="also the servers the choice was made between")
    args = parser.parse_args()
    if min(args.rounds, args.seconds, args.connections) < 1 or args.warmup < 0:
        parser.error("--rounds, --seconds and --connections must be at least 1, --warmup at least 0")

    service = args.service.resolve()
    backend = service / "backend"
    venv = Path(sys.executable).parent
    if not (backend / "app" / "__main__.py").is_file():
        parser.error(f"{service} is not a rendered service with a production server (no backend/app/__main__.py)")
    sys.path.insert(0, str(backend))
    from devtools.servers import running_servers

    args.tool = "wrk" if shutil.which("wrk") else "asyncio client"
    args.logs = service / "bench-serve-logs"
    args.logs.mkdir(exist_ok=True)
    candidates = {
        name: command
        for name, (module, command) in CANDIDATES.items()
        if args.candidates and importlib.util.find_spec(module) is not None
    }
    if args.candidates:
        missing = sorted(set(CANDIDATES) - set(candidates))
        print(f"candidates: {', '.join(candidates)}" + (f" (not installed: {', '.join(missing)})" if missing else ""))
    print(f"load: {args.tool}, {args.connections} connections, {args.seconds} s a run; {os.cpu_count()} cores")

    rounds, candidate_rounds = [], []
    with running_servers() as (postgres, redis):
        env = env_from_example(backend)
        env.update(DATABASE_URL=postgres.url, REDIS_URL=redis.url)
        for i in range(args.rounds):
            print(f"round {i + 1}/{args.rounds}")
            result: dict[str, Any] = {}
            for name, (command, extra) in RUNS.items():
                port = free_port()
                result[name] = measure(name, command(venv, port), {**env, **extra}, port, backend, args)
            result["serve_over_uvicorn"] = round(result["serve-1"]["rps"] / result["uvicorn"]["rps"], 3)
            result["two_over_one"] = round(result["serve-2"]["rps"] / result["serve-1"]["rps"], 3)
            print(f"  serve 1 / uvicorn {result['serve_over_uvicorn']:.2f}, serve 2 / 1 {result['two_over_one']:.2f}")
            rounds.append(result)
            if candidates:
                candidate_rounds.append(
                    {
                        name: measure(name, command(venv, port := free_port()), env, port, backend, args)
                        for name, command in candidates.items()
                    }
                )

    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform()},
        "load_tool": args.tool,
        "settings": {k: getattr(args, k) for k in ("rounds", "seconds", "warmup", "connections")},
        "rounds": rounds,
        "candidates": candidate_rounds,
        "median_serve_over_uvicorn": median_of(rounds, "serve_over_uvicorn"),
        "median_two_over_one": median_of(rounds, "two_over_one"),
        "versions": versions(),
    }
    errors = sum(r[name]["errors"] for r in rounds for name in RUNS)
    print(
        f"median serve 1 / uvicorn: {results['median_serve_over_uvicorn']:.2f} (goal {GOALS['serve_over_uvicorn']}); "
        f"median serve 2 / 1: {results['median_two_over_one']:.2f} (goal {GOALS['two_over_one']}); errors: {errors}"
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    if args.markdown:
        write_section(args.markdown, markdown(results, server_description(backend)))
        print(f"wrote the section {HEADING!r} of {args.markdown}")
    return 0


def server_description(backend: Path) -> str:
    """What `python -m app` runs, from its own words (the first line of its docstring)."""
    text = (backend / "app" / "__main__.py").read_text()
    match = re.search(r'"""(.+?)[.\n]', text)
    return match.group(1).strip() if match else "the production server"


if __name__ == "__main__":
    sys.exit(main())
