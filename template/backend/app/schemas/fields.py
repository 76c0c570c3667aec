"""Field types for request bodies whose values are stored in PostgreSQL columns.

Each refuses what its column would refuse, so a bad value is a 422 that names the
field, never a database error (a 500) after the request was accepted.
"""

import json
import math
from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field, GetCoreSchemaHandler, GetJsonSchemaHandler
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


# text and varchar: PostgreSQL stores no NUL character. Add ``Field(max_length=N)`` for varchar(N).
StoredStr = Annotated[str, BeforeValidator(_refuse_nul)]
# bigint: a larger number would fail in the database.
BigInt = Annotated[int, Field(ge=-(2**63), le=2**63 - 1)]
# timestamptz: aware datetimes only (a naive one would be read in the server's time zone), kept in UTC.
UtcDatetime = Annotated[AwareDatetime, AfterValidator(_in_utc)]
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
