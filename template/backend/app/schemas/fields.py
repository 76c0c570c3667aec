"""Field types for request bodies whose values are stored in PostgreSQL columns.

Each refuses what its column would refuse, so a bad value is a 422 that names the
field, never a database error (a 500) after the request was accepted.
"""

from datetime import UTC, datetime
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, AwareDatetime, BeforeValidator, Field

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
# A PATCH field whose column is NOT NULL: ``name: Omittable[str] = None`` may be left out
# (it is then None and not in ``model_fields_set``); sent as null, it is a 422.
Omittable = Annotated[T | None, BeforeValidator(_refuse_null), Field(json_schema_extra=_not_nullable)]
