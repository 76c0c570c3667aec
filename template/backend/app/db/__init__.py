from app.db.base import Base
from app.db.mixins import TimestampMixin, UUIDPrimaryKeyMixin
from app.db.session import (
    create_engine,
    create_read_session_factory,
    create_session_factory,
    get_db_session,
    get_engine,
    get_read_session,
    unit_of_work,
)
from app.db.types import checked_enum

__all__ = [
    "Base",
    "TimestampMixin",
    "UUIDPrimaryKeyMixin",
    "checked_enum",
    "create_engine",
    "create_read_session_factory",
    "create_session_factory",
    "get_db_session",
    "get_engine",
    "get_read_session",
    "unit_of_work",
]
