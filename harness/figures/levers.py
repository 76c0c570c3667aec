"""What each choice on a generated resource's request path gives: the service against itself
with one choice undone, on GET /{id} and POST of the resource group's table.

Servers, interleaved (the order turns each round), each the service as `make api` serves it:
- generated: as rendered;
- pre-ping: the engine tests every pooled connection on checkout (``pool_pre_ping``, three
  round trips), as 0.5.0 did, instead of replacing the connections PostgreSQL closed;
- reads in a transaction: the read routes on ``DbSession`` (BEGIN and COMMIT around the
  read) instead of ``ReadSession``;
- no statement caches: asyncpg's and SQLAlchemy's prepared-statement caches off (as behind
  PgBouncer in transaction mode, the pool kept): every statement prepared again;
- no access line: the service's JSON access line muted (its share of a route with a query);
- pool 5 + overflow 10: SQLAlchemy's default pool shape, as 0.5.0 had it, instead of 15 kept.
"""

import statistics
from typing import Any

from figures.common import Bench, Section, table
from figures.resource import generated_resource, sql, tidy

LEVERS = ["pre-ping", "reads in a transaction", "no statement caches", "no access line", "pool 5 + overflow 10"]
# Levers that are settings: the service itself, with these in its environment.
SETTINGS = {"pool 5 + overflow 10": {"DATABASE_POOL_SIZE": "5", "DATABASE_MAX_OVERFLOW": "10"}}
ROUTES = ["GET /{id}", "POST"]
VERDICTS = """What was kept, and why:

- **Pre-ping: replaced.** A pooled connection that PostgreSQL closed (a restart, a terminated
  backend) is one whose socket asyncpg has already seen close; a pool `checkout` listener
  (SQLAlchemy's documented way to refuse a connection: raise `DisconnectionError`) replaces it
  at no round trip, where `pool_pre_ping` spends three on every request (BEGIN, `;`, ROLLBACK:
  the asyncpg dialect wraps its ping in a transaction for PgBouncer). The service's tests
  restart PostgreSQL (stopped and killed) under a pool of one connection and check that the
  first request answers 200. Optimistic handling with a retry of idempotent reads was not
  built: it would cover only a connection that dies unseen (a network drop), which now
  answers one 503 with `Retry-After` and invalidates the pool, and it needs a route class
  that runs a route twice.
- **Reads without a transaction: kept,** as `ReadSession` (SQLAlchemy's documented
  autocommit session: `engine.execution_options(isolation_level="AUTOCOMMIT")`). Safe where
  the route only reads and its statements need no common snapshot: `GET /{id}` is one
  statement; the list's count and page may each see a write the other did not, as two pages
  of a list may. Routes that write, or whose reads must agree, keep `DbSession`.
- **The pool keeps what it opens: new** (`DATABASE_POOL_SIZE=15`, `DATABASE_MAX_OVERFLOW=0`;
  the ConfigMap 7 and 0). With 5 kept and 10 of overflow, a worker under steady load above 5
  requests at once closed overflow connections as they came back (the pool's queue was
  full until the waiting requests ran) and opened new ones for the next requests (the
  table's last column), each a TCP and PostgreSQL start-up and its statements prepared
  again. The most a worker opens is the same.
- **Statement caches: kept on** (asyncpg's and SQLAlchemy's prepared statements; off only
  behind PgBouncer in transaction mode, `DATABASE_POOLER=transaction`).
- **Session options:** `expire_on_commit=False` was already there (a response built after
  the commit needs no reload); the read session does not autoflush (nothing to flush).
  `session.get` stays: its identity-map look-up is a dictionary access before the same
  SELECT a `select()` would send; neither was worth a variant.
- **The access line: kept, unchanged.** It is python-json-logger's orjson formatter with a
  fixed set of fields, written with `Logger.info(..., extra=...)` as uvicorn writes its own;
  its share of a route with a query is in the "no access line" rows. The request-path groups show
  what it costs on liveness, where the rest of the gap to bare FastAPI goes.
"""
LEVER_APP = '''"""The generated service with one choice undone (BENCH_LEVER names it), to measure what it gives."""

import logging
import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from sqlalchemy.ext.asyncio import create_async_engine

from app.db.session import create_read_session_factory, create_session_factory, get_db_session, get_read_session
from app.main import create_app as create_service


def create_app() -> FastAPI:
    app = create_service()
    lever = os.environ["BENCH_LEVER"]
    if lever == "reads in a transaction":
        app.dependency_overrides[get_read_session] = get_db_session
        return app
    if lever == "no access line":
        logging.getLogger("app.access").setLevel(logging.WARNING)
        return app
    service_lifespan = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with service_lifespan(app):
            settings = app.state.settings
            options: dict[str, Any] = {"pool_pre_ping": True} if lever == "pre-ping" else {}
            connect_args: dict[str, Any] = {
                "timeout": settings.DATABASE_CONNECT_TIMEOUT,
                "command_timeout": settings.DATABASE_COMMAND_TIMEOUT,
            }
            if lever == "no statement caches":
                connect_args |= {"statement_cache_size": 0, "prepared_statement_cache_size": 0}
            engine = create_async_engine(
                settings.DATABASE_URL,
                pool_size=settings.DATABASE_POOL_SIZE,
                max_overflow=settings.DATABASE_MAX_OVERFLOW,
                pool_timeout=settings.DATABASE_POOL_TIMEOUT,
                hide_parameters=True,
                connect_args=connect_args,
                **options,
            )
            app.state.session_factory = create_session_factory(engine)
            app.state.read_session_factory = create_read_session_factory(engine)
            yield
            await engine.dispose()

    app.router.lifespan_context = lifespan
    return app
'''


def sessions(database_url: str) -> int:
    """Connections PostgreSQL has accepted to the database so far (this look-up's included)."""
    return int(sql(database_url, "SELECT sessions FROM pg_stat_database WHERE datname = current_database()")[0])


def figures(bench: Bench) -> Section:
    folder = bench.write_app("lever_app", LEVER_APP)
    servers = ["generated", *LEVERS]
    rounds: list[dict[str, dict[str, Any]]] = []
    with generated_resource(bench) as loads:
        for number in range(bench.rounds):
            turn = number % len(servers)
            measured: dict[str, dict[str, Any]] = {}
            for name in servers[turn:] + servers[:turn]:
                if name == "generated" or name in SETTINGS:
                    serving = bench.serve("levers-" + name.replace(" ", "-"), **SETTINGS.get(name, {}))
                else:
                    env = {"BENCH_LEVER": name}
                    serving = bench.serve(
                        "levers-" + name.replace(" ", "-"), "lever_app:create_app", folder, own_access_line=True, **env
                    )
                with serving as server:
                    measured[name] = {}
                    for route in ROUTES:
                        before = sessions(bench.env["DATABASE_URL"])
                        measured[name][route] = bench.throughput(server, loads[route])
                        # Less a look-up's own session (the counter moves as sessions end: at most one off).
                        opened = max(sessions(bench.env["DATABASE_URL"]) - before - 1, 0)
                        measured[name][route]["connections_per_1000"] = round(
                            opened / max(measured[name][route]["requests"], 1) * 1000, 1
                        )
                tidy(bench.env["DATABASE_URL"])
                for route, result in measured[name].items():
                    print(
                        f"round {number + 1}, levers, {name}, {route}: {result['rps']:.0f} req/s, "
                        f"{result['cpu_us_per_request']} CPU µs/req, {result['connections_per_1000']} new "
                        f"connections per 1000 requests, {result['errors']} errors"
                    )
            rounds.append({name: measured[name] for name in servers})
    gains: dict[str, dict[str, float]] = {}
    rows = []
    for lever in LEVERS:
        for route in ROUTES:
            rps = [r["generated"][route]["rps"] / r[lever][route]["rps"] for r in rounds]
            cpu = [r[lever][route]["cpu_us_per_request"] - r["generated"][route]["cpu_us_per_request"] for r in rounds]
            gains[f"{lever}, {route}"] = {
                "rps_ratio": round(statistics.median(rps), 3),
                "cpu_us": round(statistics.median(cpu), 1),
            }
            rows.append(
                [
                    lever,
                    f"`{route}`",
                    f"**{statistics.median(rps):.2f}**",
                    ", ".join(f"{ratio:.2f}" for ratio in rps),
                    f"{statistics.median(cpu):+.0f}",
                    f"{statistics.median(r[lever][route]['connections_per_1000'] for r in rounds):.1f}",
                ]
            )
    markdown = "\n\n".join(
        [
            "The generated resource of the section above, served by the service as rendered (**generated**) "
            "and by the same service with one choice undone:",
            "- **pre-ping**: the engine tests each pooled connection on checkout (`pool_pre_ping=True`, "
            "as 0.5.0 did; three round trips) instead of replacing, at no round trip, the connections "
            "PostgreSQL closed (a pool `checkout` listener);\n"
            "- **reads in a transaction**: `GET /{id}` on `DbSession` (BEGIN, the read, COMMIT) instead of "
            "`ReadSession` (the read alone, autocommit);\n"
            "- **no statement caches**: asyncpg's and SQLAlchemy's prepared-statement caches off, the pool "
            "kept (what `DATABASE_POOLER=transaction` turns off besides the pool): every statement prepared anew;\n"
            "- **no access line**: the service's JSON access line muted: its share of a route with a query;\n"
            "- **pool 5 + overflow 10**: SQLAlchemy's default pool shape (`DATABASE_POOL_SIZE=5`, "
            "`DATABASE_MAX_OVERFLOW=10`, as in 0.5.0) instead of 15 connections kept, the same most.",
            f"{bench.rounds} round(s), interleaved; the ratio is generated's requests per second over the "
            "variant's in the same round (above 1: the choice the service makes is the faster), the last "
            "column but one the server CPU µs per request the variant spends more, the last the PostgreSQL "
            "connections the variant opened per 1000 requests (`pg_stat_database.sessions`, warm-up "
            "included; medians of the rounds).",
            table(
                ["choice undone", "route", "req/s ratio (median)", "per round", "CPU µs/req more", "new connections"],
                rows,
            ),
            "generated opened "
            + ", ".join(
                f"{statistics.median(r['generated'][route]['connections_per_1000'] for r in rounds):.1f} on `{route}`"
                for route in ROUTES
            )
            + " new PostgreSQL connections per 1000 requests (warm-up included).",
            VERDICTS,
        ]
    )
    return Section("What each choice on the request path gives", markdown, {"rounds": rounds, "gains": gains})
