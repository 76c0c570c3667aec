"""Whether the service's dependencies answer: used by the readiness probe and at startup."""

import asyncio
from collections.abc import Awaitable
from dataclasses import dataclass

from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine

from app.cache.client import ping_redis
from app.db.session import ping_database


@dataclass(frozen=True)
class Readiness:
    database: bool
    redis: bool

    @property
    def ok(self) -> bool:
        return self.database and self.redis


async def _answers(check: Awaitable[None], seconds: float) -> bool:
    # Any failure means "not ready": refused, timed out, auth error, protocol error.
    try:
        async with asyncio.timeout(seconds):
            await check
    except Exception:
        return False
    return True


# Kept back from the checks for answering, so that the probe's answer, not only its
# checks, arrives within the timeout (what a probe's own timeout counts).
ANSWER_RESERVE = 0.05


async def check_readiness(engine: AsyncEngine, redis: Redis, seconds: float) -> Readiness:
    """Pings both dependencies concurrently; done within ``seconds``, answer included.

    Each check gets ``seconds`` less ``ANSWER_RESERVE`` (at most half of ``seconds``).
    """
    bound = seconds - min(ANSWER_RESERVE, seconds / 2)
    database_ok, redis_ok = await asyncio.gather(
        _answers(ping_database(engine), bound), _answers(ping_redis(redis), bound)
    )
    return Readiness(database=database_ok, redis=redis_ok)
