from app.cache.client import create_redis, get_redis

__all__ = ["create_redis", "get_redis"]
