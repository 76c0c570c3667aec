"""The v1 router: a team's routers and routes registered on it are served and documented."""

import importlib.util

import pytest
from fastapi import APIRouter
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app


@pytest.fixture
def api_router(monkeypatch: pytest.MonkeyPatch) -> APIRouter:
    """A fresh ``api_router`` from router.py, which create_app includes; the test may extend it."""
    spec = importlib.util.find_spec("app.api.v1.router")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    router: APIRouter = module.api_router
    monkeypatch.setattr("app.main.api_router", router)
    return router


def widgets_router() -> APIRouter:
    widgets = APIRouter(prefix="/widgets", tags=["widgets"])

    @widgets.get("/{widget_id}")
    async def widget_by_id(widget_id: int) -> dict[str, int]:
        return {"widget_id": widget_id}

    return widgets


def test_a_registered_router_is_served_under_the_v1_prefix(api_router: APIRouter, settings: Settings) -> None:
    api_router.include_router(widgets_router())
    with TestClient(create_app(settings)) as client:
        assert client.get(settings.API_V1_PREFIX + "/widgets/5").json() == {"widget_id": 5}
        assert client.get(settings.API_V1_PREFIX + "/health").status_code == 200
        assert client.get("/widgets/5").status_code == 404


def test_every_v1_route_documents_the_error_envelope_for_500(api_router: APIRouter, settings: Settings) -> None:
    api_router.include_router(widgets_router())
    spec = create_app(settings).openapi()
    for path in ("/health", "/health/ready", "/widgets/{widget_id}"):
        error = spec["paths"][settings.API_V1_PREFIX + path]["get"]["responses"]["500"]
        assert error["content"]["application/json"]["schema"]["$ref"] == "#/components/schemas/ErrorResponse", path


def test_a_route_declared_on_the_v1_router_itself_is_served(api_router: APIRouter, settings: Settings) -> None:
    @api_router.get("/version")
    async def version() -> dict[str, str]:
        return {"version": settings.VERSION}

    with TestClient(create_app(settings)) as client:
        assert client.get(settings.API_V1_PREFIX + "/version").json() == {"version": settings.VERSION}
