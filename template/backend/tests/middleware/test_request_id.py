"""Task 4.5: every response carries X-Request-ID; only well-formed incoming IDs are reused."""

import logging
import time
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app
from app.middleware.request_id import AccessRecord


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


def test_the_access_record_is_a_complete_log_record() -> None:
    record = AccessRecord("GET", "/api/v1/health", 200, 1.23456)
    ordinary = logging.LogRecord("app.access", logging.INFO, __file__, 1, "%s %s %d", (), None)
    assert set(ordinary.__dict__) <= set(record.__dict__)
    assert (record.levelname, record.levelno, record.name) == ("INFO", logging.INFO, "app.access")
    assert record.getMessage() == "GET /api/v1/health 200"
    assert (record.method, record.path, record.status, record.duration_ms) == ("GET", "/api/v1/health", 200, 1.235)
    assert abs(record.created - time.time()) < 5
    # Any handler's formatter can use it, as with a record from Logger.info.
    text = logging.Formatter("%(asctime)s %(module)s %(funcName)s %(message)s").format(record)
    assert text.endswith(" request_id __call__ GET /api/v1/health 200")


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
