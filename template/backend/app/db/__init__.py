from app.db.base import Base
from app.db.mixins import TimestampMixin, UUIDPrimaryKeyMixin
from app.db.session import (
    DbSession,
    Engine,
    create_engine,
    create_session_factory,
    get_db_session,
    unit_of_work,
)

__all__ = [
    "Base",
    "DbSession",
    "Engine",
    "TimestampMixin",
    "UUIDPrimaryKeyMixin",
    "create_engine",
    "create_session_factory",
    "get_db_session",
    "unit_of_work",
]
