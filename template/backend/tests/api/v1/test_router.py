"""The v1 routers: registered once, each included in the app one level deep."""

from typing import Any

import pytest
from fastapi import APIRouter, Depends, FastAPI
from fastapi.testclient import TestClient

from app.api.v1.router import RouterGroup, api_router
from app.core.config import Settings
from app.main import create_app

calls: list[str] = []


def group_dependency() -> None:
    calls.append("group")


def router_dependency() -> None:
    calls.append("router")


def widgets_router() -> APIRouter:
    widgets = APIRouter(prefix="/widgets", tags=["widgets"])

    @widgets.get("/{widget_id}", responses={418: {"description": "A teapot"}})
    async def get_widget(widget_id: int) -> dict[str, int]:
        return {"widget_id": widget_id}

    return widgets


GROUP_OPTIONS: dict[str, Any] = {
    "prefix": "/group",
    "tags": ["group"],
    "dependencies": [Depends(group_dependency)],
    "responses": {500: {"description": "Group 500"}, 503: {"description": "Group 503"}},
}
ROUTER_OPTIONS: dict[str, Any] = {
    "prefix": "/shop",
    "tags": ["shop"],
    "dependencies": [Depends(router_dependency)],
    "responses": {503: {"description": "Router 503"}},
    "deprecated": True,
}


def test_each_router_is_one_entry_in_the_app() -> None:
    group = RouterGroup(**GROUP_OPTIONS)
    group.include_router(widgets_router(), **ROUTER_OPTIONS)
    group.include_router(widgets_router(), prefix="/other")
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    group.include_in(app, prefix="/api/v9")

    assert len(app.routes) == 2  # no router wrapping the two
    with TestClient(app) as client:
        assert client.get("/api/v9/group/shop/widgets/3").json() == {"widget_id": 3}
        assert client.get("/api/v9/group/other/widgets/4").json() == {"widget_id": 4}
        assert client.get("/api/v9/shop/widgets/3").status_code == 404


def test_options_combine_as_nested_api_routers_combine_them() -> None:
    group = RouterGroup(**GROUP_OPTIONS)
    group.include_router(widgets_router(), **ROUTER_OPTIONS)
    grouped = FastAPI()
    group.include_in(grouped, prefix="/api/v9")

    v9 = APIRouter(**GROUP_OPTIONS)
    v9.include_router(widgets_router(), **ROUTER_OPTIONS)
    nested = FastAPI()
    nested.include_router(v9, prefix="/api/v9")

    path = "/api/v9/group/shop/widgets/{widget_id}"
    operation = grouped.openapi()["paths"][path]["get"]
    assert operation == nested.openapi()["paths"][path]["get"]
    assert operation["tags"] == ["group", "shop", "widgets"]
    assert operation["deprecated"] is True
    descriptions = {status: response["description"] for status, response in operation["responses"].items()}
    assert descriptions["500"] == "Group 500"
    assert descriptions["503"] == "Router 503"
    assert descriptions["418"] == "A teapot"

    calls.clear()
    with TestClient(grouped) as client:
        assert client.get("/api/v9/group/shop/widgets/1").status_code == 200
    assert calls == ["group", "router"]


def test_a_route_left_out_of_the_schema_by_either_stays_out() -> None:
    for group_says, router_says in ((False, True), (True, False)):
        group = RouterGroup(include_in_schema=group_says)
        group.include_router(widgets_router(), include_in_schema=router_says)
        app = FastAPI()
        group.include_in(app)
        assert "/widgets/{widget_id}" not in app.openapi().get("paths", {})


@pytest.mark.parametrize("prefix", ["items", "/items/", "/"])
def test_a_malformed_prefix_is_refused_when_registered(prefix: str) -> None:
    with pytest.raises(ValueError, match="must start with '/' and not end with '/'"):
        RouterGroup().include_router(widgets_router(), prefix=prefix)
    with pytest.raises(ValueError, match="must start with '/' and not end with '/'"):
        RouterGroup(prefix=prefix)


def test_the_app_includes_every_v1_router_one_level_deep(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    # At least two routers, so that one router wrapping them would show in the count.
    monkeypatch.setattr(api_router, "routers", [*api_router.routers, (widgets_router(), "", {})])
    bare = FastAPI()
    app = create_app(settings)
    assert len(api_router.routers) >= 2
    assert len(app.routes) - len(bare.routes) == len(api_router.routers)
    with TestClient(app) as client:
        assert client.get(settings.API_V1_PREFIX + "/health").status_code == 200
        assert client.get(settings.API_V1_PREFIX + "/widgets/5").json() == {"widget_id": 5}
