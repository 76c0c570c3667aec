"""The API contract: backend/openapi.json is the app's document; operation ids follow one rule."""

from fastapi import FastAPI
from fastapi.routing import APIRoute

from devtools.openapi import difference, document


def test_openapi_json_is_the_apps_document() -> None:
    diff = difference(document())
    assert not diff, (
        "backend/openapi.json is not the app's OpenAPI document: run `make openapi` and review "
        f"the diff as a change of the API contract\n{diff}"
    )


def test_every_operation_id_is_its_route_name_and_unique(app: FastAPI) -> None:
    spec = app.openapi()
    ids = [operation["operationId"] for item in spec["paths"].values() for operation in item.values()]
    duplicates = sorted({name for name in ids if ids.count(name) > 1})
    assert not duplicates, f"operation ids used twice: {duplicates}; rename the route functions"
    for route in app.routes:
        if isinstance(route, APIRoute) and route.include_in_schema:
            for method in route.methods or ():
                assert spec["paths"][route.path_format][method.lower()]["operationId"] == route.name


def test_the_health_operations_read_as_their_names(app: FastAPI) -> None:
    paths = app.openapi()["paths"]
    assert paths["/api/v1/health"]["get"]["operationId"] == "health"
    assert paths["/api/v1/health/ready"]["get"]["operationId"] == "readiness"
