"""A generated resource's reads and writes against the previous release, bare FastAPI and raw
asyncpg, on real PostgreSQL; and the round trips to PostgreSQL of each.

`make resource` (the agent example of the service's README) in the bench's service and in the
previous release rendered beside it; one table, migrated by this service's revision (both
generators write the same table), with ROWS rows. Servers, interleaved (the order turns each round):
- generated: the service as `make api` serves it, without --reload;
- the previous release (PREVIOUS_RELEASE), its own resource, served the same way;
- bare: FastAPI with the same four routes on the app and nothing else: the same model,
  schemas and engine (the service's ``create_engine`` with its settings), a session per
  request that the writes commit, and uvicorn's default access log;
- asyncpg: FastAPI with the two reads on an asyncpg pool, the same queries without
  SQLAlchemy: the physical reference.
Each is loaded on GET /{id}, the first list page, POST and PATCH (reads first); after each,
the rows its writes added are deleted and the table vacuumed, so that every server reads the
same table. The generated files are removed from the service again at the end.
"""

import asyncio
import statistics
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from checks.support import READINESS, request

from figures import profile
from figures.common import PREVIOUS_RELEASE, Bench, Load, Section, first_number, rendered_release, table, verdict
from figures.round_trips import counting_proxy

NAME, FIELDS = "agent", "name:str:unique description:text? max_sessions:int enabled:bool"
ROWS = 1000
READ_GOAL = 1.5  # the generated reads' requests per second over the previous release's
WRITE_GOAL = 1.3  # the same for the writes
BARE_TARGET = 0.95  # the generated reads over bare FastAPI's
BARE_APP = '''"""Bare FastAPI: the generated resource's four routes on the app, the same queries, nothing else."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated
from uuid import UUID

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from app.core.config import load_settings
from app.db.session import create_engine
from app.models.agent import Agent
from app.schemas.agent import AgentCreate, AgentRead, AgentUpdate
from app.schemas.base import PaginatedResponse


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    engine = create_engine(load_settings())
    app.state.sessions = async_sessionmaker(engine, expire_on_commit=False)
    yield
    await engine.dispose()


async def get_session(request: Request) -> AsyncIterator[AsyncSession]:
    async with request.app.state.sessions() as session:
        yield session


Session = Annotated[AsyncSession, Depends(get_session)]


def create_app() -> FastAPI:
    app = FastAPI(lifespan=lifespan)

    @app.get("/api/v1/health")
    async def liveness() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v1/agents/{agent_id}")
    async def get_agent(agent_id: UUID, session: Session) -> AgentRead:
        agent = await session.get(Agent, agent_id)
        if agent is None:
            raise HTTPException(404)
        return AgentRead.model_validate(agent)

    @app.get("/api/v1/agents")
    async def list_agents(
        session: Session, page: int = Query(1, ge=1), page_size: int = Query(20, ge=1, le=100)
    ) -> PaginatedResponse[AgentRead]:
        query = select(Agent).order_by(Agent.created_at, Agent.id)
        total = await session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
        rows = await session.scalars(query.limit(page_size).offset((page - 1) * page_size))
        items = [AgentRead.model_validate(row) for row in rows]
        return PaginatedResponse[AgentRead](items=items, total=total or 0, page=page, page_size=page_size)

    @app.post("/api/v1/agents", status_code=201)
    async def create_agent(body: AgentCreate, session: Session) -> AgentRead:
        agent = Agent(**body.model_dump())
        session.add(agent)
        await session.commit()
        return AgentRead.model_validate(agent)

    @app.patch("/api/v1/agents/{agent_id}")
    async def update_agent(agent_id: UUID, changes: AgentUpdate, session: Session) -> AgentRead:
        agent = await session.get(Agent, agent_id)
        if agent is None:
            raise HTTPException(404)
        for field, value in changes.model_dump(exclude_unset=True).items():
            setattr(agent, field, value)
        await session.commit()
        return AgentRead.model_validate(agent)

    return app
'''
ASYNCPG_APP = '''"""FastAPI with the generated resource's two reads on an asyncpg pool: the same SQL, no SQLAlchemy."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from uuid import UUID

import asyncpg
from fastapi import FastAPI, HTTPException, Query, Request

from app.core.config import load_settings
from app.schemas.agent import AgentRead
from app.schemas.base import PaginatedResponse

COLUMNS = "id, name, description, max_sessions, enabled, created_at, updated_at"


async def keep(connection: asyncpg.Connection) -> None:
    """No reset query when a connection goes back to the pool: the routes change no session state."""


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings = load_settings()
    app.state.pool = await asyncpg.create_pool(
        settings.DATABASE_URL.replace("postgresql+asyncpg://", "postgresql://"),
        min_size=settings.DATABASE_POOL_SIZE,
        max_size=settings.DATABASE_POOL_SIZE + settings.DATABASE_MAX_OVERFLOW,
        command_timeout=settings.DATABASE_COMMAND_TIMEOUT,
        reset=keep,
    )
    yield
    await app.state.pool.close()


def create_app() -> FastAPI:
    app = FastAPI(lifespan=lifespan)

    @app.get("/api/v1/health")
    async def liveness() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/api/v1/agents/{agent_id}")
    async def get_agent(agent_id: UUID, request: Request) -> AgentRead:
        row = await request.app.state.pool.fetchrow(f"SELECT {COLUMNS} FROM agents WHERE id = $1", agent_id)
        if row is None:
            raise HTTPException(404)
        return AgentRead.model_validate(dict(row))

    @app.get("/api/v1/agents")
    async def list_agents(
        request: Request, page: int = Query(1, ge=1), page_size: int = Query(20, ge=1, le=100)
    ) -> PaginatedResponse[AgentRead]:
        async with request.app.state.pool.acquire() as connection:
            total = await connection.fetchval("SELECT count(*) FROM agents")
            rows = await connection.fetch(
                f"SELECT {COLUMNS} FROM agents ORDER BY created_at, id LIMIT $1 OFFSET $2",
                page_size,
                (page - 1) * page_size,
            )
        items = [AgentRead.model_validate(dict(row)) for row in rows]
        return PaginatedResponse[AgentRead](items=items, total=total, page=page, page_size=page_size)

    return app
'''
SEED = """
INSERT INTO agents (name, description, max_sessions, enabled)
SELECT 'agent ' || n, CASE WHEN n % 2 = 0 THEN 'agent number ' || n END, n, n % 3 = 0
FROM generate_series(1, {rows}) AS n
RETURNING id
"""
JSON = {"Content-Type": "application/json"}
# A session closed after the response (bare FastAPI's) sends its ROLLBACK after the answer: counted once it is in.
SETTLE = 0.3
# The writes' names start so: what is deleted after each server.
WRITTEN = "bench "
READS, WRITES = ["GET /{id}", "first list page"], ["POST", "PATCH"]
# The statements each needs, and BEGIN and COMMIT for a write: the round-trip goal.
NEEDED = {"GET /{id}": 1, "first list page": 2, "POST": 3, "PATCH": 4, "readiness": 1}


@dataclass(frozen=True)
class Contender:
    name: str
    bench: Bench
    app: str
    folder: Path | None  # where the app's module is, for apps of the bench's own
    routes: list[str]  # the labels of LOADS it serves


def run(command: list[str], backend: Path, env: dict[str, str]) -> None:
    done = subprocess.run(command, cwd=backend, env=env, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")


def sql(database_url: str, statement: str, *, autocommit: bool = False) -> list[Any]:
    """STATEMENT's first column, on a connection of its own."""
    from sqlalchemy import make_url, text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def execute() -> list[Any]:
        options = {"isolation_level": "AUTOCOMMIT"} if autocommit else {}
        engine = create_async_engine(make_url(database_url).set(drivername="postgresql+asyncpg"), **options)
        try:
            async with engine.begin() as connection:
                result = await connection.execute(text(statement))
                return list(result.scalars().all()) if result.returns_rows else []
        finally:
            await engine.dispose()

    return asyncio.run(execute())


def tidy(database_url: str) -> None:
    """The table as seeded again: the writes' rows deleted, the updates' dead rows vacuumed."""
    sql(database_url, f"DELETE FROM agents WHERE name LIKE '{WRITTEN}%'")
    sql(database_url, "VACUUM ANALYZE agents", autocommit=True)


def generate(backend: Path, env: dict[str, str]) -> list[Path]:
    """`make resource` in BACKEND, with its own generator: the files it wrote (router.py aside)."""
    before = {path for path in backend.rglob("*.py") if ".venv" not in path.parts}
    run([str(backend / ".venv" / "bin" / "python"), "-m", "devtools.resource", NAME, FIELDS], backend, env)
    return sorted({path for path in backend.rglob("*.py") if ".venv" not in path.parts} - before)


@contextmanager
def generated_resource(bench: Bench) -> Iterator[dict[str, Load]]:
    """The resource generated in the service, migrated and seeded: the loads of each route.
    The service's files are as they were again afterwards."""
    router = bench.backend / "app/api/v1/router.py"
    before = router.read_text()
    written = generate(bench.backend, bench.env)
    alembic = [str(bench.backend / ".venv" / "bin" / "python"), "-m", "alembic"]
    try:
        run([*alembic, "upgrade", "head"], bench.backend, bench.env)
        ids = [str(one) for one in sql(bench.env["DATABASE_URL"], SEED.format(rows=ROWS))]
        # Vacuumed now, so that autovacuum does not start on the new rows while the first server runs.
        sql(bench.env["DATABASE_URL"], "VACUUM ANALYZE agents", autocommit=True)
        # Unique within a run; a run of its own in every load, so names never repeat.
        token = uuid.uuid4().hex[:8]
        yield {
            "GET /{id}": Load((f"/api/v1/agents/{ids[len(ids) // 2]}",)),
            "first list page": Load(("/api/v1/agents",)),
            "POST": Load(
                ("/api/v1/agents",),
                "POST",
                f'{{"name": "{WRITTEN}{token} {{n}}", "description": null, "max_sessions": 1, "enabled": true}}',
            ),
            # Every row in turn, so that the updates seldom wait for each other's row locks.
            "PATCH": Load(tuple(f"/api/v1/agents/{one}" for one in ids), "PATCH", '{"max_sessions": {n}}'),
        }
    finally:
        # The table goes with its revision: another group may generate the resource again.
        run([*alembic, "downgrade", "base"], bench.backend, bench.env)
        for path in written:
            path.unlink(missing_ok=True)
        router.write_text(before)


def contenders(bench: Bench) -> tuple[list[Contender], str]:
    """The servers compared, and what the previous release is (or why it is missing)."""
    version, ref = PREVIOUS_RELEASE
    previous, commit = rendered_release(bench, ref, f"release-{version}")
    every = [
        Contender("generated", bench, "app.main:create_app", None, READS + WRITES),
        Contender(
            "bare",
            bench,
            "bare_resource_app:create_app",
            bench.write_app("bare_resource_app", BARE_APP),
            READS + WRITES,
        ),
        Contender(
            "asyncpg",
            bench,
            "asyncpg_resource_app:create_app",
            bench.write_app("asyncpg_resource_app", ASYNCPG_APP),
            READS,
        ),
    ]
    if previous is None:
        return every, f"{version}: {commit}"
    generate(previous.backend, previous.env)  # its own generator; the table is this service's
    every.insert(1, Contender(version, previous, "app.main:create_app", None, READS + WRITES))
    return every, f"{version} ({commit})"


def count_round_trips(contender: Contender, loads: dict[str, Load], calls: int = 20) -> dict[str, float]:
    """Round trips to PostgreSQL per request of each route (and readiness, for the services),
    after a few requests that fill the statement caches."""
    bench, counts = contender.bench, {}
    port = urlsplit(bench.env["DATABASE_URL"]).port
    with counting_proxy(port or 5432) as proxy:
        proxied_url = bench.env["DATABASE_URL"].replace(f":{port}/", f":{proxy.port}/")
        served = {"DATABASE_URL": proxied_url}
        with bench.serve(f"round-trips-{contender.name}", contender.app, contender.folder, **served) as server:
            routes = {label: loads[label] for label in contender.routes}
            if contender.folder is None:
                routes["readiness"] = Load((READINESS,))
            for label, load in routes.items():
                statuses, base = set(), first_number()
                for n in range(calls + 3):
                    if n == 3:
                        time.sleep(SETTLE)
                        before = proxy.round_trips
                    path, body = load.nth(base + n)
                    statuses.add(request(server.port, path, load.method, JSON, body=body).status)
                if not statuses <= {200, 201}:
                    raise SystemExit(f"round trips, {contender.name} {label}: answered {statuses}")
                time.sleep(SETTLE)
                counts[label] = round((proxy.round_trips - before) / calls, 2)
    return counts


def figures(bench: Bench) -> Section:
    with generated_resource(bench) as loads:
        servers, previous_label = contenders(bench)
        database_url = bench.env["DATABASE_URL"]
        round_trips = {}
        for contender in servers:
            round_trips[contender.name] = count_round_trips(contender, loads)
            tidy(database_url)
            print(f"round trips, {contender.name}: {round_trips[contender.name]}")
        rounds = measure(bench, servers, loads)
        apps = {c.name: (c.app, c.folder) for c in servers if c.bench is bench}
        found = {label: profile.profiles(bench, loads[label].paths[0], apps) for label in READS}
    section = report(bench, servers, previous_label, round_trips, rounds)
    section.markdown += "".join("\n\n" + profile.markdown(by_app, label) for label, by_app in found.items())
    section.data["profile"] = found
    return section


def measure(bench: Bench, servers: list[Contender], loads: dict[str, Load]) -> list[dict[str, dict[str, Any]]]:
    rounds: list[dict[str, dict[str, Any]]] = []
    for number in range(bench.rounds):
        turn = number % len(servers)
        measured: dict[str, dict[str, Any]] = {}
        for contender in servers[turn:] + servers[:turn]:
            with contender.bench.serve(f"resource-{contender.name}", contender.app, contender.folder) as server:
                measured[contender.name] = {
                    label: contender.bench.throughput(server, loads[label]) for label in contender.routes
                }
            tidy(bench.env["DATABASE_URL"])
            for label, result in measured[contender.name].items():
                print(
                    f"round {number + 1}, {contender.name}, {label}: {result['rps']:.0f} req/s, "
                    f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, "
                    f"{result['cpu_us_per_request']} CPU µs/req, {result['errors']} errors"
                )
        rounds.append({contender.name: measured[contender.name] for contender in servers})
    return rounds


def report(
    bench: Bench,
    servers: list[Contender],
    previous_label: str,
    round_trips: dict[str, dict[str, float]],
    rounds: list[dict[str, dict[str, Any]]],
) -> Section:
    version = PREVIOUS_RELEASE[0]
    names = [contender.name for contender in servers]
    # (label, the other server, the goal or None where the ratio is reported only)
    comparisons = [(label, version, READ_GOAL) for label in READS] + [(label, version, WRITE_GOAL) for label in WRITES]
    comparisons += [(label, "bare", BARE_TARGET) for label in READS] + [(label, "bare", None) for label in WRITES]
    comparisons += [(label, "asyncpg", None) for label in READS]
    ratios: dict[str, list[float]] = {}
    ratio_rows = []
    for label, other, goal in comparisons:
        if other not in names:
            ratio_rows.append([f"generated / {other}, `{label}`", "", "", "", "not measured"])
            continue
        key = f"generated / {other}, {label}"
        ratios[key] = [round(r["generated"][label]["rps"] / r[other][label]["rps"], 3) for r in rounds]
        median = statistics.median(ratios[key])
        cpu = statistics.median(
            r["generated"][label]["cpu_us_per_request"] / r[other][label]["cpu_us_per_request"] for r in rounds
        )
        print(f"{key} (req/s): median {median:.2f} of {ratios[key]}")
        ratio_rows.append(
            [
                f"generated / {other}, `{label}`",
                f"**{median:.2f}**",
                ", ".join(f"{ratio:.2f}" for ratio in ratios[key]),
                f"{cpu:.2f}",
                f"≥ {goal}" if goal else "reported",
                verdict(median >= goal) if goal else "",
            ]
        )
    labels = [*READS, *WRITES, "readiness"]
    trip_rows = [[name, *(round_trips[name].get(label, "") for label in labels)] for name in names]
    trip_rows.append(["goal: at most", *(NEEDED[label] for label in labels)])
    trips_met = all(round_trips["generated"][label] <= NEEDED[label] for label in labels)
    rows = [
        [
            number,
            name,
            label,
            f"{f['rps']:.0f}",
            f"{f['p50_ms']:.2f} / {f['p99_ms']:.2f}",
            f["cpu_us_per_request"],
            f["errors"],
        ]
        for number, measured in enumerate(rounds, 1)
        for name, by_label in measured.items()
        for label, f in by_label.items()
    ]
    markdown = "\n\n".join(
        [
            f'A resource from `make resource NAME={NAME} FIELDS="{FIELDS}"`, migrated, with {ROWS} rows in '
            "PostgreSQL: `GET /api/v1/agents/{id}` (one row), the first list page (`GET /api/v1/agents`: 20 "
            "rows and the count), `POST /api/v1/agents` (a new row each time) and `PATCH /api/v1/agents/{id}` "
            f"(a new `max_sessions` for each of the {ROWS} rows in turn).",
            "- **generated**: the service with the resource, as `make api` serves it without `--reload`.\n"
            f"- **{version}**: the previous release, {previous_label}, rendered from its commit with the "
            "default answers, its own `make resource`, served the same way on the same table.\n"
            "- **bare**: FastAPI with the same four routes on the app and nothing else: the same model, "
            "schemas and engine (the service's `create_engine` and settings), a session per request from "
            "`async_sessionmaker` (the writes commit), the same queries; uvicorn's default access log.\n"
            "- **asyncpg**: FastAPI with the two reads on an asyncpg pool (as large as the engine's, no "
            "reset query on release), the same SQL without SQLAlchemy: the physical reference.",
            f"{bench.rounds} round(s), the servers interleaved (the order turns each round), reads first; "
            "after each server its writes' rows are deleted and the table vacuumed. A ratio is the generated "
            "routes' requests per second over the other's in the same round (the CPU column: server CPU µs "
            "per request, generated over the other, lower is cheaper).",
            table(["comparison", "median ratio", "per round", "CPU µs/req ratio", "goal", "verdict"], ratio_rows),
            "Round trips to PostgreSQL per request, counted on the wire by a proxy between each server and "
            "PostgreSQL (a Sync, Flush or simple Query message the client sends and waits on: a cached "
            "`SELECT` and a `BEGIN` are one each), after three requests that fill the statement caches:",
            table(["server", *labels], trip_rows),
            "Goal: a request needs no more round trips than its statements, and a write the BEGIN and "
            "COMMIT of its transaction (a read one statement, the list two, readiness one; POST an INSERT, "
            f"PATCH a SELECT and an UPDATE): generated, {verdict(trips_met)}.",
            table(["round", "server", "route", "req/s", "p50 / p99 ms", "server CPU µs/req", "errors"], rows),
        ]
    )
    data = {
        "rows": ROWS,
        "previous_release": previous_label,
        "round_trips": round_trips,
        "rounds": rounds,
        "ratios": ratios,
        "median_ratios": {key: round(statistics.median(values), 3) for key, values in ratios.items()},
    }
    return Section("Generated resource: reads and writes against the previous release and bare FastAPI", markdown, data)
