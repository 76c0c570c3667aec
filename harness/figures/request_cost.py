"""Where the request path's cost is: the liveness route called in process, without a server.

Each variant is an ASGI app called directly (no socket, no server, no load generator), so
the figures are the app's own CPU time per request, which the server figures of the
request-path group add to. Variants go from bare FastAPI, a step at a time, to the
skeleton, interleaved over the rounds, in a process of the service's own Python.
"""

import os
import sys
from typing import Any

from figures.common import Bench, Section, fastest_rounds, table
from figures.request_path import BARE_APP, FULL_STACK_APP

CALLS = 20_000  # per variant and round
SCRIPT = '''"""Calls each variant's ASGI app CALLS times per round and prints microseconds per call as JSON."""

import asyncio
import json
import logging
import os
import sys
import time

import bare_app
import full_stack_app
from fastapi import APIRouter, FastAPI

from app.main import create_app

CALLS, ROUNDS = int(sys.argv[1]), int(sys.argv[2])
SCOPE = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
    "path": "/api/v1/health", "raw_path": b"/api/v1/health", "query_string": b"", "root_path": "",
    "headers": [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench"), (b"accept", b"*/*")],
    "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
}


async def liveness() -> dict[str, str]:
    return {"status": "ok"}


def health_router() -> APIRouter:
    router = APIRouter(prefix="/health")
    router.get("")(liveness)
    return router


def one_level() -> FastAPI:
    app = FastAPI()
    app.include_router(health_router(), prefix="/api/v1")
    return app


def without_request_id() -> FastAPI:
    # The skeleton less its request-ID middleware (which writes the access line too); the
    # stack is built at the first request, from this list.
    app = create_app()
    app.user_middleware = [m for m in app.user_middleware if m.cls.__name__ != "RequestIDMiddleware"]
    return app


def two_levels() -> FastAPI:
    api_router = APIRouter()
    api_router.include_router(health_router())
    app = FastAPI()
    app.include_router(api_router, prefix="/api/v1")
    return app


async def receive() -> dict[str, object]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def per_call(app: FastAPI, calls: int) -> float:
    statuses = []

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    started = time.process_time()
    for _ in range(calls):
        await app(dict(SCOPE), receive, send)
    elapsed = time.process_time() - started
    assert statuses == [200] * calls, set(statuses)
    return elapsed / calls * 1e6


async def main() -> None:
    # Bare FastAPI and the full-stack shape as the request-path group serves them.
    apps = {"bare": bare_app.create_app(), "one router level": one_level(), "two router levels": two_levels(),
            "full-stack shape": full_stack_app.create_app(), "skeleton without its request ID": without_request_id(),
            "skeleton": create_app()}
    # The skeleton's logging (set up by create_app) writes to a file, as under a server.
    devnull = open(os.devnull, "w")
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(devnull)
    access = logging.getLogger("app.access")
    variants = [*apps, "skeleton without its access line"]
    results: dict[str, list[float]] = {name: [] for name in variants}

    async def measure(name: str, calls: int) -> float:
        access.setLevel(logging.WARNING if name.endswith("access line") else logging.NOTSET)
        return await per_call(apps.get(name, apps["skeleton"]), calls)

    for name in variants:  # warm-up
        await measure(name, CALLS // 10)
    for number in range(ROUNDS):
        turn = number % len(variants)
        for name in variants[turn:] + variants[:turn]:
            results[name].append(round(await measure(name, CALLS), 2))
    print(json.dumps(results))


asyncio.run(main())
'''
# Each step: (variant, the one it adds to, what it adds).
STEPS = [
    ("one router level", "bare", "the route in an APIRouter included by the app"),
    ("two router levels", "one router level", "that router included by an `api_router`, as both templates do"),
    ("full-stack shape", "two router levels", "Starlette's CORSMiddleware (a request without Origin)"),
    (
        "skeleton without its request ID",
        "full-stack shape",
        "the catch-all 500 middleware, the JSON log set-up, the skeleton's route",
    ),
    (
        "skeleton without its access line",
        "skeleton without its request ID",
        "the request-ID middleware: an ID (`uuid4`), a context variable, a response header",
    ),
    ("skeleton", "skeleton without its access line", "the JSON access line (written to /dev/null)"),
]


def figures(bench: Bench) -> Section:
    script = bench.work / "request_cost.py"
    script.write_text(SCRIPT)
    apps = [bench.write_app("bare_app", BARE_APP), bench.write_app("full_stack_app", FULL_STACK_APP)]
    rounds = max(bench.rounds, 7)
    command = [sys.executable, str(script), str(CALLS), str(rounds)]  # the service's Python, as bench.py's
    env = {**bench.env, "PYTHONPATH": os.pathsep.join(map(str, [bench.backend, *apps]))}
    results, fastest = fastest_rounds("request cost", command, bench.backend, env, timeout=600)

    rows: list[list[Any]] = [["bare FastAPI", "", f"{fastest['bare']:.1f}", "", ""]]
    rows += [
        [
            name,
            adds,
            f"{fastest[name]:.1f}",
            f"{fastest[name] - fastest[base]:+.1f}",
            f"{fastest[name] / fastest['bare']:.2f}",
        ]
        for name, base, adds in STEPS
    ]
    level = (fastest["two router levels"] - fastest["bare"]) / 2
    markdown = "\n\n".join(
        [
            "The liveness route's ASGI app called in process, without a server: the app's own CPU "
            f"µs per request, the fastest of {rounds} interleaved rounds of {CALLS:,} calls. Each variant "
            "adds one thing to the one above it; the server figures above add the server's own work "
            "(uvicorn, and for bare FastAPI and the full-stack shape its text access line) to these.",
            table(["variant", "adds", "µs per request", "step", "over bare"], rows),
            "FastAPI resolves an included router at request time, so each level of `include_router` "
            "is matched on every request; both the skeleton and full-stack-fastapi-template include "
            "route modules through an `api_router`. The skeleton keeps that shape: a team registers a "
            "router with one `api_router.include_router(...)` line, as services generated since 0.1.0 "
            f"do, and `make resource` writes the same line. A router level (about {level:.0f} µs here) is a "
            "small share of a route that runs a query (the resource group below). The skeleton's JSON "
            "access line takes the place of uvicorn's text access line, which bare FastAPI and the "
            "full-stack shape pay for inside the server (`make api` runs uvicorn with `--no-access-log`).",
            "Why the rest stays: what the skeleton adds to the full-stack shape is its observability, a "
            "request ID for every response and log line (a `uuid4`, a context variable, a header), the "
            "catch-all 500 that keeps those headers, and a JSON access line with the request's duration, "
            "client, user agent and masked query, written with `Logger.info(..., extra=...)` through "
            "python-json-logger's orjson formatter. Making the line cheaper would take what the review of "
            "0.5.0 removed (records built without `Logger.info`, `logging` switches set by the app); "
            "on a route with a query the line is a small share (the levers group).",
        ]
    )
    return Section("Where the request path's cost is", markdown, {"rounds": results, "fastest_us": fastest})
