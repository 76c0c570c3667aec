"""One JSON error envelope for every error path."""

from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI, HTTPException
from fastapi.testclient import TestClient
from pydantic import BaseModel

from app.core.config import Settings
from app.exceptions import (
    AppException,
    BadRequestException,
    ForbiddenException,
    InternalServerException,
    NotFoundException,
)
from app.main import create_app

ALLOWED_ORIGIN = "http://localhost:3000"


class Item(BaseModel):
    name: str
    quantity: int


@pytest.fixture
def app(settings: Settings) -> FastAPI:
    app = create_app(settings.model_copy(update={"CORS_ORIGINS": [ALLOWED_ORIGIN]}))

    @app.get("/users/{user_id}")
    async def user_not_found(user_id: int) -> dict[str, int]:
        raise NotFoundException("User not found")

    @app.get("/raise/{name}")
    async def raise_named(name: str) -> None:
        exceptions: dict[str, AppException] = {
            "bad_request": BadRequestException("Quantity must be positive", details={"field": "quantity"}),
            "forbidden": ForbiddenException(),
            "internal": InternalServerException("Upstream failed"),
        }
        raise exceptions[name]

    @app.get("/http-exception")
    async def http_exception() -> None:
        raise HTTPException(status_code=409, detail="Already exists")

    @app.post("/items")
    async def echo_item(item: Item) -> Item:
        return item

    @app.get("/crash")
    async def crash() -> None:
        raise RuntimeError("database password is hunter2")

    return app


@pytest.fixture
def client(app: FastAPI) -> Iterator[TestClient]:
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


def test_not_found_exception(client: TestClient) -> None:
    response = client.get("/users/1")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "User not found", "details": None}}


@pytest.mark.parametrize(
    ("name", "status", "code", "message", "details"),
    [
        ("bad_request", 400, "bad_request", "Quantity must be positive", {"field": "quantity"}),
        ("forbidden", 403, "forbidden", "Forbidden", None),
        ("internal", 500, "internal_error", "Upstream failed", None),
    ],
)
def test_app_exceptions(name: str, status: int, code: str, message: str, details: Any, client: TestClient) -> None:
    response = client.get(f"/raise/{name}")
    assert response.status_code == status
    assert response.json() == {"error": {"code": code, "message": message, "details": details}}


def test_exception_classes_carry_status_and_code() -> None:
    exc = NotFoundException("User not found")
    assert (exc.status_code, exc.code, exc.detail, exc.error_code) == (404, "not_found", "User not found", "not_found")
    assert issubclass(BadRequestException, AppException)


def test_unknown_route(client: TestClient) -> None:
    response = client.get("/nope")
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "not_found", "message": "Not Found", "details": None}}


def test_wrong_method_keeps_the_allow_header(client: TestClient) -> None:
    response = client.delete("/api/v1/health")
    assert response.status_code == 405
    assert response.json()["error"]["code"] == "method_not_allowed"
    assert response.headers["allow"] == "GET"


def test_the_allow_header_names_the_methods_of_every_route_on_the_path(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/things/{thing_id}")
    async def thing_by_id(thing_id: int) -> int:
        return thing_id

    @app.delete("/things/{thing_id}")
    async def delete_thing(thing_id: int) -> None: ...

    with TestClient(app) as client:
        response = client.put("/things/1")
    assert response.status_code == 405
    assert response.headers["allow"] == "DELETE, GET"


def test_http_exception_from_a_route(client: TestClient) -> None:
    response = client.get("/http-exception")
    assert response.status_code == 409
    assert response.json() == {"error": {"code": "conflict", "message": "Already exists", "details": None}}


def test_validation_error_lists_fields_without_echoing_input(client: TestClient) -> None:
    response = client.post("/items", json={"name": "secret-name-value", "quantity": "many-secret"})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"] == [
        {"loc": ["body", "quantity"], "message": error["details"][0]["message"], "type": "int_parsing"}
    ]
    assert "integer" in error["details"][0]["message"]
    assert "secret" not in response.text


def test_malformed_json_is_a_structured_422(client: TestClient) -> None:
    response = client.post("/items", content=b'{"name": ', headers={"Content-Type": "application/json"})
    assert response.status_code == 422
    assert response.json()["error"]["code"] == "validation_error"


def test_unhandled_exception_is_a_generic_500_with_headers_and_a_logged_traceback(
    client: TestClient, read_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    read_logs()
    response = client.get("/crash", headers={"Origin": ALLOWED_ORIGIN})
    assert response.status_code == 500
    assert response.json() == {"error": {"code": "internal_error", "message": "Internal server error", "details": None}}
    assert "hunter2" not in response.text and "Traceback" not in response.text
    # The 500 is produced inside the request-ID and CORS middleware.
    request_id = response.headers["X-Request-ID"]
    assert response.headers["access-control-allow-origin"] == ALLOWED_ORIGIN

    records = read_logs()
    tracebacks = [r for r in records if "exc_info" in r]
    assert len(tracebacks) == 1
    (logged,) = tracebacks
    assert logged["level"] == "ERROR"
    assert logged["request_id"] == request_id
    assert "Traceback (most recent call last)" in logged["exc_info"]
    assert "RuntimeError: database password is hunter2" in logged["exc_info"]
    access = next(r for r in records if r["logger"] == "app.access")
    assert (access["status"], access["request_id"]) == (500, request_id)
