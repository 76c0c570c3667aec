from app.exceptions.errors import (
    AppException,
    BadRequestException,
    ConflictException,
    ForbiddenException,
    InternalServerException,
    NotFoundException,
    ServiceUnavailableException,
    UnauthorizedException,
)
from app.exceptions.responses import DATABASE_ERRORS, REDIS_ERRORS, error_responses

__all__ = [
    "DATABASE_ERRORS",
    "REDIS_ERRORS",
    "AppException",
    "BadRequestException",
    "ConflictException",
    "ForbiddenException",
    "InternalServerException",
    "NotFoundException",
    "ServiceUnavailableException",
    "UnauthorizedException",
    "error_responses",
]
