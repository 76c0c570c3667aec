from app.cache.client import RedisClient, create_redis, get_redis

__all__ = ["RedisClient", "create_redis", "get_redis"]
