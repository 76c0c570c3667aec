"""Application factory and lifespan.

``uvicorn app.main:app`` serves ``app``, built from the environment on first use;
tests call ``create_app(settings)`` with settings of their own.
"""

import gc
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from app.api.v1.router import api_router
from app.cache.client import create_redis
from app.core.config import Settings, SettingsError, load_settings, mask_password
from app.core.logging import setup_logging
from app.core.openapi import document_error_envelope
from app.core.readiness import check_readiness
from app.db.session import create_engine, create_session_factory
from app.exceptions.handlers import EXCEPTION_HANDLERS
from app.middleware.cors import add_cors_middleware
from app.middleware.errors import UnhandledErrorMiddleware
from app.middleware.request_id import RequestIDMiddleware

logger = logging.getLogger(__name__)

GC_THRESHOLD = 10_000


@asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    settings: Settings = app.state.settings
    engine = create_engine(settings)
    redis = create_redis(settings)
    app.state.engine = engine
    app.state.session_factory = create_session_factory(engine)
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

    # Each request allocates and frees many small objects; with the collector's default
    # first threshold (700) that means a collection every few requests. A higher one
    # cuts that work by several µs a request (the template's BENCHMARKS.md); restored on shutdown.
    thresholds = gc.get_threshold()
    gc.set_threshold(GC_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)
        await engine.dispose()
        logger.info("Database engine disposed")
        await redis.aclose()
        logger.info("Redis client closed")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or load_settings()
    setup_logging(debug=settings.DEBUG)

    app = FastAPI(
        title=f"{settings.PROJECT_NAME} API",
        description=settings.PROJECT_DESCRIPTION,
        version=settings.VERSION,
        docs_url="/docs" if settings.DOCS_ENABLED else None,
        redoc_url="/redoc" if settings.DOCS_ENABLED else None,
        openapi_url="/openapi.json" if settings.DOCS_ENABLED else None,
        lifespan=lifespan,
        telemetry=None if settings.TELEMETRY_ENABLED else {"tracing": False, "metrics": False, "logs": False},
        exception_handlers=EXCEPTION_HANDLERS,
    )
    app.state.settings = settings
    docs_routes = list(app.routes)  # FastAPI's: /openapi.json, /docs and /redoc
    api_router.include_in(app, prefix=settings.API_V1_PREFIX)
    # A request's route is looked up in order, and the API is asked for far more often
    # than the docs pages: match it first (about 3 µs a request, the template's BENCHMARKS.md).
    app.router.routes[:] = [*(route for route in app.routes if route not in docs_routes), *docs_routes]
    document_error_envelope(app)

    # The last added runs first. The request-ID middleware wraps everything, so
    # CORS preflights and 500s carry the header and the request's log context.
    app.add_middleware(UnhandledErrorMiddleware)
    add_cors_middleware(app, settings)
    app.add_middleware(RequestIDMiddleware)
    return app


def __getattr__(name: str) -> FastAPI:
    # `uvicorn app.main:app` looks up `app`, and it is built then, on first use:
    # importing this module (tests, tools, scripts) reads no settings and
    # configures nothing.
    if name != "app":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    try:
        application = create_app()
    except SettingsError as exc:
        # One readable message and exit status 1, not a traceback from the import.
        raise SystemExit(f"error: {exc}") from None
    globals()["app"] = application
    return application
