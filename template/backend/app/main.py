"""Application factory and lifespan.

Servers build the app with ``uvicorn --factory app.main:create_app`` (settings from
the environment); tests call ``create_app(settings)`` with settings of their own.
"""

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import TYPE_CHECKING

from fastapi import FastAPI
from fastapi.telemetry import TelemetryConfig

from app.api.v1.router import api_router
from app.cache.client import create_redis
from app.core.config import Settings, load_settings_or_exit, mask_password
from app.core.logging import setup_logging
from app.core.openapi import document_error_envelope
from app.core.readiness import check_readiness
from app.db.session import create_engine, create_read_session_factory, create_session_factory
from app.exceptions.handlers import EXCEPTION_HANDLERS
from app.middleware.cors import add_cors_middleware
from app.middleware.errors import UnhandledErrorMiddleware
from app.middleware.request_id import RequestIDMiddleware

if TYPE_CHECKING:
    from app.core.telemetry import Telemetry

logger = logging.getLogger(__name__)

# FastAPI's own request spans, metrics and error logs, all off: it then skips looking for
# a configured OpenTelemetry provider on every request.
TELEMETRY_OFF: TelemetryConfig = {"tracing": False, "metrics": False, "logs": False}


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    engine = create_engine(settings)
    redis = create_redis(settings)
    app.state.engine = engine
    app.state.session_factory = create_session_factory(engine)
    app.state.read_session_factory = create_read_session_factory(engine)
    app.state.redis = redis
    logger.info("Database engine created", extra={"database_url": mask_password(settings.DATABASE_URL)})
    logger.info("Redis client created", extra={"redis_url": mask_password(settings.REDIS_URL)})

    # A dependency that is down does not stop startup: liveness stays up and
    # readiness reports it until it is back. Say so early in the log.
    readiness = await check_readiness(engine, redis, settings.READINESS_TIMEOUT)
    for name, ok in (("Database", readiness.database), ("Redis", readiness.redis)):
        if ok:
            logger.info("%s connection established", name)
        else:
            logger.warning("%s is unreachable at startup; readiness reports 503 until it answers", name)
    # After the check above, whose statements would otherwise each start a trace of their own.
    telemetry: Telemetry | None = app.state.telemetry
    if telemetry is not None:
        telemetry.start(engine, redis)
        logger.info(
            "Telemetry on: traces and metrics exported over OTLP/HTTP",
            extra={"service_name": settings.OTEL_SERVICE_NAME, "service_instance_id": telemetry.instance_id},
        )

    try:
        yield
    finally:
        if telemetry is not None:
            # First, so that the last figures are the pool's, not those of a disposed one.
            await telemetry.stop(redis)
        await engine.dispose()
        logger.info("Database engine disposed")
        await redis.aclose()
        logger.info("Redis client closed")


def create_app(settings: Settings | None = None) -> FastAPI:
    """The app, configured by SETTINGS or else by the environment and ``backend/.env``."""
    if settings is None:
        settings = load_settings_or_exit()
    telemetry = None
    if settings.TELEMETRY_ENABLED:
        # Imported only now: with telemetry off the process loads no OpenTelemetry SDK.
        from app.core.telemetry import Telemetry

        telemetry = Telemetry(settings)
    setup_logging(debug=settings.DEBUG, filters=telemetry.log_filters() if telemetry else ())

    app = FastAPI(
        title=f"{settings.PROJECT_NAME} API",
        description=settings.PROJECT_DESCRIPTION,
        version=settings.VERSION,
        docs_url="/docs" if settings.DOCS_ENABLED else None,
        redoc_url="/redoc" if settings.DOCS_ENABLED else None,
        openapi_url="/openapi.json" if settings.DOCS_ENABLED else None,
        lifespan=lifespan,
        telemetry=telemetry.fastapi_options() if telemetry else TELEMETRY_OFF,
        exception_handlers=EXCEPTION_HANDLERS,
    )
    app.state.settings = settings
    app.state.telemetry = telemetry
    app.include_router(api_router, prefix=settings.API_V1_PREFIX)
    document_error_envelope(app)

    # The last added runs first. The request-ID middleware wraps everything, so
    # CORS preflights and 500s carry the header and the request's log context.
    app.add_middleware(UnhandledErrorMiddleware)
    add_cors_middleware(app, settings)
    app.add_middleware(RequestIDMiddleware)
    return app
