"""Every response carries X-Request-ID; only well-formed incoming IDs are reused; the access line."""

import logging
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app


@pytest.fixture
def failing_app(settings: Settings) -> FastAPI:
    app = create_app(settings)

    @app.get("/boom")
    async def boom() -> None:
        raise RuntimeError("boom")

    return app


@pytest.mark.parametrize(
    ("method", "path", "status"),
    [
        ("GET", "/api/v1/health", 200),
        ("GET", "/no-such-route", 404),
        ("POST", "/api/v1/health", 405),
        ("GET", "/boom", 500),
    ],
)
def test_every_response_has_a_request_id(method: str, path: str, status: int, failing_app: FastAPI) -> None:
    with TestClient(failing_app, raise_server_exceptions=False) as client:
        response = client.request(method, path)
    assert response.status_code == status
    assert uuid.UUID(response.headers["X-Request-ID"])


def test_validation_error_response_has_a_request_id(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/items/{item_id}")
    async def item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    with TestClient(app) as client:
        response = client.get("/items/not-a-number")
    assert response.status_code == 422
    assert uuid.UUID(response.headers["X-Request-ID"])


def test_ids_are_unique_random_uuids(client: TestClient) -> None:
    ids = {client.get("/api/v1/health").headers["X-Request-ID"] for _ in range(20)}
    assert len(ids) == 20
    for request_id in ids:
        parsed = uuid.UUID(request_id)
        assert str(parsed) == request_id
        assert parsed.version == 4 and parsed.variant == uuid.RFC_4122


ACCESS_FIELDS = {
    "message",
    "method",
    "path",
    "query",
    "status",
    "client",
    "http_version",
    "user_agent",
    "duration_ms",
    "request_id",
    "timestamp",
    "level",
    "logger",
    "module",
}


def test_one_access_line_per_request_with_every_field(
    client: TestClient, read_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    read_logs()
    response = client.get("/api/v1/health/ready")
    (access,) = [r for r in read_logs() if r["logger"] == "app.access"]
    assert set(access) == ACCESS_FIELDS
    assert access["message"] == "GET /api/v1/health/ready 200"
    assert (access["method"], access["path"], access["status"]) == ("GET", "/api/v1/health/ready", 200)
    assert access["request_id"] == response.headers["X-Request-ID"]
    assert access["level"] == "INFO" and access["module"] == "request_id"
    assert isinstance(access["duration_ms"], float) and access["duration_ms"] > 0
    assert (access["query"], access["client"], access["http_version"]) == ("", "testclient", "1.1")
    assert access["user_agent"] == "testclient"
    logged_at = datetime.fromisoformat(access["timestamp"])
    assert logged_at.tzinfo is not None and abs(datetime.now(UTC) - logged_at) < timedelta(minutes=1)


def test_the_access_line_is_an_ordinary_log_record(
    client: TestClient, read_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    # Tracing integrations add their IDs through logging's record factory: the access line gets them too.
    default_factory = logging.getLogRecordFactory()

    def with_trace_id(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = default_factory(*args, **kwargs)
        record.trace_id = "trace-1"
        return record

    logging.setLogRecordFactory(with_trace_id)
    try:
        read_logs()
        client.get("/api/v1/health")
        (access,) = [r for r in read_logs() if r["logger"] == "app.access"]
    finally:
        logging.setLogRecordFactory(default_factory)
    assert access["trace_id"] == "trace-1"


@pytest.mark.parametrize(
    ("query", "logged"),
    [
        ("page=2&sort=name", "page=2&sort=name"),
        ("api_key=k1&page=2", "api_key=***&page=2"),
        (
            "access_token=t1&PASSWORD=p1&client_secret=s1&x-api-key=k2",
            "access_token=***&PASSWORD=***&client_secret=***&x-api-key=***",
        ),
        ("X-Amz-Signature=abc&sig=def&signup=yes", "X-Amz-Signature=***&sig=***&signup=yes"),
        ("api%5Fkey=k3&token&token=", "api%5Fkey=***&token&token="),  # encoded names too; nothing to mask
    ],
)
def test_the_access_line_has_the_query_with_secret_values_masked(
    query: str, logged: str, client: TestClient, read_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    read_logs()
    client.get(f"/api/v1/health?{query}")
    (access,) = [r for r in read_logs() if r["logger"] == "app.access"]
    assert access["query"] == logged
    assert access["path"] == "/api/v1/health" and access["message"] == "GET /api/v1/health 200"


def test_the_access_line_has_the_client_address_its_http_version_and_user_agent(
    settings: Settings, read_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    # The address the server put in the ASGI scope: the peer, or what a trusted proxy forwarded.
    with TestClient(create_app(settings), client=("203.0.113.7", 50123)) as client:
        read_logs()
        client.get("/api/v1/health", headers={"User-Agent": "probe/1.0"})
    (access,) = [r for r in read_logs() if r["logger"] == "app.access"]
    assert (access["client"], access["user_agent"], access["http_version"]) == ("203.0.113.7", "probe/1.0", "1.1")


@pytest.mark.parametrize("incoming", [str(uuid.uuid4()), "req-42", "trace.abc_DEF-1", "a" * 64])
def test_a_well_formed_incoming_id_is_reused(
    incoming: str, client: TestClient, read_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    read_logs()
    response = client.get("/api/v1/health", headers={"X-Request-ID": incoming})
    assert response.headers["X-Request-ID"] == incoming
    access = next(r for r in read_logs() if r["logger"] == "app.access")
    assert access["request_id"] == incoming


@pytest.mark.parametrize(
    "incoming",
    [
        "a" * 65,
        "has space",
        "semi;colon",
        "<script>alert(1)</script>",
        "",
        "x" * 10_000,
    ],
)
def test_a_malformed_incoming_id_is_replaced_and_never_echoed(
    incoming: str, client: TestClient, read_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    read_logs()
    response = client.get("/api/v1/health", headers={"X-Request-ID": incoming})
    assert response.status_code == 200
    assert uuid.UUID(response.headers["X-Request-ID"])
    if incoming:
        assert incoming not in str(read_logs())
        assert incoming not in response.text


def test_non_ascii_incoming_id_is_replaced(client: TestClient) -> None:
    response = client.get("/api/v1/health", headers=[(b"X-Request-ID", "идентификатор".encode())])
    assert uuid.UUID(response.headers["X-Request-ID"])
