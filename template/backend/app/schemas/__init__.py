from app.schemas.base import BaseSchema, ErrorDetail, ErrorResponse, PaginatedResponse, TimestampSchema
from app.schemas.health import HealthResponse, ReadinessResponse

__all__ = [
    "BaseSchema",
    "ErrorDetail",
    "ErrorResponse",
    "HealthResponse",
    "PaginatedResponse",
    "ReadinessResponse",
    "TimestampSchema",
]
