"""The v1 API: every v1 routes module is included here, once."""

from fastapi import APIRouter

from app.api.v1 import health
from app.schemas.base import ErrorResponse

api_router = APIRouter(
    # Every v1 route can fail with the error envelope; say so in OpenAPI.
    responses={500: {"model": ErrorResponse, "description": "Internal server error"}},
)
api_router.include_router(health.router)
