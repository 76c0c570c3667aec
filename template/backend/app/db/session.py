"""Async engine (asyncpg), session factories and the request-scoped session dependencies."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any
from uuid import uuid4

from fastapi import Request
from sqlalchemy import event, text
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, NullPool, PoolProxiedConnection

from app.core.config import Settings


def create_engine(settings: Settings) -> AsyncEngine:
    # Creating the engine opens no connection, so the app starts even while the
    # database is down; readiness reports it until it is back.
    connect_args: dict[str, Any] = {
        "timeout": settings.DATABASE_CONNECT_TIMEOUT,
        # Default limit for one statement, so a stuck query cannot hold a connection forever.
        "command_timeout": settings.DATABASE_COMMAND_TIMEOUT,
    }
    if settings.DATABASE_POOLER == "transaction":
        # PgBouncer in transaction mode gives each transaction any server connection, and a
        # prepared statement exists only on the one that prepared it: no statement caches
        # (asyncpg's, SQLAlchemy's), unique names, and the pooler as the only pool. This is
        # the recipe of SQLAlchemy's asyncpg dialect docs ("Prepared Statement Name with PGBouncer").
        connect_args |= {
            "statement_cache_size": 0,
            "prepared_statement_cache_size": 0,
            "prepared_statement_name_func": _unique_statement_name,
        }
        return create_async_engine(
            settings.DATABASE_URL, poolclass=NullPool, hide_parameters=True, connect_args=connect_args
        )
    engine = create_async_engine(
        settings.DATABASE_URL,
        pool_size=settings.DATABASE_POOL_SIZE,
        max_overflow=settings.DATABASE_MAX_OVERFLOW,
        # With every connection busy, a request waits this long, then answers 503.
        pool_timeout=settings.DATABASE_POOL_TIMEOUT,
        # Error messages (and so logged tracebacks) leave out the statement's values.
        hide_parameters=True,
        connect_args=connect_args,
    )
    # Pooled connections die with a database restart: the pool replaces them on checkout.
    event.listen(engine.sync_engine, "checkout", _replace_closed_connection)
    return engine


def _replace_closed_connection(
    dbapi_connection: DBAPIConnection, record: ConnectionPoolEntry, proxy: PoolProxiedConnection
) -> None:
    # asyncpg saw the server close it in the pool (a restart, a terminated backend); the pool
    # then connects anew. No round trip, where pool_pre_ping's test costs three.
    connection = proxy.driver_connection  # asyncpg's
    if connection is None or connection.is_closed():
        raise DisconnectionError("PostgreSQL closed the connection while it was in the pool")


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid4()}__"


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    # Objects stay readable after the commit: a route's response is often built from
    # them, and reloading expired attributes would need another query.
    return async_sessionmaker(engine, expire_on_commit=False)


def create_read_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for routes that only read: each statement runs on its own (autocommit).

    No BEGIN and COMMIT around the reads: two round trips to PostgreSQL fewer a request.
    The statements of one session do not share a snapshot, and it never autoflushes;
    routes that write, or whose reads must agree, take ``DbSession``.
    """
    autocommit = engine.execution_options(isolation_level="AUTOCOMMIT")
    return async_sessionmaker(autocommit, expire_on_commit=False, autoflush=False)


@asynccontextmanager
async def unit_of_work(session_factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session whose work is committed when the block succeeds and rolled back when it raises.

    The request-scoped session is one of these; use it directly in background jobs and
    scripts: ``async with unit_of_work(session_factory) as session: ...``.
    """
    async with session_factory() as session:
        try:
            yield session
        except Exception:
            await session.rollback()
            raise
        await session.commit()


async def ping_database(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        # Autocommit: the check is one statement, without a BEGIN and ROLLBACK around it.
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("SELECT 1"))


def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


async def get_db_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session: committed when the route returns, rolled back when it raises.

    Depend on it with ``scope="function"`` (as ``DbSession`` does): the commit then runs
    before the response is sent, so a failed commit answers with its error (409, 503)
    instead of following a 200 that was already on its way.
    """
    session_factory: async_sessionmaker[AsyncSession] = request.app.state.session_factory
    async with unit_of_work(session_factory) as session:
        yield session


async def get_read_session(request: Request) -> AsyncIterator[AsyncSession]:
    """The request's session for reads (``create_read_session_factory``): nothing to commit.

    A route that adds, changes or deletes objects on it fails (a 500) instead of answering
    as if they were saved: such a route takes ``DbSession``.
    """
    read_session_factory: async_sessionmaker[AsyncSession] = request.app.state.read_session_factory
    async with read_session_factory() as session:
        yield session
        if session.new or session.dirty or session.deleted:
            raise RuntimeError("Objects changed on a ReadSession are never written: write on a DbSession")
