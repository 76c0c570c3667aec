"""The query of a list: ?sort= keys, checked against the fields a list may be sorted by."""

import re
from typing import Annotated

import pytest
from pydantic import BaseModel, ValidationError

from app.schemas.lists import PageParams, SortKeys


class Params(PageParams):
    sort: Annotated[str, SortKeys("created_at", "name")] = "created_at"


class Ranked(BaseModel):
    sort: Annotated[str, SortKeys("rank")]


@pytest.mark.parametrize(
    ("sort", "kept"),
    [
        ("name", "name"),
        ("-created_at,name", "-created_at,name"),
        ("name,-name,created_at", "name,created_at"),  # a field named again is dropped
    ],
)
def test_known_keys_are_taken(sort: str, kept: str) -> None:
    assert Params(sort=sort).sort == kept


@pytest.mark.parametrize("sort", ["", "id", "-", "--name", "name,", "name ,created_at", "Name"])
def test_another_key_is_refused_with_the_fields_it_may_name(sort: str) -> None:
    with pytest.raises(ValidationError) as refused:
        Params(sort=sort)
    (error,) = refused.value.errors()
    assert error["loc"] == ("sort",)
    assert "the fields are created_at, name" in error["msg"]


def test_each_model_takes_its_own_fields() -> None:
    assert Ranked(sort="-rank").sort == "-rank"
    with pytest.raises(ValidationError, match="the fields are rank"):
        Ranked(sort="name")


def test_the_keys_are_documented_as_a_pattern_that_takes_what_they_take() -> None:
    schema = Params.model_json_schema()["properties"]["sort"]
    assert schema["default"] == "created_at" and "created_at, name" in schema["description"]
    pattern = re.compile(schema["pattern"])
    for sort in ("name", "-created_at,name", "name,-name"):
        assert pattern.fullmatch(sort) and Params(sort=sort)
    for sort in ("", "id", "--name", "name,", "Name"):
        assert not pattern.fullmatch(sort)
