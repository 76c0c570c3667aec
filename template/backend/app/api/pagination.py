"""Pages of a list: ``?page=1&page_size=20`` in, ``PaginatedResponse`` out.

Routes take the query parameters as ``pagination: Pagination`` (from ``app.api.deps``)
and answer with ``await paginate(session, query, pagination, WidgetRead)``.
"""

from typing import Any, TypeVar

from pydantic import BaseModel, Field
from sqlalchemy import Select, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from app.schemas.base import BaseSchema, PaginatedResponse

SchemaT = TypeVar("SchemaT", bound=BaseSchema)

MAX_PAGE_SIZE = 100
# The row offset, (page - 1) * page_size, must fit PostgreSQL's bigint: a later page
# would be a database error instead of a 422.
MAX_PAGE = 2**63 // MAX_PAGE_SIZE


class PageParams(BaseModel):
    page: int = Field(default=1, ge=1, le=MAX_PAGE, description="1-based page number")
    page_size: int = Field(default=20, ge=1, le=MAX_PAGE_SIZE, description="Maximum number of items per page")


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
