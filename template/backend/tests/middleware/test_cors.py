"""CORS from settings; a refused preflight gets the error envelope."""

from collections.abc import Callable

import pytest
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app

ALLOWED = "http://localhost:3000"
OTHER = "https://evil.example.com"


@pytest.fixture
def cors_client(make_settings: Callable[..., Settings]) -> TestClient:
    return TestClient(create_app(make_settings(CORS_ORIGINS=f"{ALLOWED},https://app.example.com")))


def preflight(client: TestClient, origin: str) -> dict[str, str]:
    response = client.options(
        "/api/v1/health",
        headers={
            "Origin": origin,
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization,content-type",
        },
    )
    return {k.lower(): v for k, v in response.headers.items()}


def test_preflight_from_an_allowed_origin_gets_the_cors_headers(cors_client: TestClient) -> None:
    headers = preflight(cors_client, ALLOWED)
    assert headers["access-control-allow-origin"] == ALLOWED
    assert headers["access-control-allow-credentials"] == "true"
    assert "GET" in headers["access-control-allow-methods"]
    assert "authorization" in headers["access-control-allow-headers"].lower()
    assert "x-request-id" in headers


def test_preflight_from_another_origin_gets_no_cors_headers(cors_client: TestClient) -> None:
    response = cors_client.options("/api/v1/health", headers={"Origin": OTHER, "Access-Control-Request-Method": "GET"})
    assert response.status_code == 400
    assert not [name for name in response.headers if name.lower().startswith("access-control-")]
    assert response.json()["error"] == {
        "code": "cors_preflight_refused",
        "message": "Disallowed CORS origin",
        "details": None,
    }
    assert "x-request-id" in response.headers


def test_simple_request_exposes_the_request_id_to_browsers(cors_client: TestClient) -> None:
    response = cors_client.get("/api/v1/health", headers={"Origin": ALLOWED})
    assert response.headers["access-control-allow-origin"] == ALLOWED
    assert "x-request-id" in response.headers["access-control-expose-headers"].lower()


def test_origins_come_from_the_environment(
    monkeypatch: pytest.MonkeyPatch, make_settings: Callable[..., Settings]
) -> None:
    monkeypatch.setenv("CORS_ORIGINS", '["https://dashboard.example.com"]')
    client = TestClient(create_app(make_settings()))
    assert preflight(client, "https://dashboard.example.com")["access-control-allow-origin"] == (
        "https://dashboard.example.com"
    )
    assert "access-control-allow-origin" not in preflight(client, ALLOWED)
