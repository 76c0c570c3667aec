"""The query of a list: its page (``?page=1&page_size=20``) and its order (``?sort=-created_at,name``).

A resource's list takes one model of query parameters that subclasses ``PageParams``
(FastAPI reads a single model's fields as the query) and adds its filters and its
``sort: Annotated[str, SortKeys("created_at", "name")] = "created_at"``.
"""

from typing import Any

from pydantic import BaseModel, Field, GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

from app.api.query import QueryInt

MAX_PAGE_SIZE = 100
# The row offset, (page - 1) * page_size, must fit PostgreSQL's bigint (a later page would
# be a database error instead of a 422); JavaScript's largest safe integer does, and every
# JSON tool reads it exactly.
MAX_PAGE = 2**53 - 1


class PageParams(BaseModel):
    page: QueryInt = Field(default=1, ge=1, le=MAX_PAGE, description="1-based page number")
    page_size: QueryInt = Field(default=20, ge=1, le=MAX_PAGE_SIZE, description="Maximum number of items per page")


class SortKeys:
    """The keys ``?sort=`` takes: comma-separated fields of FIELDS, each with ``-`` before it for descending.

    Another key is a 422 whose message names FIELDS; OpenAPI documents them as a pattern.
    The value comes out as it went in, without a key that repeats an earlier one's field:
    ``order_by()`` (app/api/pagination.py) makes it the query's ORDER BY.
    """

    def __init__(self, *fields: str) -> None:
        self.fields = fields
        # Field names are snake_case: nothing in them is special to a regular expression.
        names = "|".join(fields)
        self.pattern = f"^-?({names})(,-?({names}))*$"

    def __get_pydantic_core_schema__(self, source: Any, handler: GetCoreSchemaHandler) -> CoreSchema:
        return core_schema.no_info_after_validator_function(self.validate, handler(source))

    def __get_pydantic_json_schema__(self, schema: CoreSchema, handler: GetJsonSchemaHandler) -> JsonSchemaValue:
        json_schema = handler(schema)
        json_schema["pattern"] = self.pattern
        json_schema["description"] = f"Fields to order by, comma-separated, - before one for descending: {self.names}"
        return json_schema

    @property
    def names(self) -> str:
        return ", ".join(self.fields)

    def validate(self, value: str) -> str:
        keys: dict[str, str] = {}
        for key in value.split(","):
            if key.removeprefix("-") not in self.fields:
                raise ValueError(f"cannot sort by {key!r}: the fields are {self.names}, each with - for descending")
            keys.setdefault(key.removeprefix("-"), key)
        return ",".join(keys.values())
