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

__all__ = [
    "Base",
    "TimestampMixin",
    "UUIDPrimaryKeyMixin",
    "create_engine",
    "create_read_session_factory",
    "create_session_factory",
    "get_db_session",
    "get_engine",
    "get_read_session",
    "unit_of_work",
]
