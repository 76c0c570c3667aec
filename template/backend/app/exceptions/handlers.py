"""Exception handlers: every error path answers with the same JSON envelope.

``{"error": {"code": "...", "message": "...", "details": ...}}``
"""

from collections.abc import Callable, Coroutine, Mapping
from http import HTTPStatus
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import JSONResponse, Response

from app.exceptions.errors import AppException, InternalServerException


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


async def http_exception_handler(request: Request, exc: StarletteHTTPException) -> Response:
    if exc.status_code in (204, 304):  # these may not carry a body
        return Response(status_code=exc.status_code, headers=exc.headers)
    message, details = exc.detail, None
    if not isinstance(message, str):
        message, details = HTTPStatus(exc.status_code).phrase, exc.detail
    return error_response(exc.status_code, _code_for_status(exc.status_code), message, details, exc.headers)


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


# Passed to FastAPI(exception_handlers=...), whose signature accepts handlers typed
# for their own exception class.
EXCEPTION_HANDLERS: dict[int | type[Exception], Callable[[Request, Any], Coroutine[Any, Any, Response]]] = {
    AppException: app_exception_handler,
    StarletteHTTPException: http_exception_handler,
    RequestValidationError: validation_exception_handler,
    Exception: unhandled_exception_handler,
}
