"""Async engine (asyncpg), session factory and the request-scoped session dependency."""

from collections.abc import AsyncIterator
from typing import Annotated, Any
from uuid import uuid4

from fastapi import Depends, Request
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

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
        return create_async_engine(settings.DATABASE_URL, poolclass=NullPool, connect_args=connect_args)
    return create_async_engine(
        settings.DATABASE_URL,
        pool_size=settings.DATABASE_POOL_SIZE,
        max_overflow=settings.DATABASE_MAX_OVERFLOW,
        # Pooled connections die with a database restart; test them on checkout.
        pool_pre_ping=True,
        connect_args=connect_args,
    )


def _unique_statement_name() -> str:
    return f"__asyncpg_{uuid4()}__"


def create_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping_database(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


def get_engine(request: Request) -> AsyncEngine:
    engine: AsyncEngine = request.app.state.engine
    return engine


async def get_db_session(request: Request) -> AsyncIterator[AsyncSession]:
    session_factory: async_sessionmaker[AsyncSession] = request.app.state.session_factory
    async with session_factory() as session:
        yield session


Engine = Annotated[AsyncEngine, Depends(get_engine)]
DbSession = Annotated[AsyncSession, Depends(get_db_session)]
