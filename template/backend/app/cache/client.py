"""Redis client (redis-py asyncio) and its dependency."""

from fastapi import Request
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff

from app.core.config import Settings


def create_redis(settings: Settings) -> Redis:
    # from_url connects lazily: the app starts even while Redis is down. (Annotated:
    # redis-py types its result only from 7.2 on.)
    client: Redis = Redis.from_url(
        settings.REDIS_URL,
        decode_responses=True,
        socket_connect_timeout=settings.REDIS_SOCKET_TIMEOUT,
        socket_timeout=settings.REDIS_SOCKET_TIMEOUT,
        # redis-py's default retries back off for seconds; a short, bounded retry
        # rides over a dropped connection without stalling requests when Redis is down.
        # The asyncio client takes the asyncio Retry (redis 8.2 warns on the sync one).
        retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.1), retries=2),
    )
    return client


async def ping_redis(client: Redis) -> None:
    await client.ping()


def get_redis(request: Request) -> Redis:
    client: Redis = request.app.state.redis
    return client
