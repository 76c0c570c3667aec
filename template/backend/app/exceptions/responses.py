"""OpenAPI ``responses=`` entries for errors a route can answer with, in the error envelope.

A routes module that uses the database documents its 409 and 503 on its router:
``APIRouter(prefix="/widgets", tags=["widgets"], responses=DATABASE_ERRORS)``.
"""

from typing import Any

from app.exceptions.errors import AppException, ConflictException, ServiceUnavailableException
from app.schemas.base import ErrorResponse

_RETRY_AFTER = {"Retry-After": {"description": "Seconds to wait before retrying", "schema": {"type": "integer"}}}


def error_responses(*errors: type[AppException]) -> dict[int | str, dict[str, Any]]:
    """One documented response per exception class: its status, the envelope, its headers."""
    responses: dict[int | str, dict[str, Any]] = {}
    for error in errors:
        response: dict[str, Any] = {"model": ErrorResponse, "description": error.default_message}
        if issubclass(error, ServiceUnavailableException):
            response["headers"] = _RETRY_AFTER
        responses[error.status_code] = response
    return responses


# A unique or foreign-key violation (409); PostgreSQL unreachable or its pool exhausted (503).
DATABASE_ERRORS = error_responses(ConflictException, ServiceUnavailableException)
# Redis unreachable (503).
REDIS_ERRORS = error_responses(ServiceUnavailableException)
