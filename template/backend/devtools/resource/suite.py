"""The test module of a resource: every route, on the real database, with the fixtures of
tests/conftest.py (each test's writes are rolled back at its end)."""

from string import Template

from devtools.resource.sources import words
from devtools.resource.spec import Field, Resource

# The value of each type for the body NUMBER (1, 2, 3): distinct for unique fields.
VALUES = {
    "text": 'f"$name {number}"',
    "int": "number",
    "float": "number + 0.5",
    "bool": "number % 2 == 1",
    "date": 'f"2024-01-{number:02d}"',
    "datetime": 'f"2024-01-{number:02d}T12:00:00Z"',
    "uuid": 'f"00000000-0000-4000-8000-{number:012d}"',
}

HEAD = Template('''"""/api/v1/$path: every route on the real database; each test's writes are rolled back."""

import uuid
from typing import Any

import pytest
from httpx2 import AsyncClient
from sqlalchemy.ext.asyncio import AsyncSession

from app.models.$name import $Model
from app.schemas.$name import ${Model}Read

URL = "/api/v1/$path"
$constants

def new_$name(number: int) -> dict[str, Any]:
    """A body for POST; NUMBER keeps the values of unique fields apart."""
    return {
$body
    }


async def create_$name(client: AsyncClient, number: int) -> dict[str, Any]:
    response = await client.post(URL, json=new_$name(number))
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


@pytest.mark.anyio
async def test_create_$name(async_client: AsyncClient, db_session: AsyncSession) -> None:
    response = await async_client.post(URL, json=new_$name(1))
    assert response.status_code == 201, response.text
    created = response.json()
    assert new_$name(1).items() <= created.items()
    assert response.headers["Location"].endswith(f"{URL}/{created['id']}")
    stored = await db_session.get($Model, uuid.UUID(created["id"]))
    assert stored is not None
    assert ${Model}Read.model_validate(stored).model_dump(mode="json") == created


@pytest.mark.anyio
async def test_create_${name}_refuses_a_value_of_another_type(async_client: AsyncClient) -> None:
    response = await async_client.post(URL, json={**new_$name(1), "$first": {"not": "a value"}})
    assert response.status_code == 422
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    assert [detail["loc"] for detail in error["details"]] == [["body", "$first"]]
''')

REQUIRED = Template("""

@pytest.mark.anyio
async def test_create_${name}_refuses_a_body_without_its_required_fields(async_client: AsyncClient) -> None:
    response = await async_client.post(URL, json={})
    assert response.status_code == 422
    assert {tuple(detail["loc"]) for detail in response.json()["error"]["details"]} == {
        ("body", field) for field in REQUIRED
    }


@pytest.mark.anyio
@pytest.mark.parametrize("field", REQUIRED)
async def test_update_${name}_refuses_null_for_a_required_field(field: str, async_client: AsyncClient) -> None:
    created = await create_$name(async_client, 1)
    response = await async_client.patch(f"{URL}/{created['id']}", json={field: None})
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["loc"] == ["body", field]
""")

OPTIONAL = Template("""

@pytest.mark.anyio
async def test_create_${name}_with_only_its_required_fields(async_client: AsyncClient) -> None:
    body = {field: value for field, value in new_$name(1).items() if field not in OPTIONAL}
    response = await async_client.post(URL, json=body)
    assert response.status_code == 201, response.text
    assert {field: response.json()[field] for field in OPTIONAL} == dict.fromkeys(OPTIONAL)


@pytest.mark.anyio
@pytest.mark.parametrize("field", OPTIONAL)
async def test_update_${name}_sets_an_optional_field_to_null(field: str, async_client: AsyncClient) -> None:
    created = await create_$name(async_client, 1)
    response = await async_client.patch(f"{URL}/{created['id']}", json={field: None})
    assert response.status_code == 200, response.text
    assert response.json()[field] is None
""")

TOO_LONG = Template("""

@pytest.mark.anyio
async def test_create_${name}_refuses_a_string_longer_than_its_column(async_client: AsyncClient) -> None:
    response = await async_client.post(URL, json={**new_$name(1), "$field": "x" * $length})
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["loc"] == ["body", "$field"]
""")

BIG_INTEGER = Template("""

@pytest.mark.anyio
async def test_create_${name}_refuses_an_integer_beyond_64_bits(async_client: AsyncClient) -> None:
    response = await async_client.post(URL, json={**new_$name(1), "$field": 2**63})
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["loc"] == ["body", "$field"]
""")

UNIQUE = Template("""

@pytest.mark.anyio
@pytest.mark.parametrize("field", UNIQUE)
async def test_create_${name}_refuses_a_duplicate(field: str, async_client: AsyncClient) -> None:
    await create_$name(async_client, 1)
    response = await async_client.post(URL, json={**new_$name(2), field: new_$name(1)[field]})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"


@pytest.mark.anyio
@pytest.mark.parametrize("field", UNIQUE)
async def test_update_${name}_refuses_a_duplicate(field: str, async_client: AsyncClient) -> None:
    first, second = await create_$name(async_client, 1), await create_$name(async_client, 2)
    response = await async_client.patch(f"{URL}/{second['id']}", json={field: first[field]})
    assert response.status_code == 409
    assert response.json()["error"]["code"] == "conflict"
""")

TAIL = Template("""

@pytest.mark.anyio
async def test_list_$plural(async_client: AsyncClient) -> None:
    created = [await create_$name(async_client, number) for number in (1, 2, 3)]
    first = (await async_client.get(URL, params={"page": 1, "page_size": 2})).json()
    second = (await async_client.get(URL, params={"page": 2, "page_size": 2})).json()
    assert (first["total"], first["page"], first["page_size"], second["total"]) == (3, 1, 2, 3)
    # Oldest first, then by id (the rows of one transaction, this test's, share created_at).
    expected = sorted(created, key=lambda $name: ($name["created_at"], $name["id"]))
    assert first["items"] + second["items"] == expected


@pytest.mark.anyio
async def test_get_$name(async_client: AsyncClient) -> None:
    created = await create_$name(async_client, 1)
    response = await async_client.get(f"{URL}/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created


@pytest.mark.anyio
async def test_update_${name}_changes_only_the_fields_it_sends(async_client: AsyncClient) -> None:
    created = await create_$name(async_client, 1)
    changes = {"$first": new_$name(2)["$first"]}
    response = await async_client.patch(f"{URL}/{created['id']}", json=changes)
    assert response.status_code == 200, response.text
    updated = response.json()
    assert updated == {**created, **changes, "updated_at": updated["updated_at"]}


@pytest.mark.anyio
async def test_delete_$name(async_client: AsyncClient, db_session: AsyncSession) -> None:
    created = await create_$name(async_client, 1)
    response = await async_client.delete(f"{URL}/{created['id']}")
    assert (response.status_code, response.content) == (204, b"")
    assert await db_session.get($Model, uuid.UUID(created["id"])) is None
    assert (await async_client.get(f"{URL}/{created['id']}")).status_code == 404


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_an_unknown_${name}_is_a_404(method: str, async_client: AsyncClient) -> None:
    body: dict[str, Any] | None = {} if method == "PATCH" else None
    response = await async_client.request(method, f"{URL}/{uuid.uuid4()}", json=body)
    assert response.status_code == 404
    assert response.json()["error"] == {"code": "not_found", "message": "$label not found", "details": None}


@pytest.mark.anyio
@pytest.mark.parametrize("method", ["GET", "PATCH", "DELETE"])
async def test_a_malformed_${name}_id_is_a_422(method: str, async_client: AsyncClient) -> None:
    body: dict[str, Any] | None = {} if method == "PATCH" else None
    response = await async_client.request(method, f"{URL}/not-a-uuid", json=body)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["loc"] == ["path", "${name}_id"]
""")


def value(field: Field) -> str:
    if field.type == "str":
        # "name-1" where it fits the column, else "1".
        fits = (field.length or 0) >= len(field.name) + 2
        return 'f"$name-{number}"'.replace("$name", field.name) if fits else "str(number)"
    return VALUES[field.type].replace("$name", field.name)


def suite(resource: Resource) -> str:
    fields = resource.fields
    groups = {
        "REQUIRED": [f.name for f in fields if not f.optional],
        "OPTIONAL": [f.name for f in fields if f.optional],
        "UNIQUE": [f.name for f in fields if f.unique],
    }
    constants = "".join(f"{name} = {tuple(names)!r}\n" for name, names in groups.items() if names)
    body = "\n".join(f'        "{field.name}": {value(field)},' for field in fields)
    filled = {**words(resource), "first": fields[0].name}
    source = HEAD.substitute(filled, constants="\n" + constants if constants else "", body=body)
    for name, part in (("REQUIRED", REQUIRED), ("OPTIONAL", OPTIONAL), ("UNIQUE", UNIQUE)):
        source += part.substitute(filled) if groups[name] else ""
    strings = sorted((f for f in fields if f.type == "str"), key=lambda f: f.length or 0)
    if strings:
        source += TOO_LONG.substitute(filled, field=strings[0].name, length=(strings[0].length or 0) + 1)
    if integers := [f for f in fields if f.type == "int"]:
        source += BIG_INTEGER.substitute(filled, field=integers[0].name)
    return source + TAIL.substitute(filled)
