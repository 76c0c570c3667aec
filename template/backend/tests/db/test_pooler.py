"""DATABASE_POOLER: the engine's settings for PgBouncer in transaction mode, on the real PostgreSQL."""

import asyncio
import re
from collections.abc import Callable

import pytest
from sqlalchemy import text
from sqlalchemy.pool import NullPool, QueuePool

from app.core.config import Settings
from app.db.session import create_engine

UNIQUE_NAME = re.compile(r"__asyncpg_[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}__")


async def prepared_statement_names(settings: Settings) -> list[str]:
    engine = create_engine(settings)
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))
            result = await connection.execute(text("SELECT name FROM pg_prepared_statements"))
            return sorted(result.scalars())
    finally:
        await engine.dispose()


def test_transaction_pooler_uses_unique_statement_names_and_no_pool(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(DATABASE_POOLER="transaction")
    assert isinstance(create_engine(settings).pool, NullPool)  # the pooler is the pool
    names = asyncio.run(prepared_statement_names(settings))
    # Each statement prepared under a name no other connection through the pooler can have.
    assert names and all(UNIQUE_NAME.fullmatch(name) for name in names), names


def test_without_a_pooler_statements_are_cached_on_a_pool(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings()
    assert settings.DATABASE_POOLER == "none"
    assert isinstance(create_engine(settings).pool, QueuePool)
    names = asyncio.run(prepared_statement_names(settings))
    assert names and not any(UNIQUE_NAME.fullmatch(name) for name in names), names


def test_an_unknown_pooler_mode_is_refused(make_settings: Callable[..., Settings]) -> None:
    with pytest.raises(ValueError, match="'none' or 'transaction'"):
        make_settings(DATABASE_POOLER="session")
