from app.exceptions.errors import (
    AppException,
    BadRequestException,
    ForbiddenException,
    InternalServerException,
    NotFoundException,
)

__all__ = [
    "AppException",
    "BadRequestException",
    "ForbiddenException",
    "InternalServerException",
    "NotFoundException",
]
