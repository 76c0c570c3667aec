"""Databases for tests: a fresh one per need, and Alembic commands run on it."""

import asyncio
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from alembic.config import Config
from sqlalchemy import Connection, make_url, text
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

ALEMBIC_INI = Path(__file__).resolve().parents[1] / "alembic.ini"


async def execute_autocommit(server_url: str, statement: str) -> None:
    engine = create_async_engine(server_url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
    try:
        async with engine.connect() as connection:
            await connection.execute(text(statement))
    finally:
        await engine.dispose()


@contextmanager
def temporary_database(server_url: str) -> Iterator[str]:
    """The URL of a new, empty database on SERVER_URL's server, dropped afterwards."""
    url = make_url(server_url).set(drivername="postgresql+asyncpg")
    name = f"test_{uuid.uuid4().hex[:16]}"
    maintenance = url.render_as_string(hide_password=False)
    asyncio.run(execute_autocommit(maintenance, f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(hide_password=False)
    finally:
        # FORCE: a connection a failed test left open must not keep the database alive.
        asyncio.run(execute_autocommit(maintenance, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def run_alembic(database_url: str, action: Callable[[Config], Any]) -> None:
    """Runs an Alembic command, ACTION(config), on DATABASE_URL, as `alembic` in backend/ would.

    The connection is handed to alembic/env.py (the way it takes from tests), so no
    setting is read; whatever the command changes is committed.
    """

    def run(connection: Connection) -> None:
        config = Config(ALEMBIC_INI)
        config.attributes["connection"] = connection
        action(config)

    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(run)
    finally:
        await engine.dispose()
