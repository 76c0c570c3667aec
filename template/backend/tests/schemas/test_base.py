"""Base schemas: reading ORM attributes, timestamps, pagination, the error envelope."""

from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from app.schemas import BaseSchema, ErrorResponse, PaginatedResponse, TimestampSchema


class UserRead(TimestampSchema):
    id: int
    email: str


class TagRead(BaseSchema):
    name: str


@dataclass
class UserRow:  # stands in for an ORM object
    id: int
    email: str
    created_at: datetime
    updated_at: datetime


def test_base_schema_reads_attributes() -> None:
    now = datetime.now(UTC)
    user = UserRead.model_validate(UserRow(id=1, email="a@example.com", created_at=now, updated_at=now))
    assert (user.id, user.email, user.created_at) == (1, "a@example.com", now)


def test_timestamp_schema_requires_both_timestamps() -> None:
    with pytest.raises(ValidationError) as caught:
        TimestampSchema.model_validate({})
    assert {error["loc"][0] for error in caught.value.errors()} == {"created_at", "updated_at"}


def test_paginated_response_is_generic_over_item_types() -> None:
    now = datetime.now(UTC)
    users = PaginatedResponse[UserRead].model_validate(
        {
            "items": [{"id": 1, "email": "a@example.com", "created_at": now, "updated_at": now}],
            "total": 1,
            "page": 1,
            "page_size": 20,
        }
    )
    tags = PaginatedResponse[TagRead](items=[TagRead(name="x"), TagRead(name="y")], total=12, page=2, page_size=2)
    assert isinstance(users.items[0], UserRead)
    assert [tag.name for tag in tags.items] == ["x", "y"]
    with pytest.raises(ValidationError):
        PaginatedResponse[TagRead].model_validate({"items": [{"id": 1}], "total": 1, "page": 1, "page_size": 1})
    schema = PaginatedResponse[TagRead].model_json_schema()
    assert schema["properties"]["items"]["items"]["$ref"].endswith("TagRead")


@pytest.mark.parametrize(("field", "value"), [("total", -1), ("page", 0), ("page_size", 0)])
def test_paginated_response_rejects_impossible_numbers(field: str, value: int) -> None:
    data = {"items": [], "total": 0, "page": 1, "page_size": 10, field: value}
    with pytest.raises(ValidationError):
        PaginatedResponse[TagRead].model_validate(data)


def test_error_response_matches_the_envelope() -> None:
    body = {"error": {"code": "not_found", "message": "User not found", "details": None}}
    assert ErrorResponse.model_validate(body).model_dump() == body
