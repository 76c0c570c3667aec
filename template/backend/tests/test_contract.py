"""The API contract: backend/openapi.json is the app's document; operation ids follow one rule."""

from fastapi import FastAPI

from app.core.config import Settings
from app.main import create_app
from devtools.openapi import difference, document


def test_openapi_json_is_the_apps_document() -> None:
    diff = difference(document())
    assert not diff, (
        "backend/openapi.json is not the app's OpenAPI document: run `make openapi` and review "
        f"the diff as a change of the API contract\n{diff}"
    )


def test_every_operation_id_is_unique(app: FastAPI) -> None:
    ids = [operation["operationId"] for item in app.openapi()["paths"].values() for operation in item.values()]
    duplicates = sorted({name for name in ids if ids.count(name) > 1})
    assert not duplicates, f"operation ids used twice: {duplicates}; rename the route functions"


def test_an_operation_id_is_the_route_functions_name(settings: Settings) -> None:
    app = create_app(settings)

    @app.get("/things/{thing_id}/parts")
    async def parts_of_thing(thing_id: int) -> list[int]:
        return [thing_id]

    assert app.openapi()["paths"]["/things/{thing_id}/parts"]["get"]["operationId"] == "parts_of_thing"


def test_the_health_operations_read_as_their_names(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    assert paths["/api/v1/health"]["get"]["operationId"] == "health"
    assert paths["/api/v1/health/ready"]["get"]["operationId"] == "readiness"
