"""Pages of a list: the query parameters every list route takes, and paginate() on the real database."""

from collections.abc import Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.api.deps import Pagination
from app.api.pagination import MAX_PAGE, MAX_PAGE_SIZE, PageParams, order_by, paginate
from app.core.config import Settings
from app.db import Base
from app.main import create_app
from app.schemas.base import BaseSchema

NOTES = "scratch.notes"


class NoteRead(BaseSchema):
    id: int
    text: str


class Note(Base):
    __abstract__ = True  # mapped by the fixture, and only for the tests of this module
    id: Mapped[int] = mapped_column(primary_key=True)
    text: Mapped[str]


@pytest.fixture(scope="module")
def note_model() -> Iterator[type[Note]]:
    # In the tests' scratch schema; the table leaves the metadata again, so that the
    # migration checks never see it.
    class ScratchNote(Note):
        __tablename__ = "notes"
        __table_args__ = ({"schema": "scratch"},)

    yield ScratchNote
    Base.metadata.remove(Base.metadata.tables[NOTES])


@pytest.fixture
async def notes(note_model: type[Note], db_connection: AsyncConnection, scratch_tables: str) -> type[Note]:
    # Created in the test's transaction, so dropped with its rollback.
    await db_connection.run_sync(Base.metadata.tables[NOTES].create)
    return note_model


@pytest.fixture
def pages_app(settings: Settings) -> FastAPI:
    app = create_app(settings)

    @app.get("/pages")
    async def pages(pagination: Pagination) -> PageParams:
        return pagination

    return app


@pytest.mark.anyio
async def test_pages_of_an_ordered_query(notes: type[Note], db_session: AsyncSession) -> None:
    db_session.add_all(notes(id=number, text=f"note {number}") for number in (5, 3, 1, 4, 2))
    await db_session.flush()
    query = select(notes).order_by(notes.id)
    pages = [await paginate(db_session, query, PageParams(page=page, page_size=2), NoteRead) for page in (1, 2, 3, 4)]
    assert [[note.id for note in page.items] for page in pages] == [[1, 2], [3, 4], [5], []]
    assert {(page.total, page.page_size) for page in pages} == {(5, 2)}
    assert [page.page for page in pages] == [1, 2, 3, 4]
    assert pages[0].items[0] == NoteRead(id=1, text="note 1")


@pytest.mark.anyio
@pytest.mark.parametrize(
    ("sort", "expected"),
    [
        ("text", [1, 3, 4, 2]),
        ("-text", [2, 4, 3, 1]),  # ties by id, descending too
        ("-text,id", [2, 3, 4, 1]),
        ("id", [1, 2, 3, 4]),
    ],
)
async def test_order_by_follows_the_sort_keys_then_the_id(
    sort: str, expected: list[int], notes: type[Note], db_session: AsyncSession
) -> None:
    db_session.add_all(notes(id=number, text=text) for number, text in ((1, "a"), (2, "c"), (3, "b"), (4, "b")))
    await db_session.flush()
    page = await paginate(db_session, select(notes).order_by(*order_by(notes, sort)), PageParams(), NoteRead)
    assert [note.id for note in page.items] == expected


@pytest.mark.anyio
async def test_the_last_page_allowed_reaches_the_database_without_an_error(
    notes: type[Note], db_session: AsyncSession
) -> None:
    last = PageParams(page=MAX_PAGE, page_size=MAX_PAGE_SIZE)
    page = await paginate(db_session, select(notes).order_by(notes.id), last, NoteRead)
    assert (page.items, page.total) == ([], 0)


def test_the_defaults_are_the_first_page_of_20(pages_app: FastAPI) -> None:
    with TestClient(pages_app) as client:
        assert client.get("/pages").json() == {"page": 1, "page_size": 20}
        assert client.get("/pages", params={"page": 3, "page_size": 100}).json() == {"page": 3, "page_size": 100}


@pytest.mark.parametrize(
    "params",
    [
        {"page": 0},
        {"page": MAX_PAGE + 1},
        {"page": "x"},
        {"page_size": 0},
        {"page_size": MAX_PAGE_SIZE + 1},
        # Lax mode would read these as integers; OpenAPI's integer is decimal digits.
        {"page": "2.0"},
        {"page": " 2"},
        {"page": "2_0"},
        {"page_size": "+5"},
    ],
)
def test_pages_out_of_range_are_a_422(params: dict[str, Any], pages_app: FastAPI) -> None:
    with TestClient(pages_app) as client:
        response = client.get("/pages", params=params)
    assert response.status_code == 422
    assert response.json()["error"]["details"][0]["loc"] == ["query", next(iter(params))]


def test_the_parameters_are_documented_with_their_bounds(pages_app: FastAPI) -> None:
    parameters = {p["name"]: p["schema"] for p in pages_app.openapi()["paths"]["/pages"]["get"]["parameters"]}
    assert parameters["page"]["minimum"] == 1 and parameters["page"]["maximum"] == MAX_PAGE
    assert (parameters["page_size"]["minimum"], parameters["page_size"]["maximum"]) == (1, MAX_PAGE_SIZE)
