"""Alembic's environment: migrations run on the app's database through an async engine.

The URL comes from the app's settings (the environment, then backend/.env), with the
same validation and the same safe error message. Code that already holds a connection
(the tests) hands it in as ``config.attributes["connection"]`` instead.
"""

import asyncio
from logging.config import fileConfig
from typing import Any

from alembic import context
from sqlalchemy import pool
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine

import app.models  # noqa: F401  (imports every model module: the metadata sees every table)
from app.core.config import Settings, load_settings_or_exit, mask_password
from app.db.base import Base

config = context.config
# The command line logs Alembic's progress to stderr; a caller that hands in its own
# connection keeps its own logging.
if config.config_file_name is not None and "connection" not in config.attributes:
    fileConfig(config.config_file_name, disable_existing_loggers=False)


def configure(**options: Any) -> None:
    # compare_type: a changed column type is a difference too (a new revision, or a failed check).
    context.configure(target_metadata=Base.metadata, compare_type=True, **options)


class DatabaseUnreachable(Exception):
    pass


def run_on(connection: Connection) -> None:
    configure(connection=connection)
    with context.begin_transaction():
        context.run_migrations()


def reason(exc: BaseException, timeout: float) -> str:
    if isinstance(exc, TimeoutError):
        return f"no answer within {timeout:g} s"
    return str(exc.orig if isinstance(exc, DBAPIError) else exc).partition("\n")[0] or type(exc).__name__


async def run_async(settings: Settings) -> None:
    # NullPool: one connection for this one run, closed at its end.
    engine = create_async_engine(
        settings.DATABASE_URL,
        poolclass=pool.NullPool,
        connect_args={"timeout": settings.DATABASE_CONNECT_TIMEOUT},
    )
    try:
        try:
            connection = await engine.connect()
        except (OSError, DBAPIError) as exc:
            where = mask_password(settings.DATABASE_URL)
            raise DatabaseUnreachable(f"{where}: {reason(exc, settings.DATABASE_CONNECT_TIMEOUT)}") from None
        try:
            await connection.run_sync(run_on)
        finally:
            await connection.close()
    finally:
        await engine.dispose()


if context.is_offline_mode():
    # `alembic upgrade head --sql`: the SQL script, for review or for a DBA to run.
    configure(url=load_settings_or_exit().DATABASE_URL, literal_binds=True, dialect_opts={"paramstyle": "named"})
    with context.begin_transaction():
        context.run_migrations()
elif (connection := config.attributes.get("connection")) is not None:
    run_on(connection)
else:
    try:
        asyncio.run(run_async(load_settings_or_exit()))
    except DatabaseUnreachable as exc:
        raise SystemExit(f"error: cannot connect to the database at {exc}") from None
