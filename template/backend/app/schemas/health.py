"""Schemas of the health endpoints."""

from typing import Literal

from pydantic import BaseModel

DependencyStatus = Literal["connected", "disconnected"]


class HealthResponse(BaseModel):
    status: Literal["ok"] = "ok"


class ReadinessResponse(BaseModel):
    status: Literal["ok", "unavailable"]
    database: DependencyStatus
    redis: DependencyStatus
