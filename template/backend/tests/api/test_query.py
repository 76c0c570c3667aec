"""Query parameter types: what OpenAPI documents for an integer or a boolean, and nothing else."""

from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.api.query import QueryBool, QueryInt


@pytest.fixture(scope="module")
def client() -> TestClient:
    app = FastAPI()

    @app.get("/q")
    async def read(number: QueryInt = 0, flag: QueryBool = False) -> dict[str, Any]:
        return {"number": number, "flag": flag}

    return TestClient(app)


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ({}, {"number": 0, "flag": False}),
        ({"number": "-12", "flag": "true"}, {"number": -12, "flag": True}),
        ({"number": "007", "flag": "false"}, {"number": 7, "flag": False}),
    ],
)
def test_integers_in_decimal_digits_and_true_or_false_are_read(
    client: TestClient, params: dict[str, str], expected: dict[str, Any]
) -> None:
    response = client.get("/q", params=params)
    assert response.status_code == 200 and response.json() == expected


@pytest.mark.parametrize(
    "params",
    [
        {"number": "1.0"},
        {"number": "1_000"},
        {"number": " 1"},
        {"number": "+1"},
        {"number": "1e3"},
        {"flag": "1"},
        {"flag": "yes"},
        {"flag": "on"},
        {"flag": "t"},
        {"flag": "True"},
    ],
)
def test_what_lax_mode_would_convert_is_a_422(client: TestClient, params: dict[str, str]) -> None:
    assert client.get("/q", params=params).status_code == 422


def test_they_are_documented_as_an_integer_and_a_boolean(client: TestClient) -> None:
    assert isinstance(client.app, FastAPI)
    parameters = {p["name"]: p["schema"] for p in client.app.openapi()["paths"]["/q"]["get"]["parameters"]}
    assert parameters["number"]["type"] == "integer" and parameters["flag"]["type"] == "boolean"
