"""Where a read's time goes: the resource group's apps called in process under cProfile, the
Python functions each request runs, by the package that holds them.

Each app (a factory) is built and its lifespan run in a process of the service's Python; then
CLIENTS concurrent callers send CALLS requests for one path straight into its ASGI callable
(no server, no socket between client and app; PostgreSQL is real). Function counts do not
move with the machine's load; the own-time shares do a little (cProfile adds its own cost to
every call, so they are shares, not microseconds of an unprofiled run).
"""

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from figures.common import Bench, table

CALLS, CLIENTS = 2000, 8
SCRIPT = '''"""Profiles each app on one path; prints, as JSON, per app: calls and own seconds by package."""

import asyncio
import cProfile
import importlib
import json
import logging
import os
import pstats
import re
import sys
import time

import uvloop

PATH, CALLS, CLIENTS = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
APPS = sys.argv[4:]  # module:factory
SCOPE = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
    "path": PATH, "raw_path": PATH.encode(), "query_string": b"", "root_path": "",
    "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench"), (b"accept", b"*/*")],
    "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
}
SITE = re.compile(r"site-packages/([A-Za-z0-9_]+)")


def package(filename: str) -> str:
    if filename.startswith("~") or filename.startswith("<"):
        return "built-in (C)"
    if match := SITE.search(filename):
        return match.group(1)
    if "/backend/app/" in filename or filename.endswith("_app.py"):
        return "the app's own code"
    match = re.search(r"python3\\.\\d+/([A-Za-z0-9_]+)", filename)
    return f"stdlib {match.group(1).removesuffix('.py')}" if match else "other"


async def receive() -> dict[str, object]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def profile(spec: str) -> dict[str, object]:
    module, _, factory = spec.partition(":")
    app = getattr(importlib.import_module(module), factory)()
    # Log lines go to /dev/null, as a server's to a file.
    devnull = open(os.devnull, "w")
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(devnull)
    statuses: list[int] = []

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])  # type: ignore[arg-type]

    async def client(calls: int) -> None:
        for _ in range(calls):
            await app(dict(SCOPE), receive, send)

    async with app.router.lifespan_context(app):
        await asyncio.gather(*(client(50) for _ in range(CLIENTS)))  # the caches filled
        started = time.process_time()
        await asyncio.gather(*(client(CALLS // CLIENTS) for _ in range(CLIENTS)))
        plain = (time.process_time() - started) / CALLS * 1e6
        profiler = cProfile.Profile()
        profiler.enable()
        await asyncio.gather(*(client(CALLS // CLIENTS) for _ in range(CLIENTS)))
        profiler.disable()
    if set(statuses) != {200}:
        raise SystemExit(f"{spec}: answered {sorted(set(statuses))}")
    by_package: dict[str, list[float]] = {}
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    for (filename, _, _), (_, calls, own, _, _) in stats.items():
        entry = by_package.setdefault(package(filename), [0, 0.0])
        entry[0] += calls
        entry[1] += own
    calls_total = sum(entry[0] for entry in by_package.values())
    return {"cpu_us_unprofiled": plain, "calls": calls_total / CALLS,
            "packages": {name: [calls / CALLS, own] for name, (calls, own) in by_package.items()}}


async def main() -> None:
    print(json.dumps({spec: await profile(spec) for spec in APPS}))


uvloop.run(main())
'''


def profiles(bench: Bench, path: str, apps: dict[str, tuple[str, Path | None]]) -> dict[str, Any]:
    """APPS (a name: its factory and the folder of its module, if the bench wrote it) profiled on PATH."""
    script = bench.work / "profile_reads.py"
    script.write_text(SCRIPT)
    folders = [str(bench.backend), *(str(folder) for _, folder in apps.values() if folder)]
    done = subprocess.run(
        [sys.executable, str(script), path, str(CALLS), str(CLIENTS), *(factory for factory, _ in apps.values())],
        cwd=bench.backend,
        env={**bench.env, "PYTHONPATH": ":".join(folders)},
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )
    if done.returncode != 0:
        raise SystemExit(f"profile failed:\n{done.stdout[-2000:]}{done.stderr[-3000:]}")
    results = json.loads(done.stdout.strip().splitlines()[-1])
    return {name: results[factory] for name, (factory, _) in apps.items()}


def markdown(found: dict[str, Any], path_label: str, top: int = 9) -> str:
    names = list(found)
    # The packages that own the most time in any app, largest first.
    shares = {
        name: {
            package: own / sum(o for _, o in result["packages"].values())
            for package, (_, own) in result["packages"].items()
        }
        for name, result in found.items()
    }
    ranked = sorted(
        {p for share in shares.values() for p in share}, key=lambda p: -max(s.get(p, 0) for s in shares.values())
    )
    rows = [
        [
            package,
            *(
                f"{found[name]['packages'].get(package, [0, 0])[0]:.0f} / {100 * shares[name].get(package, 0):.0f}%"
                for name in names
            ),
        ]
        for package in ranked[:top]
    ]
    rows.append(["all", *(f"{found[name]['calls']:.0f} / 100%" for name in names)])
    rows.append(["CPU µs per request, unprofiled", *(f"{found[name]['cpu_us_unprofiled']:.0f}" for name in names)])
    return "\n\n".join(
        [
            f"Where the time of `{path_label}` goes: each app called in process ({CALLS:,} requests from "
            f"{CLIENTS} concurrent callers, no server; PostgreSQL real) under cProfile. A cell is the Python "
            "functions a request runs in that package, and that package's share of the functions' own time "
            "(cProfile's, shares only); the last row the process's CPU per request without the profiler, "
            "without uvicorn's part (parsing, the socket).",
            table(["package", *names], rows),
        ]
    )
