"""A generated resource's reads against bare FastAPI running the same queries, on real PostgreSQL.

`make resource` (the agent example of the service's README) in the bench's service, migrated, with ROWS rows.
Two servers, interleaved (the order turns each round), each loaded on two paths:
- generated: the service as `make api` serves it, without --reload;
- bare: FastAPI with the same two routes on the app and nothing else: the same model,
  response schemas and engine (the service's ``create_engine`` with its settings), a
  session per request, and uvicorn's default access log.
The generated files are removed again at the end.
"""

import asyncio
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from figures.common import Bench, Section, table, verdict

NAME, FIELDS = "agent", "name:str:unique description:text? max_sessions:int enabled:bool"
ROWS = 1000
TARGET = 0.95  # the generated routes' requests per second over bare FastAPI's, for both
BARE_APP = '''"""Bare FastAPI: the generated resource's two reads on the app, the same queries, nothing else."""

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
from app.schemas.agent import AgentRead
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

    return app
'''
SEED = """
INSERT INTO agents (name, description, max_sessions, enabled)
SELECT 'agent ' || n, CASE WHEN n % 2 = 0 THEN 'agent number ' || n END, n, n % 3 = 0
FROM generate_series(1, {rows}) AS n
RETURNING id
"""
SERVERS = ["generated", "bare"]


def run(command: list[str], backend: Path, env: dict[str, str]) -> None:
    done = subprocess.run(command, cwd=backend, env=env, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stdout}{done.stderr}")


def seed(database_url: str) -> str:
    """ROWS agents (the database sets their ids and timestamps); returns the id of one in the middle."""
    from sqlalchemy import make_url, text
    from sqlalchemy.ext.asyncio import create_async_engine

    async def insert() -> Any:
        engine = create_async_engine(make_url(database_url).set(drivername="postgresql+asyncpg"))
        try:
            async with engine.begin() as connection:
                ids = (await connection.execute(text(SEED.format(rows=ROWS)))).scalars().all()
                await connection.execute(text("ANALYZE agents"))
                return ids[len(ids) // 2]
        finally:
            await engine.dispose()

    return str(asyncio.run(insert()))


def generated_resource(bench: Bench) -> tuple[list[Path], str]:
    """The resource generated in the service: the files written, and router.py as it was."""
    backend = bench.backend
    before = {path for path in backend.rglob("*.py") if ".venv" not in path.parts}
    router = (backend / "app/api/v1/router.py").read_text()
    run([sys.executable, "-m", "devtools.resource", NAME, FIELDS], backend, bench.env)
    written = sorted({path for path in backend.rglob("*.py") if ".venv" not in path.parts} - before)
    return written, router


def figures(bench: Bench) -> Section:
    written, router = generated_resource(bench)
    try:
        run([sys.executable, "-m", "alembic", "upgrade", "head"], bench.backend, bench.env)
        one = seed(bench.env["DATABASE_URL"])
        bare = bench.write_app("bare_resource_app", BARE_APP)
        return measure(bench, bare, {"GET /{id}": f"/api/v1/agents/{one}", "first list page": "/api/v1/agents"})
    finally:
        for path in written:
            path.unlink(missing_ok=True)
        (bench.backend / "app/api/v1/router.py").write_text(router)


def measure(bench: Bench, bare: Path, paths: dict[str, str]) -> Section:
    rounds: list[dict[str, dict[str, dict[str, Any]]]] = []
    for number in range(bench.rounds):
        turn = number % len(SERVERS)
        measured: dict[str, dict[str, dict[str, Any]]] = {}
        for name in SERVERS[turn:] + SERVERS[:turn]:
            app, path = ("app.main:create_app", None) if name == "generated" else ("bare_resource_app:create_app", bare)
            with bench.serve(f"resource-{name}", app, path) as server:
                measured[name] = {label: bench.throughput(server, url) for label, url in paths.items()}
            for label, result in measured[name].items():
                print(
                    f"round {number + 1}, {name}, {label}: {result['rps']:.0f} req/s, p50 {result['p50_ms']:.2f} ms, "
                    f"p99 {result['p99_ms']:.2f} ms, {result['cpu_us_per_request']} CPU µs/req, "
                    f"{result['errors']} errors"
                )
        rounds.append({name: measured[name] for name in SERVERS})
    ratios = {
        label: [round(one["generated"][label]["rps"] / one["bare"][label]["rps"], 3) for one in rounds]
        for label in paths
    }
    medians = {label: round(statistics.median(values), 3) for label, values in ratios.items()}
    for label, median in medians.items():
        print(f"generated / bare, {label} (req/s): median {median:.2f} of {ratios[label]}")

    ratio_rows = [
        [
            f"generated / bare, `{label}`",
            f"**{medians[label]:.2f}**",
            ", ".join(f"{ratio:.2f}" for ratio in ratios[label]),
            f"≥ {TARGET}",
            verdict(medians[label] >= TARGET),
        ]
        for label in paths
    ]
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
        for name, by_path in measured.items()
        for label, f in by_path.items()
    ]
    markdown = "\n\n".join(
        [
            f'A resource from `make resource NAME={NAME} FIELDS="{FIELDS}"`, migrated, with {ROWS} rows in '
            "PostgreSQL: `GET /api/v1/agents/{id}` (one row) and the first list page (`GET /api/v1/agents`: "
            "20 rows and the count).",
            "- **generated**: the service with the resource, as `make api` serves it without `--reload`.\n"
            "- **bare**: FastAPI with the same two routes on the app and nothing else: the same model, response "
            "schemas and engine (the service's `create_engine` and settings), a session per request from "
            "`async_sessionmaker`, the same queries; uvicorn's default access log.",
            f"{bench.rounds} round(s), the servers interleaved (the order turns each round); a ratio is the "
            "generated routes' requests per second over bare FastAPI's in the same round.",
            table(["comparison", "median ratio", "per round", "target", "verdict"], ratio_rows),
            table(["round", "server", "route", "req/s", "p50 / p99 ms", "server CPU µs/req", "errors"], rows),
        ]
    )
    data = {"rows": ROWS, "rounds": rounds, "ratios": ratios, "median_ratios": medians}
    return Section("Generated resource: reads against bare FastAPI", markdown, data)
