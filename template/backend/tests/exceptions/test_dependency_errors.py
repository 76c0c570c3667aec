"""PostgreSQL and Redis errors answer in the envelope: 409 for a conflict, 503 (with
Retry-After, within seconds) when a dependency cannot serve; each logged once, no secret."""

import errno
import socket
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app
from app.schemas.base import ErrorResponse
from tests.conftest import Servers
from tests.probe import SECRET_VALUE, probe_router

Logs = Callable[[], list[dict[str, Any]]]
UNAVAILABLE = {
    "code": "service_unavailable",
    "message": "Service temporarily unavailable, retry later",
    "details": None,
}


@pytest.fixture
def app(app: FastAPI) -> FastAPI:
    app.include_router(probe_router())
    return app


def problems(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What was logged about a request's failure: all but the access line, the test client's
    and the test servers' records."""
    return [r for r in records if r["logger"] not in {"app.access", "httpx2", "devtools.servers"}]


def assert_logged_once(records: list[dict[str, Any]], request_id: str, level: str, error: str) -> dict[str, Any]:
    logged = problems(records)
    assert len(logged) == 1, logged
    (record,) = logged
    assert (record["level"], record["request_id"]) == (level, request_id)
    assert error in record["error"], record
    # The test client logs its URLs, and the access line the query string (where only the
    # values of secret-looking parameters are masked): the value stays out of the rest.
    shown = [{k: v for k, v in r.items() if k != "query"} for r in records if r["logger"] != "httpx2"]
    assert SECRET_VALUE not in str(shown)
    return record


@pytest.mark.parametrize(
    ("path", "sqlstate"),
    [
        ("/probe/parents/1", "23505"),
        ("/probe/children/1?parent_id=99", "23503"),
        ("/probe/parents/1/kept-then-deleted", "23001"),
    ],
    ids=["unique", "foreign-key", "restrict"],
)
def test_a_constraint_violation_is_a_409(
    path: str, sqlstate: str, client: TestClient, scratch: str, read_logs: Logs
) -> None:
    client.post("/probe/parents/1")
    read_logs()
    response = client.post(path)
    assert response.status_code == 409
    assert response.json() == {
        "error": {
            "code": "conflict",
            "message": "The request conflicts with the current state of the resource",
            "details": None,
        }
    }
    assert_logged_once(read_logs(), response.headers["X-Request-ID"], "INFO", f"(SQLSTATE {sqlstate})")


def test_other_database_errors_are_a_500_logged_without_values(
    client: TestClient, scratch: str, read_logs: Logs
) -> None:
    # A CHECK violation is input the route should have refused: a bug. Its log record
    # has the error and the stack, but not the driver's DETAIL line, which quotes the row.
    read_logs()
    response = client.post("/probe/parents/-1")
    assert response.status_code == 500
    assert response.json()["error"]["code"] == "internal_error"
    record = assert_logged_once(read_logs(), response.headers["X-Request-ID"], "ERROR", "CheckViolationError")
    assert "(SQLSTATE 23514)" in record["error"]
    assert "in add_parent" in record["stack"], "the stack shows where the failing statement ran"


def test_a_data_error_is_a_500_logged_without_the_value(client: TestClient, read_logs: Logs) -> None:
    # PostgreSQL's message for bad data quotes the value: only the class and SQLSTATE are logged.
    read_logs()
    response = client.get("/probe/number", params={"value": SECRET_VALUE})
    assert response.status_code == 500
    assert_logged_once(read_logs(), response.headers["X-Request-ID"], "ERROR", "(SQLSTATE 22P02)")


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (ConnectionResetError(errno.ECONNRESET, "Connection reset by peer"), 503),
        (OSError(errno.EHOSTUNREACH, "No route to host"), 503),
        (socket.gaierror(socket.EAI_NONAME, "Name or service not known"), 503),
        (TimeoutError(), 503),
        (FileNotFoundError(errno.ENOENT, "No such file or directory"), 500),
    ],
    ids=["reset", "unreachable", "unknown-host", "timeout", "local-file"],
)
def test_network_errors_are_503_and_other_os_errors_a_500(error: OSError, status: int, settings: Settings) -> None:
    # The driver reports a connection it could not make with the socket's own error;
    # an OSError that is not about the network stays a 500.
    app = create_app(settings)

    @app.get("/fail")
    async def fail() -> None:
        raise error

    with TestClient(app, raise_server_exceptions=False) as client:
        response = client.get("/fail")
    assert response.status_code == status
    assert ("Retry-After" in response.headers) is (status == 503)


@pytest.fixture
def managed_client(make_settings: Callable[..., Settings], managed_servers: Servers) -> Iterator[TestClient]:
    """A client on servers this test may stop, with a pool of one connection and a short wait for it."""
    settings = make_settings(
        DATABASE_URL=managed_servers.database_url,
        REDIS_URL=managed_servers.redis_url,
        DATABASE_POOL_SIZE=1,
        DATABASE_MAX_OVERFLOW=0,
        DATABASE_POOL_TIMEOUT=0.5,
    )
    app = create_app(settings)
    app.include_router(probe_router())
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def assert_unavailable(response: Any, elapsed: float, within: float) -> None:
    assert response.status_code == 503, response.text
    assert response.json() == {"error": UNAVAILABLE}
    assert response.headers["Retry-After"] == "5"
    assert elapsed < within, f"503 after {elapsed:.2f} s"


def wait_for(client: TestClient, path: str, within: float = 10.0) -> None:
    deadline = time.monotonic() + within
    while client.get(path).status_code != 200:
        assert time.monotonic() < deadline, f"{path} still failing after {within} s"
        time.sleep(0.1)


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_database_down_is_a_quick_503_and_recovers(
    how: str, managed_client: TestClient, managed_servers: Servers, read_logs: Logs
) -> None:
    assert managed_client.get("/probe/sleep?seconds=0").status_code == 200
    assert managed_servers.postgres is not None
    getattr(managed_servers.postgres, how)()
    try:
        read_logs()
        started = time.monotonic()
        response = managed_client.get("/probe/sleep?seconds=0")
        assert_unavailable(response, time.monotonic() - started, within=3.0)
        assert_logged_once(read_logs(), response.headers["X-Request-ID"], "WARNING", "Error")
    finally:
        managed_servers.postgres.start()
    wait_for(managed_client, "/probe/sleep?seconds=0")


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_the_first_request_after_a_database_restart_answers_200(
    how: str, managed_client: TestClient, managed_servers: Servers
) -> None:
    # The pool's one connection was closed by the restart: no route may get it.
    assert managed_client.get("/probe/sleep?seconds=0").status_code == 200
    assert managed_servers.postgres is not None
    getattr(managed_servers.postgres, how)()
    managed_servers.postgres.start()
    for path in ("/probe/sleep?seconds=0", "/probe/one-transaction/read-session"):
        response = managed_client.get(path)
        assert response.status_code == 200, f"{path}: {response.text}"


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_connection_lost_mid_request_is_a_503(
    how: str, managed_client: TestClient, managed_servers: Servers, read_logs: Logs
) -> None:
    assert managed_servers.postgres is not None
    responses: list[Any] = []
    request = threading.Thread(target=lambda: responses.append(managed_client.get("/probe/sleep?seconds=10")))
    read_logs()
    started = time.monotonic()
    request.start()
    time.sleep(1.0)  # the query is running
    getattr(managed_servers.postgres, how)()
    try:
        request.join(timeout=15)
        assert responses, "the request hung"
        assert_unavailable(responses[0], time.monotonic() - started, within=5.0)
        assert_logged_once(read_logs(), responses[0].headers["X-Request-ID"], "WARNING", "SQLSTATE 08003")
    finally:
        managed_servers.postgres.start()
    wait_for(managed_client, "/probe/sleep?seconds=0")


def test_pool_exhausted_is_a_503_after_the_pool_timeout(managed_client: TestClient, read_logs: Logs) -> None:
    # The pool's one connection is held by a slow request; the next waits DATABASE_POOL_TIMEOUT (0.5 s).
    responses: list[Any] = []
    holder = threading.Thread(target=lambda: responses.append(managed_client.get("/probe/sleep?seconds=2")))
    holder.start()
    time.sleep(0.5)
    read_logs()
    started = time.monotonic()
    response = managed_client.get("/probe/sleep?seconds=0")
    elapsed = time.monotonic() - started
    assert_unavailable(response, elapsed, within=2.0)
    assert elapsed >= 0.45, f"answered after {elapsed:.2f} s, before the pool timeout"
    assert_logged_once(read_logs(), response.headers["X-Request-ID"], "WARNING", "TimeoutError")
    holder.join(timeout=10)
    assert [r.status_code for r in responses] == [200]


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_redis_down_is_a_quick_503_and_recovers(
    how: str, managed_client: TestClient, managed_servers: Servers, read_logs: Logs
) -> None:
    assert managed_client.get("/probe/cache").status_code == 200
    assert managed_servers.redis is not None
    getattr(managed_servers.redis, how)()
    try:
        read_logs()
        started = time.monotonic()
        response = managed_client.get("/probe/cache")
        assert_unavailable(response, time.monotonic() - started, within=3.0)
        assert_logged_once(read_logs(), response.headers["X-Request-ID"], "WARNING", "ConnectionError")
    finally:
        managed_servers.redis.start()
    wait_for(managed_client, "/probe/cache")


def test_the_errors_are_documented_with_the_envelope(app: FastAPI) -> None:
    spec = app.openapi()
    responses = spec["paths"]["/probe/parents/{parent_id}"]["post"]["responses"]
    for status in ("409", "503"):
        schema = responses[status]["content"]["application/json"]["schema"]
        assert schema["$ref"].rsplit("/", 1)[-1] == ErrorResponse.__name__
    assert responses["503"]["headers"]["Retry-After"]["schema"] == {"type": "integer"}
    assert set(spec["paths"]["/probe/cache"]["get"]["responses"]) >= {"503"}
