"""Benchmark of a rendered, installed service, on real servers: figures, never assertions.

Runs with the service's own Python (for ``devtools.servers``), as `nox -s bench` runs it:

    backend/.venv/bin/python harness/bench.py SERVICE --json out.json --markdown out.md

Each figure group (a module of harness/figures/ with a ``figures(bench) -> Section``
function, listed in GROUPS) measures one comparison and writes its own section of the
markdown; ``--groups`` runs some of them and then only prints. Load comes from wrk when
it is installed, otherwise from a bounded asyncio client; the output says which. Every
load is bounded in time (and the asyncio client in requests too).
"""

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from checks.support import Servers, env_from_example
from figures import auth, levers, readiness, request_cost, request_path, resource, serve, startup, telemetry
from figures.common import Bench, Section

# In the order BENCHMARKS.md shows them.
GROUPS: dict[str, Callable[[Bench], Section]] = {
    "request_path": request_path.figures,
    "request_cost": request_cost.figures,
    "readiness": readiness.figures,
    "startup": startup.figures,
    "resource": resource.figures,
    "levers": levers.figures,
    "serve": serve.figures,
    "telemetry": telemetry.figures,
    "auth": auth.figures,
}
VERSIONS = [
    *("fastapi", "starlette", "uvicorn", "pydantic", "python-json-logger", "orjson", "uvloop", "httptools"),
    *("sqlalchemy", "asyncpg", "gunicorn", "uvicorn-worker"),
]


def versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in VERSIONS:
        try:
            found[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            found[name] = "not installed"
    return found


def markdown(bench: Bench, sections: list[Section], found: dict[str, str], note: str | None) -> str:
    lines = [
        "# Benchmark",
        "",
        f"Measured {time.strftime('%Y-%m-%d')} on {os.cpu_count()} cores ({platform.platform()}) by "
        f"`nox -s bench`: load from {bench.tool}, {bench.connections} connections, {bench.seconds} s a run "
        f"after {bench.warmup} s of warm-up. A verdict compares a figure with its target; figures are "
        "reported, never asserted (they move with whatever else runs on the machine).",
        "",
        *([f"**{note}**", ""] if note else []),
    ]
    for section in sections:
        lines += [f"## {section.title}", "", section.markdown, ""]
    lines += [
        "Versions: " + ", ".join(f"{name} {version}" for name, version in found.items()) + ".",
        "",
        "Reproduce with `nox -s bench` (options after `--`: `--rounds`, `--seconds`, `--warmup`, "
        "`--connections`, `--groups`, `--note`). Server CPU µs per request is the steadier figure on a shared "
        "machine; requests per second and latency move with whatever else runs.",
        "",
    ]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("service", type=Path)
    parser.add_argument("--json", type=Path, required=True)
    parser.add_argument("--markdown", type=Path, required=True)
    parser.add_argument(
        "--rounds", type=int, default=3, help="interleaved rounds of each comparison (at least 7 for request_cost)"
    )
    parser.add_argument("--seconds", type=int, default=8, help="of load per server and round")
    parser.add_argument("--warmup", type=int, default=2, help="seconds of load before each measured one")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--copier-copy-seconds", type=float)
    parser.add_argument("--groups", default=",".join(GROUPS), help=f"comma-separated, of {', '.join(GROUPS)}")
    parser.add_argument("--note", help="said at the top of BENCHMARKS.md (a loaded machine, say)")
    args = parser.parse_args()
    selected = args.groups.split(",")
    if unknown := set(selected) - set(GROUPS):
        parser.error(f"unknown figure groups: {', '.join(sorted(unknown))}")
    for name in ("rounds", "seconds", "connections"):
        if getattr(args, name) < 1:
            parser.error(f"--{name} must be at least 1")

    backend = args.service.resolve() / "backend"
    sys.path.insert(0, str(backend))
    from devtools.servers import running_servers  # the service's own tooling

    tool = "wrk" if shutil.which("wrk") else "asyncio client"
    print(f"load: {tool}")
    with tempfile.TemporaryDirectory(prefix="bench-") as work, running_servers() as (postgres, redis):
        env = {**env_from_example(backend), "DATABASE_URL": postgres.url, "REDIS_URL": redis.url}
        bench = Bench(
            backend=backend,
            env=env,
            servers=Servers(postgres, redis),
            work=Path(work),
            tool=tool,
            rounds=args.rounds,
            seconds=args.seconds,
            warmup=args.warmup,
            connections=args.connections,
            copier_copy_seconds=args.copier_copy_seconds,
        )
        sections = {}
        for name in selected:
            print(f"[{name}]")
            started = time.monotonic()
            sections[name] = GROUPS[name](bench)
            print(f"[{name}] took {time.monotonic() - started:.0f} s")
    if selected != list(GROUPS):
        print("Some figure groups only: BENCHMARKS.md and the JSON are left as they are. Their sections:\n")
        for section in sections.values():
            print(f"## {section.title}\n\n{section.markdown}\n")
        return 0
    found = versions()
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": {"cores": os.cpu_count(), "platform": platform.platform()},
        "load_tool": tool,
        "note": args.note,
        "settings": {
            "rounds": args.rounds,
            "seconds": args.seconds,
            "warmup": args.warmup,
            "connections": args.connections,
        },
        "versions": found,
        **{name: section.data for name, section in sections.items()},
    }
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    args.markdown.write_text(markdown(bench, list(sections.values()), found, args.note))
    print(f"wrote {args.markdown} and {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
