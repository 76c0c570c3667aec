"""Dependency aliases for routes: declare ``session: DbSession`` and FastAPI provides it.

The provider functions live beside what they provide; routes import the aliases from here.
"""

from typing import Annotated

from fastapi import Depends, Query
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from app.api.pagination import PageParams
from app.cache.client import get_redis
from app.core.config import Settings, get_settings
from app.db.session import get_db_session, get_engine, get_read_session

AppSettings = Annotated[Settings, Depends(get_settings)]
# scope="function": the session commits before the response is sent, so a failed
# commit answers with its own error (409, 503) instead of following a 200.
DbSession = Annotated[AsyncSession, Depends(get_db_session, scope="function")]
# For routes that only read: no transaction around the statements, nothing to commit.
# scope="function": the connection goes back to the pool before the response is sent.
ReadSession = Annotated[AsyncSession, Depends(get_read_session, scope="function")]
Engine = Annotated[AsyncEngine, Depends(get_engine)]
# ?page=1&page_size=20, for paginate() in app/api/pagination.py.
Pagination = Annotated[PageParams, Query()]
RedisClient = Annotated[Redis, Depends(get_redis)]
