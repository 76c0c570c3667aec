"""Base schemas that request and response models build on."""

from datetime import datetime
from typing import Any, Generic, TypeVar

from pydantic import BaseModel, ConfigDict, Field

T = TypeVar("T")


class BaseSchema(BaseModel):
    """Base for API schemas; reads ORM objects directly (``Model.model_validate(orm_obj)``)."""

    model_config = ConfigDict(from_attributes=True)


class TimestampSchema(BaseSchema):
    """Mixin for resources that record when they were created and last updated."""

    created_at: datetime
    updated_at: datetime


class PaginatedResponse(BaseSchema, Generic[T]):
    """One page of a list: ``PaginatedResponse[UserRead]``."""

    items: list[T]
    total: int = Field(ge=0, description="Number of items across all pages")
    page: int = Field(ge=1, description="1-based page number")
    page_size: int = Field(ge=1, description="Maximum number of items per page")


class ErrorDetail(BaseModel):
    code: str = Field(description="Stable, machine-readable error code", examples=["not_found"])
    message: str = Field(description="Human-readable explanation", examples=["User not found"])
    details: Any = Field(default=None, description="Optional structured context, e.g. field errors")


class ErrorResponse(BaseModel):
    """The envelope of every error response."""

    error: ErrorDetail
