"""Pages of a list: ``?page=1&page_size=20`` in, ``PaginatedResponse`` out; and its order.

Routes take the query parameters as ``pagination: Pagination`` (from ``app.api.deps``),
or as a model of their own that subclasses ``PageParams`` (app/schemas/lists.py), and
answer with ``await paginate(session, query, pagination, WidgetRead)``.
"""

from typing import Any, TypeVar

from sqlalchemy import Select, UnaryExpression, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.db import Base
from app.schemas.base import BaseSchema, PaginatedResponse
from app.schemas.lists import MAX_PAGE, MAX_PAGE_SIZE, PageParams

__all__ = ["MAX_PAGE", "MAX_PAGE_SIZE", "PageParams", "order_by", "paginate"]

SchemaT = TypeVar("SchemaT", bound=BaseSchema)


async def paginate(
    session: AsyncSession, query: Select[Any], pagination: PageParams, schema: type[SchemaT]
) -> PaginatedResponse[SchemaT]:
    """The page PAGINATION asks for of QUERY's rows, each read as SCHEMA, and the number of rows.

    QUERY must be ordered by something unique (``created_at`` alone is not: rows written
    by one transaction share it), or rows may move between pages. On a ``ReadSession``
    the count and the page are two statements: a write between them shows in one only.
    """
    total = await session.scalar(select(func.count()).select_from(query.order_by(None).subquery()))
    offset = (pagination.page - 1) * pagination.page_size
    rows = await session.scalars(query.limit(pagination.page_size).offset(offset))
    return PaginatedResponse[SchemaT](
        items=[schema.model_validate(row) for row in rows],
        total=total or 0,
        page=pagination.page,
        page_size=pagination.page_size,
    )


def order_by(model: type[Base], sort: str) -> list[UnaryExpression[Any]]:
    """The ORDER BY of SORT, a value that ``SortKeys`` checked ("-created_at,name"): each key's
    column, then the id in the last key's direction, so that every row has one place."""
    columns = model.__table__.c
    keys = sort.split(",")
    clauses = [columns[key[1:]].desc() if key.startswith("-") else columns[key].asc() for key in keys]
    return [*clauses, columns["id"].desc() if keys[-1].startswith("-") else columns["id"].asc()]
