"""The model conventions: a UUID primary key and timestamps the database sets."""

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Mapped

from app.db import Base, TimestampMixin, UUIDPrimaryKeyMixin

GADGETS = "scratch.gadgets"


class Gadget(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    __abstract__ = True  # mapped by the fixture, and only for the tests of this module
    name: Mapped[str]


@pytest.fixture(scope="module")
def gadget() -> Iterator[type[Gadget]]:
    # A model on the app's own Base (with its mapper options), in the tests' scratch
    # schema; its table leaves the metadata again so that the migration checks never see it.
    class ScratchGadget(Gadget):
        __tablename__ = "gadgets"
        __table_args__ = ({"schema": "scratch"},)

    yield ScratchGadget
    Base.metadata.remove(Base.metadata.tables[GADGETS])


@pytest.fixture
async def gadgets(gadget: type[Gadget], db_connection: AsyncConnection, scratch_tables: str) -> type[Gadget]:
    # Created in the test's transaction, so dropped with its rollback.
    await db_connection.run_sync(Base.metadata.tables[GADGETS].create)
    return gadget


@pytest.mark.anyio
async def test_ids_are_random_uuids(gadgets: type[Gadget], db_session: AsyncSession) -> None:
    first, second = gadgets(name="a"), gadgets(name="b")
    db_session.add_all([first, second])
    await db_session.flush()
    assert isinstance(first.id, uuid.UUID) and first.id.version == 4
    assert first.id != second.id
    # Rows written by SQL alone get theirs from the database.
    row = await db_session.execute(text("INSERT INTO scratch.gadgets (name) VALUES ('sql') RETURNING id"))
    assert isinstance(row.scalar_one(), uuid.UUID)


@pytest.mark.anyio
async def test_timestamps_come_from_the_database_and_follow_updates(
    gadgets: type[Gadget], db_session: AsyncSession
) -> None:
    # now() is the start of the transaction: the same for every statement of this test.
    database_now = (await db_session.execute(select(func.now()))).scalar_one()
    item = gadgets(name="a")
    db_session.add(item)
    await db_session.flush()
    # Read without a lazy load (which asyncio forbids): RETURNING brought them back.
    assert item.created_at == item.updated_at == database_now
    assert item.created_at.tzinfo is not None

    item.updated_at = long_ago = datetime(2000, 1, 1, tzinfo=UTC)
    await db_session.flush()
    assert item.updated_at == long_ago
    item.name = "renamed"
    await db_session.flush()
    assert item.updated_at == database_now, "an UPDATE must refresh updated_at"
    assert item.created_at == database_now
