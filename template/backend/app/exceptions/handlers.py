"""Exception handlers: every error path answers with the same JSON envelope.

``{"error": {"code": "...", "message": "...", "details": ...}}``
"""

import errno
import logging
import socket
import traceback
from collections.abc import Callable, Coroutine, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from redis import exceptions as redis_errors
from sqlalchemy import exc as sa_errors
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response
from starlette.routing import Match

from app.exceptions.errors import (
    AppException,
    ConflictException,
    InternalServerException,
    ServiceUnavailableException,
)

logger = logging.getLogger(__name__)

_METHODS = ("DELETE", "GET", "HEAD", "OPTIONS", "PATCH", "POST", "PUT")

# SQLSTATEs of a write that contradicts stored data: unique, foreign key, exclusion, and
# the delete of a row that another refers to with ON DELETE RESTRICT.
_CONFLICT_SQLSTATES = frozenset({"23505", "23503", "23P01", "23001"})
# SQLSTATE classes of a database that cannot serve now: connection exception (08),
# insufficient resources (53: too many connections), operator intervention (57:
# shutdown, starting up, statement cancelled by statement_timeout).
_UNAVAILABLE_SQLSTATE_CLASSES = ("08", "53", "57")
# A host that cannot be reached at all raises a plain OSError with one of these.
_UNREACHABLE_ERRNOS = frozenset({errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN})


def error_response(
    status_code: int,
    code: str,
    message: str,
    details: Any = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details}}
    return JSONResponse(body, status_code=status_code, headers=headers)


def internal_error_response() -> JSONResponse:
    # Deliberately generic: the traceback goes to the log, never to the client.
    return error_response(500, InternalServerException.code, InternalServerException.default_message)


def _code_for_status(status_code: int) -> str:
    try:
        return HTTPStatus(status_code).phrase.lower().replace(" ", "_").replace("-", "_")
    except ValueError:
        return "http_error"


async def app_exception_handler(request: Request, exc: AppException) -> Response:
    return error_response(exc.status_code, exc.code, exc.message, exc.details, exc.headers)


def _allowed_methods(request: Request) -> str:
    # Starlette's 405 names the methods of the one route it found, but FastAPI adds a route
    # per method: ask every route which methods it would take on this path.
    routes = request.app.router.routes
    allowed = [
        method
        for method in _METHODS
        if any(route.matches({**request.scope, "method": method})[0] is Match.FULL for route in routes)
    ]
    return ", ".join(allowed)


async def http_exception_handler(request: Request, exc: StarletteHTTPException) -> Response:
    if exc.status_code in (204, 304):  # these may not carry a body
        return Response(status_code=exc.status_code, headers=exc.headers)
    message, details = exc.detail, None
    if not isinstance(message, str):
        message, details = HTTPStatus(exc.status_code).phrase, exc.detail
    headers = exc.headers
    if exc.status_code == 405:
        headers = {**(headers or {}), "Allow": _allowed_methods(request)}
    return error_response(exc.status_code, _code_for_status(exc.status_code), message, details, headers)


async def validation_exception_handler(request: Request, exc: RequestValidationError) -> Response:
    # Field locations and messages only: submitted values are not echoed back.
    details = [
        {"loc": list(error.get("loc", ())), "message": error.get("msg", ""), "type": error.get("type", "")}
        for error in exc.errors()
    ]
    return error_response(422, "validation_error", "Request validation failed", details)


async def unhandled_exception_handler(request: Request, exc: Exception) -> Response:
    # Reached only for errors raised outside UnhandledErrorMiddleware (in other
    # middleware); Starlette re-raises afterwards, so the server logs the traceback.
    return internal_error_response()


def _sqlstate(exc: sa_errors.DBAPIError) -> str:
    # The driver's error carries the SQLSTATE (asyncpg's and psycopg's alike).
    code = getattr(exc.orig, "sqlstate", None)
    return code if isinstance(code, str) else ""


def _describe(exc: BaseException) -> str:
    """The error's class and first line, for the log. Never its SQL nor its parameters."""
    if not isinstance(exc, sa_errors.DBAPIError):
        message = str(exc).partition("\n")[0][:200]
        return f"{type(exc).__name__}: {message}" if message else type(exc).__name__
    sqlstate = _sqlstate(exc)
    # Not the driver's DETAIL line (it quotes the row), nor the message of a data
    # exception (class 22, which quotes the offending value).
    message = "" if sqlstate.startswith("22") else str(exc.orig).partition("\n")[0][:200]
    text = f"{type(exc.orig).__name__}: {message}" if message else type(exc.orig).__name__
    return f"{text} (SQLSTATE {sqlstate})" if sqlstate else text


async def _unavailable(request: Request, what: str, exc: BaseException) -> Response:
    logger.warning("%s: answered 503", what, extra={"error": _describe(exc)})
    return await app_exception_handler(request, ServiceUnavailableException())


def _database_bug(exc: sa_errors.DBAPIError) -> Response:
    # Bad SQL, bad data, a NOT NULL or CHECK violation the route should have refused.
    # A plain traceback would quote the driver's DETAIL line with the row's values: log
    # the stack's frames and the sanitised error instead.
    stack = "".join(traceback.format_tb(exc.__traceback__))
    logger.error("Database error: answered 500", extra={"error": _describe(exc), "stack": stack})
    return internal_error_response()


async def integrity_error_handler(request: Request, exc: sa_errors.IntegrityError) -> Response:
    if _sqlstate(exc) not in _CONFLICT_SQLSTATES:
        return _database_bug(exc)
    logger.info("Database constraint violated: answered 409", extra={"error": _describe(exc)})
    return await app_exception_handler(request, ConflictException())


async def database_error_handler(request: Request, exc: sa_errors.DBAPIError) -> Response:
    unavailable = (
        exc.connection_invalidated
        or isinstance(exc, sa_errors.OperationalError | sa_errors.InterfaceError)
        or _sqlstate(exc).startswith(_UNAVAILABLE_SQLSTATE_CLASSES)
    )
    if not unavailable:
        return _database_bug(exc)
    return await _unavailable(request, "Database unavailable", exc)


async def pool_timeout_handler(request: Request, exc: sa_errors.TimeoutError) -> Response:
    return await _unavailable(request, "No database connection free within DATABASE_POOL_TIMEOUT", exc)


async def network_error_handler(request: Request, exc: OSError) -> Response:
    # The database driver connects with plain sockets: a refused or timed-out connection,
    # or a host name that does not resolve, arrives as the socket's own error.
    reachable = not isinstance(exc, ConnectionError | TimeoutError | socket.gaierror)
    if reachable and exc.errno not in _UNREACHABLE_ERRNOS:
        raise exc  # a file or other local error: the 500 path logs it
    return await _unavailable(request, "Connection to a dependency failed", exc)


async def redis_error_handler(request: Request, exc: redis_errors.RedisError) -> Response:
    return await _unavailable(request, "Redis unavailable", exc)


# Passed to FastAPI(exception_handlers=...), whose signature accepts handlers typed
# for their own exception class.
EXCEPTION_HANDLERS: dict[int | type[Exception], Callable[[Request, Any], Coroutine[Any, Any, Response]]] = {
    AppException: app_exception_handler,
    StarletteHTTPException: http_exception_handler,
    RequestValidationError: validation_exception_handler,
    # The most specific class wins: IntegrityError before DBAPIError.
    sa_errors.IntegrityError: integrity_error_handler,
    sa_errors.DBAPIError: database_error_handler,
    sa_errors.TimeoutError: pool_timeout_handler,
    OSError: network_error_handler,
    redis_errors.ConnectionError: redis_error_handler,
    redis_errors.TimeoutError: redis_error_handler,
    Exception: unhandled_exception_handler,
}
