"""checked_enum: a varchar whose CHECK constraint lists an enum's values, and the way to add one."""

from collections.abc import Iterator
from enum import StrEnum

import pytest
from alembic.migration import MigrationContext
from alembic.operations import Operations
from sqlalchemy import Connection, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TimestampMixin, UUIDPrimaryKeyMixin, checked_enum

SPEAKERS = "scratch.speakers"


class Voice(StrEnum):
    ALLOY = "alloy"
    ECHO = "echo"


class Speaker(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    __abstract__ = True  # mapped by the fixture, and only for the tests of this module
    voice: Mapped[Voice] = mapped_column(checked_enum(Voice, "voice"))


@pytest.fixture(scope="module")
def speaker() -> Iterator[type[Speaker]]:
    # In the tests' scratch schema; the table leaves the metadata again, so that the
    # migration checks never see it.
    class ScratchSpeaker(Speaker):
        __tablename__ = "speakers"
        __table_args__ = ({"schema": "scratch"},)

    yield ScratchSpeaker
    Base.metadata.remove(Base.metadata.tables[SPEAKERS])


@pytest.fixture
async def speakers(speaker: type[Speaker], db_connection: AsyncConnection, scratch_tables: str) -> type[Speaker]:
    # Created in the test's transaction, so dropped with its rollback.
    await db_connection.run_sync(Base.metadata.tables[SPEAKERS].create)
    return speaker


async def insert(connection: AsyncConnection, voice: str) -> None:
    async with connection.begin_nested():  # a failure leaves the test's transaction usable
        await connection.execute(text("INSERT INTO scratch.speakers (voice) VALUES (:voice)"), {"voice": voice})


@pytest.mark.anyio
async def test_a_value_is_stored_as_itself_and_read_back_as_the_member(
    speakers: type[Speaker], db_session: AsyncSession
) -> None:
    db_session.add(speakers(voice=Voice.ECHO))
    await db_session.flush()
    assert await db_session.scalar(text("SELECT voice FROM scratch.speakers")) == "echo"
    db_session.expire_all()
    assert (await db_session.scalars(select(speakers))).one().voice is Voice.ECHO


@pytest.mark.anyio
async def test_the_database_refuses_another_value(speakers: type[Speaker], db_connection: AsyncConnection) -> None:
    await insert(db_connection, "alloy")
    with pytest.raises(IntegrityError, match="ck_speakers_voice"):
        await insert(db_connection, "verse")


def replace_values(connection: Connection, values: tuple[str, ...]) -> None:
    """The README's recipe for a new value, as a revision runs it: the CHECK constraint replaced."""
    op = Operations(MigrationContext.configure(connection, opts={"target_metadata": Base.metadata}))
    listed = ", ".join(f"'{value}'" for value in values)
    op.drop_constraint(op.f("ck_speakers_voice"), "speakers", schema="scratch", type_="check")
    op.create_check_constraint(op.f("ck_speakers_voice"), "speakers", f"voice IN ({listed})", schema="scratch")


@pytest.mark.anyio
async def test_a_value_is_added_and_removed_by_replacing_the_constraint(
    speakers: type[Speaker], db_connection: AsyncConnection
) -> None:
    await db_connection.run_sync(replace_values, ("alloy", "echo", "verse"))  # the upgrade
    await insert(db_connection, "verse")
    # The downgrade cannot run while a row holds the value: PostgreSQL checks the rows.
    with pytest.raises(IntegrityError, match="ck_speakers_voice"):
        async with db_connection.begin_nested():
            await db_connection.run_sync(replace_values, ("alloy", "echo"))
    await db_connection.execute(text("DELETE FROM scratch.speakers WHERE voice = 'verse'"))
    await db_connection.run_sync(replace_values, ("alloy", "echo"))  # the downgrade
    with pytest.raises(IntegrityError, match="ck_speakers_voice"):
        await insert(db_connection, "verse")
