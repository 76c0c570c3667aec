from app.db.base import Base
from app.db.session import create_engine, create_session_factory, get_db_session, get_engine

__all__ = ["Base", "create_engine", "create_session_factory", "get_db_session", "get_engine"]
