"""Declarative base for the ORM models in ``app.models``."""

from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase, declared_attr

# Stable constraint names make migrations (Alembic autogenerate) reproducible.
NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)

    @declared_attr.directive
    def __mapper_args__(cls) -> dict[str, Any]:
        # Values the database sets (defaults, timestamps) come back in the INSERT's or
        # UPDATE's RETURNING clause: reading them later would be a lazy load, which
        # raises under asyncio.
        return {"eager_defaults": True}
