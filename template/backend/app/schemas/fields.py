"""Field types for request bodies whose values are stored in PostgreSQL columns.

Each refuses what its column would refuse, so a bad value is a 422 that names the
field, never a database error (a 500) after the request was accepted. Each also takes
exactly the JSON that OpenAPI documents for it: no number for a string, a date or a
boolean, no string for a number (pydantic's lax mode would convert them).
"""

import json
import math
import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from typing import Annotated, Any, TypeVar
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BeforeValidator,
    Field,
    GetCoreSchemaHandler,
    GetJsonSchemaHandler,
    StrictBool,
    StrictStr,
)
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

T = TypeVar("T")


def _refuse_nul(value: Any) -> Any:
    if isinstance(value, str) and "\x00" in value:
        raise ValueError("must not contain NUL characters")
    return value


# asyncpg stores Python's first and last instants as -infinity and infinity.
_FIRST, _LAST = datetime.min.replace(tzinfo=UTC), datetime.max.replace(tzinfo=UTC)
_RANGE = "must lie strictly between 0001-01-01T00:00:00Z and 9999-12-31T23:59:59.999999Z"


def _in_utc(value: datetime) -> datetime:
    try:
        value = value.astimezone(UTC)
    except OverflowError:  # 0001-01-01T00:00+01:00 is before the first year in UTC
        raise ValueError(_RANGE) from None
    if not _FIRST < value < _LAST:
        raise ValueError(_RANGE)
    return value


def _refuse_null(value: Any) -> Any:
    if value is None:
        raise ValueError("may be left out, but not null")
    return value


def _not_nullable(schema: dict[str, Any]) -> None:
    # The JSON schema of ``T | None`` without the null: what a client may send.
    choices = schema.pop("anyOf", [])
    schema.update(next((choice for choice in choices if choice != {"type": "null"}), {}))


def _string_in_format(kind: type, pattern: str, example: str) -> Callable[[Any], Any]:
    # JSON carries dates and UUIDs as strings: take a KIND from Python code, from JSON only a
    # string in the documented format (lax mode would read 0 as 1970-01-01, or 32 bare hex digits).
    form = re.compile(pattern)

    def check(value: Any) -> Any:
        if isinstance(value, kind) or (isinstance(value, str) and form.fullmatch(value)):
            return value
        raise ValueError(f"must be a string like {example}")

    return check


def _json_integer(value: Any) -> Any:
    # A JSON integer may be written 3.0 (JSON Schema's integer is any number without a fraction).
    if isinstance(value, (str, bytes, bool)):
        raise ValueError("must be an integer, not a string or a boolean")
    return value


# JavaScript's safe integers: a TypeScript client reads them exactly, and so does every tool
# that reads JSON numbers as doubles (FastAPI writes OpenAPI's bounds as floats: 2**63 - 1
# would be documented as 2**63).
_SAFE_INTEGER = 2**53 - 1

_FULL_DATE = r"\d{4}-\d{2}-\d{2}"
# RFC 3339's date-time, the format OpenAPI names; AwareDatetime then refuses one without offset.
_DATE_TIME = _FULL_DATE + r"[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})?"
_UUID = r"[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}"

# text and varchar: PostgreSQL stores no NUL character. Add ``Field(max_length=N)`` for varchar(N).
StoredStr = Annotated[StrictStr, BeforeValidator(_refuse_nul), Field(json_schema_extra={"pattern": "^[^\\u0000]*$"})]
# bigint, within what a JSON client holds exactly.
BigInt = Annotated[int, Field(ge=-_SAFE_INTEGER, le=_SAFE_INTEGER), BeforeValidator(_json_integer)]
# An int with bounds of its own takes JSON integers only: ``Annotated[int, Field(ge=1, le=100), JsonInteger]``
# (after the bounds: pydantic documents bounds given to a validated type as unknown keys).
JsonInteger = BeforeValidator(_json_integer)
# double precision: a JSON number (an integer too), never a string; no NaN or infinity.
StoredFloat = Annotated[float, Field(strict=True, allow_inf_nan=False)]
# boolean: true or false, never 1 or "yes".
StoredBool = StrictBool
# date: "2024-05-01" only.
StoredDate = Annotated[date, BeforeValidator(_string_in_format(date, _FULL_DATE, "2024-05-01"))]
# uuid: the hyphenated form only.
StoredUUID = Annotated[UUID, BeforeValidator(_string_in_format(UUID, _UUID, "3f2c8a9e-6b1d-4e7a-9c2f-5d8e1a0b7c4d"))]
_datetime_in_format = _string_in_format(datetime, _DATE_TIME, "2024-05-01T12:30:00Z")
# From JSON, the first and last days are refused as written: with any offset RFC 3339 allows,
# every other day lies inside _in_utc's range, and OpenAPI can say so with a pattern.
_EDGE_DAYS = ("0001-01-01", "9999-12-31")
_INNER_DAYS = "must lie between 0001-01-02 and 9999-12-30"


def _datetime_string(value: Any) -> Any:
    value = _datetime_in_format(value)
    if isinstance(value, str) and value.startswith(_EDGE_DAYS):
        raise ValueError(_INNER_DAYS)
    return value


# timestamptz: aware datetimes only (a naive one would be read in the server's time zone), kept in UTC.
UtcDatetime = Annotated[
    AwareDatetime,
    BeforeValidator(_datetime_string),
    AfterValidator(_in_utc),
    Field(json_schema_extra={"pattern": "^(?!0001-01-01|9999-12-31)"}),
]
# A PATCH field whose column is NOT NULL, or a list's filter: ``name: Omittable[str] = None``
# may be left out (it is then None and not in ``model_fields_set``); sent as null, it is a 422.
Omittable = Annotated[T | None, BeforeValidator(_refuse_null), Field(json_schema_extra=_not_nullable)]


class StoredJson:
    """A JSON object that jsonb stores, of at most MAX_BYTES bytes (as compact UTF-8 JSON).

    jsonb refuses a NUL character and text that is not Unicode (a lone surrogate, which
    JSON can escape); Python reads NaN and Infinity, which JSON has not. Each is a 422
    here. Use as ``Annotated[dict[str, Any], StoredJson(max_bytes=4096)]``.
    """

    def __init__(self, max_bytes: int) -> None:
        self.max_bytes = max_bytes

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.validate, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema.setdefault("description", f"A JSON object of at most {self.max_bytes} bytes")
        return json_schema

    def validate(self, value: dict[str, Any]) -> dict[str, Any]:
        pending: list[Any] = [value]
        while pending:  # not recursive: a document may nest as deep as the JSON parser allows
            item = pending.pop()
            if isinstance(item, dict):
                pending += [*item, *item.values()]
            elif isinstance(item, list):
                pending += item
            elif isinstance(item, str):
                _refuse_nul(item)
                if not item.isascii() and _has_surrogate(item):
                    raise ValueError("must be valid Unicode text")
            elif isinstance(item, float) and not math.isfinite(item):
                raise ValueError("numbers must be finite")
        try:
            size = len(json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode())
        except RecursionError:
            raise ValueError("is nested too deeply") from None
        if size > self.max_bytes:
            raise ValueError(f"must be at most {self.max_bytes} bytes as JSON")
        return value


def _has_surrogate(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return True
    return False


# The bound of a JSON document's size when its field names none: 64 KiB.
MAX_JSON_BYTES = 65_536
# jsonb: a JSON object (a dict) that PostgreSQL stores, at most MAX_JSON_BYTES bytes.
JsonObject = Annotated[dict[str, Any], StoredJson(max_bytes=MAX_JSON_BYTES)]
