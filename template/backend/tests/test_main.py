"""The factory, and a lifespan that opens, logs and closes both clients."""

import asyncio
from collections.abc import Callable
from typing import Any

import asyncpg
import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from redis.asyncio import Redis

from app.core.config import Settings
from app.main import create_app
from devtools.servers import free_port
from tests.conftest import Servers


def closed_port_url(template: str) -> str:
    # A port that was free a moment ago: connecting to it is refused at once.
    return template.format(port=free_port())


def test_create_app_builds_a_fresh_app_each_time(settings: Settings) -> None:
    first, second = create_app(settings), create_app(settings)
    assert isinstance(first, FastAPI) and first is not second
    assert first.state.settings is settings
    assert {"/api/v1/health", "/api/v1/health/ready"} <= set(first.openapi()["paths"])


def test_lifespan_logs_startup_and_shutdown_with_masked_urls(
    make_settings: Callable[..., Settings],
    managed_servers: Servers,
    read_logs: Callable[[], list[dict[str, Any]]],
) -> None:
    # The test servers trust local connections, so any password works; the logs must not show it.
    database_url = managed_servers.database_url.replace("://postgres@", "://postgres:hunter2-secret@")
    redis_url = managed_servers.redis_url.replace("redis://", "redis://default:hunter2-secret@")
    settings = make_settings(DATABASE_URL=database_url, REDIS_URL=redis_url)
    with TestClient(create_app(settings)):
        started = read_logs()
    stopped = read_logs()

    messages = [record["message"] for record in started]
    assert "Database engine created" in messages
    assert "Redis client created" in messages
    assert "Database connection established" in messages
    assert "Redis connection established" in messages
    created = next(r for r in started if r["message"] == "Database engine created")
    assert created["database_url"].startswith("postgresql+asyncpg://")
    assert "hunter2-secret" not in str(started + stopped)
    assert [r["message"] for r in stopped if r["logger"] == "app.main"] == [
        "Database engine disposed",
        "Redis client closed",
    ]


async def _open_connections(servers: Servers) -> tuple[int, int]:
    postgres = await asyncpg.connect(servers.database_url)
    try:
        database = await postgres.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend' AND pid <> pg_backend_pid()"
        )
    finally:
        await postgres.close()
    redis = Redis.from_url(servers.redis_url)
    try:
        clients = await redis.client_list()
    finally:
        await redis.aclose()
    return int(database), len(clients) - 1  # minus this connection


def test_shutdown_closes_every_connection(make_settings: Callable[..., Settings], managed_servers: Servers) -> None:
    # Counted on the servers themselves, which only this test session uses.
    settings = make_settings(DATABASE_URL=managed_servers.database_url, REDIS_URL=managed_servers.redis_url)
    with TestClient(create_app(settings)) as client:
        assert client.get("/api/v1/health/ready").status_code == 200
        assert asyncio.run(_open_connections(managed_servers)) >= (1, 1)
    assert asyncio.run(_open_connections(managed_servers)) == (0, 0)


def test_app_starts_while_dependencies_are_down(
    make_settings: Callable[..., Settings], read_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    settings = make_settings(
        DATABASE_URL=closed_port_url("postgresql://postgres@127.0.0.1:{port}/postgres"),
        REDIS_URL=closed_port_url("redis://127.0.0.1:{port}/0"),
    )
    with TestClient(create_app(settings)) as client:
        assert client.get("/api/v1/health").status_code == 200
        ready = client.get("/api/v1/health/ready")
    assert ready.status_code == 503
    assert ready.json() == {"status": "unavailable", "database": "disconnected", "redis": "disconnected"}
    warnings = [r["message"] for r in read_logs() if r["level"] == "WARNING"]
    assert any(m.startswith("Database is unreachable at startup") for m in warnings)
    assert any(m.startswith("Redis is unreachable at startup") for m in warnings)


@pytest.mark.parametrize("enabled", [True, False])
def test_docs_can_be_turned_off(enabled: bool, make_settings: Callable[..., Settings]) -> None:
    with TestClient(create_app(make_settings(DOCS_ENABLED=enabled))) as client:
        for path in ("/docs", "/redoc", "/openapi.json"):
            assert client.get(path).status_code == (200 if enabled else 404)
