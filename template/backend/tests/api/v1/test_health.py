"""Liveness, and readiness that follows PostgreSQL and Redis down and back up."""

import socket
import time
from collections.abc import Callable, Iterator

import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app
from tests.conftest import Servers

READY = {"status": "ok", "database": "connected", "redis": "connected"}


def test_liveness(client: TestClient) -> None:
    response = client.get("/api/v1/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readiness_with_both_dependencies_up(client: TestClient) -> None:
    response = client.get("/api/v1/health/ready")
    assert response.status_code == 200
    assert response.json() == READY


@pytest.fixture
def managed_client(make_settings: Callable[..., Settings], managed_servers: Servers) -> Iterator[TestClient]:
    """A client on servers this session may stop; READINESS_TIMEOUT is short to keep the suite fast."""
    settings = make_settings(
        DATABASE_URL=managed_servers.database_url, REDIS_URL=managed_servers.redis_url, READINESS_TIMEOUT=1.0
    )
    with TestClient(create_app(settings)) as client:
        yield client


def wait_until_ready(client: TestClient, within: float) -> float:
    deadline = time.monotonic() + within
    started = time.monotonic()
    while True:
        response = client.get("/api/v1/health/ready")
        if response.status_code == 200:
            return time.monotonic() - started
        assert time.monotonic() < deadline, f"still {response.status_code} {response.json()} after {within} s"
        time.sleep(0.05)


@pytest.mark.parametrize(("dependency", "field"), [("postgres", "database"), ("redis", "redis")])
@pytest.mark.parametrize("how", ["stop", "kill"])
def test_readiness_reports_an_outage_and_recovers_without_restart(
    dependency: str, field: str, how: str, managed_client: TestClient, managed_servers: Servers
) -> None:
    server = getattr(managed_servers, dependency)
    assert managed_client.get("/api/v1/health/ready").json() == READY
    getattr(server, how)()
    try:
        started = time.monotonic()
        response = managed_client.get("/api/v1/health/ready")
        elapsed = time.monotonic() - started
        assert response.status_code == 503
        assert response.json() == {**READY, "status": "unavailable", field: "disconnected"}
        # A refused connection is an immediate answer, not a timeout.
        assert elapsed < 1.0, f"503 took {elapsed:.2f} s"
        assert managed_client.get("/api/v1/health").status_code == 200
    finally:
        server.start()
    wait_until_ready(managed_client, within=5.0)
    assert managed_client.get("/api/v1/health/ready").json() == READY


@pytest.fixture
def unresponsive_port() -> Iterator[int]:
    # Listens, so the kernel accepts connections, but never reads or answers.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(64)
        yield sock.getsockname()[1]


@pytest.mark.parametrize(
    ("variable", "template", "field"),
    [
        ("DATABASE_URL", "postgresql://postgres@127.0.0.1:{port}/postgres", "database"),
        ("REDIS_URL", "redis://127.0.0.1:{port}/0", "redis"),
    ],
)
def test_readiness_is_bounded_by_its_timeout_when_a_dependency_hangs(
    variable: str, template: str, field: str, unresponsive_port: int, make_settings: Callable[..., Settings]
) -> None:
    timeout = 0.5
    settings = make_settings(**{variable: template.format(port=unresponsive_port), "READINESS_TIMEOUT": timeout})
    with TestClient(create_app(settings)) as client:
        started = time.monotonic()
        response = client.get("/api/v1/health/ready")
        elapsed = time.monotonic() - started
    assert response.status_code == 503
    assert response.json()[field] == "disconnected"
    # The driver defaults would wait far longer; allow generous slack over the bound.
    assert elapsed < timeout + 1.5, f"503 took {elapsed:.2f} s with READINESS_TIMEOUT={timeout}"
