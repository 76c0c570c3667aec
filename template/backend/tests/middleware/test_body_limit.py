"""Request bodies over MAX_REQUEST_BODY_BYTES: 413 in the envelope, declared or streamed."""

from collections.abc import Callable, Iterator

import httpx2
import pytest
from fastapi import FastAPI, Request
from fastapi.testclient import TestClient
from pydantic import ValidationError

from app.core.config import Settings
from app.main import create_app
from app.middleware.request_id import REQUEST_ID_HEADER
from app.schemas.base import ErrorResponse

LIMIT = 1024


@pytest.fixture
def client(make_settings: Callable[..., Settings]) -> Iterator[TestClient]:
    app: FastAPI = create_app(make_settings(MAX_REQUEST_BODY_BYTES=LIMIT))

    @app.post("/size")
    async def size(request: Request) -> int:
        return len(await request.body())

    with TestClient(app) as client:
        yield client


def assert_too_large(response: httpx2.Response) -> None:
    assert response.status_code == 413, response.text
    assert ErrorResponse.model_validate(response.json()).error.code == "content_too_large"
    assert response.headers[REQUEST_ID_HEADER]


def test_a_body_at_the_limit_is_read(client: TestClient) -> None:
    response = client.post("/size", content=b"x" * LIMIT)
    assert response.status_code == 200 and response.json() == LIMIT


def test_a_declared_length_over_the_limit_is_refused_before_routing(client: TestClient) -> None:
    # No route reads it, and none even matches the method: the length alone decides.
    assert_too_large(client.post("/api/v1/health", content=b"x" * (LIMIT + 1)))


def test_a_chunked_body_over_the_limit_is_refused_as_it_is_read(client: TestClient) -> None:
    chunks = (b"x" * 400 for _ in range(3))  # no Content-Length: sent chunked
    response = client.post("/size", content=chunks)
    assert "content-length" not in response.request.headers
    assert_too_large(response)


def test_a_chunked_body_within_the_limit_is_read(client: TestClient) -> None:
    response = client.post("/size", content=(b"x" * 400 for _ in range(2)))
    assert response.status_code == 200 and response.json() == 800


def test_the_limit_is_one_mebibyte_and_at_least_one_byte(make_settings: Callable[..., Settings]) -> None:
    assert make_settings().MAX_REQUEST_BODY_BYTES == 1024 * 1024
    with pytest.raises(ValidationError, match="MAX_REQUEST_BODY_BYTES"):
        make_settings(MAX_REQUEST_BODY_BYTES=0)
