"""The v1 routers: collected once, each included in the app one level deep."""

from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

from app.api.v1.router import RouterGroup


def test_a_group_includes_each_router_directly_with_its_options() -> None:
    widgets = APIRouter(prefix="/widgets", tags=["widgets"])

    @widgets.get("/{widget_id}")
    async def get_widget(widget_id: int) -> dict[str, int]:
        return {"widget_id": widget_id}

    group = RouterGroup(responses={500: {"description": "Internal server error"}})
    group.include_router(widgets, prefix="/shop", tags=["shop"])
    app = FastAPI(docs_url=None, redoc_url=None)
    routes_before = len(app.routes)
    group.include_in(app, prefix="/api/v9")

    # One entry in the app per router, not a v1 router wrapping them.
    assert len(app.routes) == routes_before + 1
    with TestClient(app) as client:
        assert client.get("/api/v9/shop/widgets/3").json() == {"widget_id": 3}
        assert client.get("/api/v9/widgets/3").status_code == 404
    operation = app.openapi()["paths"]["/api/v9/shop/widgets/{widget_id}"]["get"]
    assert set(operation["tags"]) == {"widgets", "shop"}
    assert "500" in operation["responses"]
