"""Documented schemas and the documentation pages."""

from typing import Any

from fastapi.testclient import TestClient
from pydantic import BaseModel

from app.core.config import Settings
from app.main import create_app
from app.schemas.base import ErrorResponse


def resolve(spec: dict[str, Any], ref: str) -> dict[str, Any]:
    schema: dict[str, Any] = spec["components"]["schemas"][ref.rsplit("/", 1)[-1]]
    return schema


def response_schema(spec: dict[str, Any], path: str, status: str) -> dict[str, Any]:
    content = spec["paths"][path]["get"]["responses"][status]["content"]["application/json"]
    return resolve(spec, content["schema"]["$ref"])


def test_metadata(client: TestClient, settings: Settings) -> None:
    spec = client.get("/openapi.json").json()
    assert spec["info"]["title"] == f"{settings.PROJECT_NAME} API"
    assert spec["info"]["description"] == settings.PROJECT_DESCRIPTION
    assert spec["info"]["version"] == settings.VERSION


def test_swagger_ui_and_redoc_pages(client: TestClient, settings: Settings) -> None:
    swagger = client.get("/docs")
    assert swagger.status_code == 200
    assert "swagger-ui" in swagger.text and "/openapi.json" in swagger.text
    assert f"<title>{settings.PROJECT_NAME} API - Swagger UI</title>" in swagger.text
    redoc = client.get("/redoc")
    assert redoc.status_code == 200
    assert "redoc" in redoc.text.lower() and "/openapi.json" in redoc.text


def test_health_endpoints_are_documented_under_the_health_tag(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path in ("/api/v1/health", "/api/v1/health/ready"):
        assert spec["paths"][path]["get"]["tags"] == ["health"]


def test_health_response_schemas_are_typed(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    health = response_schema(spec, "/api/v1/health", "200")
    assert health["title"] == "HealthResponse"
    ready = response_schema(spec, "/api/v1/health/ready", "200")
    assert ready["title"] == "ReadinessResponse"
    assert set(ready["required"]) == {"status", "database", "redis"}
    assert response_schema(spec, "/api/v1/health/ready", "503")["title"] == "ReadinessResponse"


def test_every_operation_documents_its_responses(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    for path, operations in spec["paths"].items():
        for method, operation in operations.items():
            for status, response in operation["responses"].items():
                if status != "204":  # No Content: there is no body to describe
                    assert "application/json" in response.get("content", {}), f"{method} {path} {status}"
            error = operation["responses"]["500"]["content"]["application/json"]["schema"]
            assert resolve(spec, error["$ref"])["title"] == "ErrorResponse", f"{method} {path}"


def test_validation_errors_are_documented_with_the_envelope(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/items/{item_id}")
    async def get_item(item_id: int) -> dict[str, int]:
        return {"item_id": item_id}

    spec = app.openapi()
    assert response_schema(spec, "/items/{item_id}", "422")["title"] == "ErrorResponse"
    assert "HTTPValidationError" not in spec["components"]["schemas"]
    with TestClient(app) as client:
        body = client.get("/items/x").json()
    assert ErrorResponse.model_validate(body).error.code == "validation_error"


def test_unreadable_bodies_are_documented_with_the_envelope(settings: Settings) -> None:
    app = create_app(settings)

    class Item(BaseModel):
        name: str

    @app.post("/items")
    async def echo_item(item: Item) -> Item:
        return item

    spec = app.openapi()
    content = spec["paths"]["/items"]["post"]["responses"]["400"]["content"]["application/json"]
    assert resolve(spec, content["schema"]["$ref"])["title"] == "ErrorResponse"
    with TestClient(app) as client:
        # Not UTF-8: FastAPI cannot even decode it, and answers 400 (malformed JSON is a 422).
        response = client.post("/items", content=b'{"name": "\xc3\x28"}', headers={"Content-Type": "application/json"})
    assert response.status_code == 400
    assert ErrorResponse.model_validate(response.json()).error.code == "bad_request"
