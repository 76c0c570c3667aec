from app.db.base import Base
from app.db.session import DbSession, Engine, create_engine, create_session_factory, get_db_session

__all__ = ["Base", "DbSession", "Engine", "create_engine", "create_session_factory", "get_db_session"]
