"""Liveness and readiness probes."""

from fastapi import APIRouter, Response, status

from app.api.deps import AppSettings, Engine, RedisClient
from app.core.readiness import check_readiness
from app.schemas.health import HealthResponse, ReadinessResponse

router = APIRouter(prefix="/health", tags=["health"])


@router.get("", summary="Liveness probe")
async def health() -> HealthResponse:
    """The process is up and serving requests. Touches no dependency."""
    return HealthResponse()


@router.get(
    "/ready",
    summary="Readiness probe",
    responses={503: {"model": ReadinessResponse, "description": "PostgreSQL or Redis does not answer"}},
)
async def readiness(response: Response, settings: AppSettings, engine: Engine, redis: RedisClient) -> ReadinessResponse:
    """PostgreSQL and Redis both answer within ``READINESS_TIMEOUT`` seconds."""
    readiness = await check_readiness(engine, redis, settings.READINESS_TIMEOUT)
    if not readiness.ok:
        response.status_code = status.HTTP_503_SERVICE_UNAVAILABLE
    return ReadinessResponse(
        status="ok" if readiness.ok else "unavailable",
        database="connected" if readiness.database else "disconnected",
        redis="connected" if readiness.redis else "disconnected",
    )
