"""The service's exception hierarchy.

Raise these from routes and services; the handlers in ``handlers.py`` turn each into
the JSON error envelope with its HTTP status and stable ``code``.
"""

from typing import Any, ClassVar


class AppException(Exception):
    """Base class: an error the client should see, with a status and a stable code."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    default_message: ClassVar[str] = "Internal server error"

    def __init__(
        self,
        message: str | None = None,
        *,
        details: Any = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        self.message = message or self.default_message
        self.details = details
        self.headers = headers
        super().__init__(self.message)

    # The name FastAPI's HTTPException gives its message, for code that reads `exc.detail`.
    @property
    def detail(self) -> str:
        return self.message

    @property
    def error_code(self) -> str:
        return self.code


class BadRequestException(AppException):
    status_code = 400
    code = "bad_request"
    default_message = "Bad request"


class UnauthorizedException(AppException):
    """The request carries no valid credentials: no access token, or one that is not accepted."""

    status_code = 401
    code = "unauthorized"
    default_message = "Authentication required"

    def __init__(
        self,
        message: str | None = None,
        *,
        details: Any = None,
        headers: dict[str, str] | None = None,
        error: str | None = None,
    ) -> None:
        # A 401 names the scheme to authenticate with (RFC 7235), here a bearer token; with
        # ERROR (RFC 6750: "invalid_token") when a token was sent and refused.
        challenge = "Bearer" if error is None else f'Bearer error="{error}"'
        super().__init__(message, details=details, headers={"WWW-Authenticate": challenge, **(headers or {})})


class ForbiddenException(AppException):
    status_code = 403
    code = "forbidden"
    default_message = "Forbidden"


class NotFoundException(AppException):
    status_code = 404
    code = "not_found"
    default_message = "Not found"


class InternalServerException(AppException):
    status_code = 500
    code = "internal_error"
    default_message = "Internal server error"


class ConflictException(AppException):
    """The request contradicts data already stored (a duplicate, a missing referenced row)."""

    status_code = 409
    code = "conflict"
    default_message = "The request conflicts with the current state of the resource"


class ServiceUnavailableException(AppException):
    """A dependency (PostgreSQL, Redis) cannot serve the request now; the client may retry."""

    status_code = 503
    code = "service_unavailable"
    default_message = "Service temporarily unavailable, retry later"
    # Seconds, sent as Retry-After: long enough for a restart or failover to finish.
    retry_after: ClassVar[int] = 5

    def __init__(
        self,
        message: str | None = None,
        *,
        details: Any = None,
        headers: dict[str, str] | None = None,
        retry_after: int | None = None,
    ) -> None:
        seconds = self.retry_after if retry_after is None else retry_after
        super().__init__(message, details=details, headers={"Retry-After": str(seconds), **(headers or {})})
