"""Test-only tables and routes that exercise the request session and dependency errors.

The tables live in a schema of their own ("scratch"), outside what the migrations
manage, so that the migration checks never see them.
"""

import logging

from fastapi import APIRouter
from sqlalchemy import func, select, text
from sqlalchemy import table as sql_table
from sqlalchemy.ext.asyncio import AsyncSession, create_async_engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.pool import NullPool

from app.api.deps import DbSession, ReadSession, RedisClient
from app.exceptions import DATABASE_ERRORS, REDIS_ERRORS, BadRequestException

logger = logging.getLogger(__name__)

# Written into every row: it must never show up in a log line or a response.
SECRET_VALUE = "probe-secret-value-4711"

SCRATCH_DDL = [
    "CREATE SCHEMA scratch",
    "CREATE TABLE scratch.parents (id integer PRIMARY KEY CHECK (id > 0), name text NOT NULL UNIQUE)",
    "CREATE TABLE scratch.children (id integer PRIMARY KEY, parent_id integer NOT NULL REFERENCES scratch.parents)",
    "CREATE TABLE scratch.keepers (parent_id integer NOT NULL REFERENCES scratch.parents ON DELETE RESTRICT)",
    # Checked at COMMIT, not at INSERT: the way to make a commit, not a statement, fail.
    "CREATE TABLE scratch.codes (code text UNIQUE DEFERRABLE INITIALLY DEFERRED, note text)",
]
SCRATCH_TRUNCATE = "TRUNCATE scratch.children, scratch.keepers, scratch.parents, scratch.codes"


class ProbeBase(DeclarativeBase):
    """Mapped test-only tables, apart from app.db.Base: the migrations never see them."""


class Parent(ProbeBase):
    __tablename__ = "parents"
    __table_args__ = ({"schema": "scratch"},)

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str]


async def execute(database_url: str, *statements: str) -> None:
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            for statement in statements:
                await connection.execute(text(statement))
    finally:
        await engine.dispose()


async def committed_rows(database_url: str, table: str) -> int:
    """Rows of scratch.TABLE that a connection of its own sees: the committed ones."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            count = select(func.count()).select_from(sql_table(table, schema="scratch"))
            return int((await connection.execute(count)).scalar_one())
    finally:
        await engine.dispose()


async def same_transaction(session: AsyncSession) -> bool:
    statement = text("SELECT pg_current_xact_id()")
    return bool((await session.scalar(statement)) == (await session.scalar(statement)))


def probe_router() -> APIRouter:
    router = APIRouter(prefix="/probe")

    @router.post("/parents/{parent_id}", responses=DATABASE_ERRORS)
    async def add_parent(parent_id: int, session: DbSession, name: str = SECRET_VALUE) -> dict[str, int]:
        statement = text("INSERT INTO scratch.parents (id, name) VALUES (:id, :name)")
        await session.execute(statement, {"id": parent_id, "name": name})
        return {"id": parent_id}

    @router.post("/parents/{parent_id}/then-fail", responses=DATABASE_ERRORS)
    async def add_parent_then_fail(parent_id: int, session: DbSession) -> None:
        statement = text("INSERT INTO scratch.parents (id, name) VALUES (:id, :name)")
        await session.execute(statement, {"id": parent_id, "name": SECRET_VALUE})
        raise BadRequestException("Refused after writing")

    @router.post("/children/{child_id}", responses=DATABASE_ERRORS)
    async def add_child(child_id: int, parent_id: int, session: DbSession) -> dict[str, int]:
        statement = text("INSERT INTO scratch.children (id, parent_id) VALUES (:id, :parent_id)")
        await session.execute(statement, {"id": child_id, "parent_id": parent_id})
        return {"id": child_id}

    @router.post("/parents/{parent_id}/kept-then-deleted", responses=DATABASE_ERRORS)
    async def delete_kept_parent(parent_id: int, session: DbSession) -> None:
        # ON DELETE RESTRICT: a parent that a keeper refers to cannot be deleted.
        await session.execute(text("INSERT INTO scratch.keepers (parent_id) VALUES (:id)"), {"id": parent_id})
        await session.execute(text("DELETE FROM scratch.parents WHERE id = :id"), {"id": parent_id})

    @router.post("/codes/{code}/twice", responses=DATABASE_ERRORS)
    async def add_code_twice(code: str, session: DbSession) -> dict[str, str]:
        statement = text("INSERT INTO scratch.codes (code, note) VALUES (:code, :note)")
        await session.execute(statement, [{"code": code, "note": SECRET_VALUE}] * 2)
        return {"code": code}  # the duplicate surfaces only at the commit, after this

    @router.get("/number", responses=DATABASE_ERRORS)
    async def number(value: str, session: DbSession) -> dict[str, int]:
        result = await session.execute(text("SELECT CAST(CAST(:value AS text) AS integer)"), {"value": value})
        return {"number": result.scalar_one()}

    @router.get("/sleep", responses=DATABASE_ERRORS)
    async def sleep(seconds: float, session: DbSession) -> dict[str, float]:
        await session.execute(text("SELECT pg_sleep(:seconds)"), {"seconds": seconds})
        return {"slept": seconds}

    # Whether two statements of the session ran in one transaction (one transaction ID).
    @router.get("/one-transaction/db-session", responses=DATABASE_ERRORS)
    async def one_transaction_db_session(session: DbSession) -> bool:
        return await same_transaction(session)

    @router.get("/one-transaction/read-session", responses=DATABASE_ERRORS)
    async def one_transaction_read_session(session: ReadSession) -> bool:
        return await same_transaction(session)

    @router.post("/parents/{parent_id}/on-read-session", responses=DATABASE_ERRORS)
    async def add_parent_on_read_session(parent_id: int, session: ReadSession) -> dict[str, int]:
        session.add(Parent(id=parent_id, name=SECRET_VALUE))
        return {"id": parent_id}

    @router.get("/parents", responses=DATABASE_ERRORS)
    async def parents(session: ReadSession) -> list[int]:
        return list((await session.scalars(text("SELECT id FROM scratch.parents ORDER BY id"))).all())

    @router.get("/both/{key}", responses={**DATABASE_ERRORS, **REDIS_ERRORS})
    async def both(key: str, session: DbSession, redis: RedisClient) -> dict[str, int | str | None]:
        logger.info("Probe reads PostgreSQL and Redis")
        number = (await session.execute(text("SELECT 41 + 1"))).scalar_one()
        return {"number": number, "cached": await redis.get(f"probe:{key}")}

    @router.get("/cache", responses=REDIS_ERRORS)
    async def cache(redis: RedisClient) -> dict[str, bool]:
        return {"found": await redis.get("probe") is not None}

    return router
