"""The v1 API: every v1 routes module is included here, once."""

from typing import Any

from fastapi import APIRouter, FastAPI

from app.api.v1 import health
from app.schemas.base import ErrorResponse


class RouterGroup:
    """Routers registered like on an ``APIRouter``, each included in the app directly.

    ``include_router`` takes ``APIRouter.include_router``'s options. Options given to the
    group apply to every router, combined the way nested APIRouters combine them: tags,
    dependencies and callbacks add up (the group's first), responses merge (the router's
    win for the same status), a route is deprecated if either says so and left out of the
    schema if either does; any other option is the router's where it gives one.

    Why not one v1 APIRouter: since FastAPI 0.137 an included router stays a node that is
    resolved again on every request, so each level of nesting costs every request (about
    7 µs on 2 cores; the template's BENCHMARKS.md). A group keeps the v1 routes one level
    deep.
    """

    def __init__(self, *, prefix: str = "", **options: Any) -> None:
        self.prefix = _checked(prefix)
        self.options = options
        self.routers: list[tuple[APIRouter, str, dict[str, Any]]] = []

    def include_router(self, router: APIRouter, *, prefix: str = "", **options: Any) -> None:
        self.routers.append((router, _checked(prefix), options))

    def include_in(self, app: FastAPI, prefix: str = "") -> None:
        """Includes every registered router in APP, under PREFIX and the group's prefix."""
        for router, router_prefix, options in self.routers:
            app.include_router(router, prefix=prefix + self.prefix + router_prefix, **self._combined(options))

    def _combined(self, options: dict[str, Any]) -> dict[str, Any]:
        group = self.options
        combined = {**group, **options}
        for key in group.keys() & options.keys():
            if key in {"tags", "dependencies", "callbacks"}:
                combined[key] = [*(group[key] or []), *(options[key] or [])]
            elif key == "responses":
                combined[key] = {**(group[key] or {}), **(options[key] or {})}
            elif key == "deprecated":
                combined[key] = bool(group[key] or options[key])
            elif key == "include_in_schema":
                combined[key] = bool(group[key] and options[key])
        return combined


def _checked(prefix: str) -> str:
    # APIRouter.include_router's rules, here at registration: the prefixes are joined
    # later, where "items" would silently make "/api/v1items".
    if prefix and (not prefix.startswith("/") or prefix.endswith("/")):
        raise ValueError(f"A router prefix must start with '/' and not end with '/', not {prefix!r}")
    return prefix


api_router = RouterGroup(
    # Every v1 route can fail with the error envelope; say so in OpenAPI.
    responses={500: {"model": ErrorResponse, "description": "Internal server error"}},
)
api_router.include_router(health.router)
