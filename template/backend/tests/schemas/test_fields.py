"""Field types for stored values: each refuses what PostgreSQL would refuse, and takes what it stores."""

import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Annotated, Any
from uuid import UUID

import pytest
from pydantic import BaseModel, Field, ValidationError
from sqlalchemy import BigInteger, DateTime, Text, bindparam, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession

from app.core.config import Settings
from app.main import create_app
from app.schemas.fields import (
    MAX_JSON_BYTES,
    BigInt,
    JsonObject,
    Omittable,
    StoredBool,
    StoredDate,
    StoredFloat,
    StoredJson,
    StoredStr,
    StoredUUID,
    UtcDatetime,
)

HOUR_EAST = timezone(timedelta(hours=1))


class Create(BaseModel):
    name: StoredStr = Field(max_length=5)
    count: BigInt = 0
    at: UtcDatetime | None = None


class Document(BaseModel):
    config: JsonObject = Field(default_factory=dict)
    small: Annotated[dict[str, Any], StoredJson(max_bytes=64)] = Field(default_factory=dict)


class Update(BaseModel):
    name: Omittable[StoredStr] = Field(default=None, max_length=5)
    count: Omittable[BigInt] = None
    note: StoredStr | None = None


class Every(BaseModel):
    text: StoredStr | None = None
    count: BigInt | None = None
    ratio: StoredFloat | None = None
    enabled: StoredBool | None = None
    born: StoredDate | None = None
    key: StoredUUID | None = None
    at: UtcDatetime | None = None


def refused(model: type[BaseModel], body: dict[str, Any]) -> list[str]:
    """The messages of the errors MODEL gives BODY."""
    with pytest.raises(ValidationError) as caught:
        model.model_validate(body)
    return [error["msg"] for error in caught.value.errors()]


async def round_trip(session: AsyncSession, value: Any, type_: Any) -> Any:
    return (await session.execute(select(bindparam("value", value, type_=type_)))).scalar_one()


def test_a_string_is_refused_with_a_nul_character_or_beyond_its_length() -> None:
    assert refused(Create, {"name": "a\x00b"}) == ["Value error, must not contain NUL characters"]
    assert refused(Create, {"name": "abcdef"}) == ["String should have at most 5 characters"]
    assert Create.model_validate({"name": "abcde"}).name == "abcde"


@pytest.mark.anyio
async def test_postgresql_refuses_the_nul_character(db_session: AsyncSession) -> None:
    # What StoredStr keeps from reaching the database, where it is an error (a 500).
    with pytest.raises(DBAPIError):
        await round_trip(db_session, "a\x00b", Text())


@pytest.mark.parametrize("count", [2**53, -(2**53), 2**63])
def test_an_integer_beyond_the_safe_integers_is_refused(count: int) -> None:
    assert len(refused(Create, {"name": "a", "count": count})) == 1


@pytest.mark.anyio
async def test_postgresql_stores_the_extremes_of_bigint_allowed(db_session: AsyncSession) -> None:
    for count in (2**53 - 1, -(2**53 - 1)):
        assert await round_trip(db_session, Create(name="a", count=count).count, BigInteger()) == count


def test_datetimes_must_be_aware_and_are_kept_in_utc() -> None:
    at = Create.model_validate({"name": "a", "at": "2024-05-01T12:00:00+02:00"}).at
    assert at == datetime(2024, 5, 1, 10, tzinfo=UTC) and at.utcoffset() == timedelta(0)
    assert refused(Create, {"name": "a", "at": "2024-05-01T12:00:00"}) == ["Input should have timezone info"]


@pytest.mark.parametrize(
    "at",
    [
        "0001-01-01T00:00:00+01:00",  # before the year 1 in UTC
        "9999-12-31T23:59:59-01:00",  # after the year 9999 in UTC
        "0001-01-01T00:00:00Z",  # asyncpg would store these two as -infinity and infinity
        "9999-12-31T23:59:59.999999Z",
        "0001-01-01T12:00:00Z",  # storable, but JSON's rule is by the day written (see fields.py)
    ],
)
def test_a_datetime_on_the_first_or_last_day_is_refused_from_json(at: str) -> None:
    assert refused(Create, {"name": "a", "at": at}) == ["Value error, must lie between 0001-01-02 and 9999-12-30"]


@pytest.mark.parametrize(
    "at", [datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC), datetime.min.replace(tzinfo=HOUR_EAST)]
)
def test_a_datetime_that_postgresql_cannot_store_as_it_is_is_refused(at: datetime) -> None:
    assert refused(Create, {"name": "a", "at": at}) == [
        "Value error, must lie strictly between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z"
    ]


@pytest.mark.anyio
async def test_postgresql_stores_the_first_and_last_datetimes_allowed(db_session: AsyncSession) -> None:
    first, last = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
    allowed = (first + timedelta(microseconds=1), last - timedelta(microseconds=1))
    for value in ("0001-01-02T00:00:00+23:59", "9999-12-30T23:59:59.999999-23:59", *allowed):
        at = Create.model_validate({"name": "a", "at": value}).at
        assert at is not None and at.tzinfo is UTC
        stored = await round_trip(db_session, at, DateTime(timezone=True))
        assert stored == at and stored.utcoffset() == timedelta(0)


def test_an_omittable_field_may_be_left_out_but_not_sent_as_null() -> None:
    left_out = Update.model_validate({})
    assert (left_out.name, left_out.count, left_out.model_fields_set) == (None, None, set())
    assert refused(Update, {"name": None}) == ["Value error, may be left out, but not null"]
    assert refused(Update, {"count": None}) == ["Value error, may be left out, but not null"]
    # Its own type's checks still apply.
    assert refused(Update, {"name": "abcdef"}) != []
    assert refused(Update, {"count": 2**63}) != []
    sent = Update.model_validate({"name": "abc", "note": None})
    assert sent.model_dump(exclude_unset=True) == {"name": "abc", "note": None}


def test_an_omittable_field_is_documented_without_null() -> None:
    properties = Update.model_json_schema()["properties"]
    assert properties["name"]["type"] == "string" and properties["name"]["maxLength"] == 5
    assert properties["count"]["type"] == "integer" and properties["count"]["maximum"] == 2**53 - 1
    assert "anyOf" not in properties["name"] and "anyOf" not in properties["count"]
    # A nullable field keeps its null.
    assert {"type": "null"} in properties["note"]["anyOf"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("text", 1),
        ("count", "1"),
        ("count", 1.5),
        ("count", True),
        ("ratio", "1.5"),
        ("ratio", True),
        ("ratio", float("nan")),
        ("enabled", 1),
        ("enabled", "true"),
        ("born", 0),
        ("born", "0"),
        ("born", "2024-05-01T00:00:00"),
        ("born", "20240501"),
        ("key", 1),
        ("key", "3f2c8a9e6b1d4e7a9c2f5d8e1a0b7c4d"),
        ("key", "urn:uuid:3f2c8a9e-6b1d-4e7a-9c2f-5d8e1a0b7c4d"),
        ("at", 0),
        ("at", "1700000000"),
        ("at", "2024-05-01"),
    ],
)
def test_a_value_of_another_json_type_or_format_is_refused(field: str, value: Any) -> None:
    """What pydantic's lax mode would convert: the documented type and format or a 422."""
    assert refused(Every, {field: value})


def test_each_type_takes_its_documented_json() -> None:
    body = {
        "text": "a",
        "count": 3.0,  # JSON Schema's integer: a number without a fraction
        "ratio": 1,
        "enabled": False,
        "born": "2024-05-01",
        "key": "3F2C8A9E-6B1D-4E7A-9C2F-5D8E1A0B7C4D",
        "at": "2024-05-01t12:30:00.5z",
    }
    every = Every.model_validate(body)
    assert every.count == 3 and every.ratio == 1.0 and every.enabled is False and every.born == date(2024, 5, 1)
    assert every.key == UUID("3f2c8a9e-6b1d-4e7a-9c2f-5d8e1a0b7c4d")
    assert every.at == datetime(2024, 5, 1, 12, 30, 0, 500000, tzinfo=UTC)
    # Python code may pass the values themselves.
    assert Every.model_validate(every.model_dump()) == every


def test_each_type_is_documented_with_its_json_type_and_format() -> None:
    properties = Every.model_json_schema()["properties"]
    documented = {name: schema["anyOf"][0] for name, schema in properties.items()}
    assert documented["count"]["type"] == "integer" and documented["ratio"]["type"] == "number"
    assert documented["enabled"] == {"type": "boolean"}
    assert documented["born"] == {"type": "string", "format": "date"}
    assert documented["key"] == {"type": "string", "format": "uuid"}
    assert documented["at"] == {"type": "string", "format": "date-time", "pattern": "^(?!0001-01-01|9999-12-31)"}
    assert documented["text"] == {"type": "string", "pattern": "^[^\\u0000]*$"}


def test_the_documented_bounds_of_an_integer_are_the_enforced_ones(settings: Settings) -> None:
    app = create_app(settings)

    @app.post("/every")
    async def every(body: Every) -> None: ...

    count = app.openapi()["components"]["schemas"]["Every"]["properties"]["count"]["anyOf"][0]
    assert count["maximum"] == 2**53 - 1 and count["minimum"] == -(2**53 - 1)
    assert Every.model_validate({"count": 2**53 - 1}).count == 2**53 - 1


@pytest.mark.parametrize(
    "config",
    [
        {"text": "a\x00b"},
        {"key\x00": 1},
        {"list": [1, {"deep": ["\x00"]}]},
    ],
)
def test_a_document_with_a_nul_character_is_refused(config: dict[str, Any]) -> None:
    assert refused(Document, {"config": config}) == ["Value error, must not contain NUL characters"]


@pytest.mark.parametrize("body", ['{"config": {"x": NaN}}', '{"config": {"x": [1, -Infinity]}}'])
def test_a_document_with_a_number_json_has_not_is_refused(body: str) -> None:
    # The request's body is read by Python's json module, which takes NaN and Infinity.
    assert refused(Document, json.loads(body)) == ["Value error, numbers must be finite"]


def test_a_document_with_text_that_is_not_unicode_is_refused() -> None:
    assert refused(Document, json.loads('{"config": {"x": "\\ud800"}}')) == ["Value error, must be valid Unicode text"]


def test_a_document_is_bounded_by_its_size_as_json() -> None:
    assert Document.model_validate({"small": {"text": "x" * 53}}).small == {"text": "x" * 53}  # 64 bytes
    assert refused(Document, {"small": {"text": "x" * 54}}) == ["Value error, must be at most 64 bytes as JSON"]
    assert refused(Document, {"small": {"text": "é" * 27}}) == ["Value error, must be at most 64 bytes as JSON"]
    assert refused(Document, {"config": {"text": "x" * MAX_JSON_BYTES}}) != []
    assert Document.model_json_schema()["properties"]["small"]["description"] == "A JSON object of at most 64 bytes"


def test_a_document_nested_as_deep_as_json_allows_is_checked_without_recursion() -> None:
    deep: Any = "\x00"
    for _ in range(500):
        deep = [deep]
    assert refused(Document, {"config": {"deep": deep}}) == ["Value error, must not contain NUL characters"]


@pytest.mark.anyio
async def test_postgresql_refuses_in_jsonb_what_the_document_refuses(db_session: AsyncSession) -> None:
    for refused_by_jsonb in ({"text": "a\x00b"}, {"x": float("nan")}):
        with pytest.raises(DBAPIError):
            async with db_session.begin_nested():
                await round_trip(db_session, refused_by_jsonb, JSONB())


@pytest.mark.anyio
async def test_postgresql_stores_a_document_that_passes(db_session: AsyncSession) -> None:
    config = Document.model_validate({"config": {"a": [1, 2.5, None, True], "b": {"ü": "\u2603"}}}).config
    assert await round_trip(db_session, config, JSONB()) == config
