"""OpenAPI that documents the error envelope the handlers really send."""

from collections.abc import Callable
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute

from app.schemas.base import ErrorResponse

_REF_PREFIX = "#/components/schemas/"
_FASTAPI_422_SCHEMAS = ("HTTPValidationError", "ValidationError")
# Answered by the authentication dependency of an operation that declares a security scheme.
_SECURITY_ERRORS: dict[str, dict[str, Any]] = {
    "401": {
        "description": "No access token, or one that is not accepted",
        "headers": {"WWW-Authenticate": {"description": "How to authenticate", "schema": {"type": "string"}}},
    },
    "403": {"description": "The access token lacks a scope this operation requires"},
}


def _use_envelope_for_framework_errors(schema: dict[str, Any]) -> None:
    # FastAPI documents its own 422 body on every route with parameters; ours is
    # the envelope (see handlers.validation_exception_handler).
    components: dict[str, Any] = schema.setdefault("components", {}).setdefault("schemas", {})
    envelope = ErrorResponse.model_json_schema(ref_template=_REF_PREFIX + "{model}")
    for name, definition in envelope.pop("$defs", {}).items():
        components.setdefault(name, definition)
    components.setdefault(ErrorResponse.__name__, envelope)
    content = {"application/json": {"schema": {"$ref": _REF_PREFIX + ErrorResponse.__name__}}}
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.setdefault("responses", {})
            if "422" in responses:
                responses["422"]["content"] = content
            # FastAPI answers 400 by itself when it cannot read a request body at all
            # (not UTF-8, for example), and does not document it.
            if "requestBody" in operation and "400" not in responses:
                responses["400"] = {"description": "Malformed request body", "content": content}
            if operation.get("security"):
                for status, response in _SECURITY_ERRORS.items():
                    responses.setdefault(status, {**response, "content": content})
    for name in _FASTAPI_422_SCHEMAS:
        components.pop(name, None)


def operation_id(route: APIRoute) -> str:
    """The operationId of ROUTE: its function's name (``list_agents``), unique in the app.

    Generated clients name their functions after it (``listAgents``); FastAPI's default
    also spells the path and the method, so renaming a prefix would rename the client.
    """
    return route.name


def document_error_envelope(app: FastAPI) -> None:
    generate: Callable[[], dict[str, Any]] = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = generate()
            _use_envelope_for_framework_errors(schema)
            app.openapi_schema = schema
        return app.openapi_schema

    # FastAPI's documented way to extend the schema is to replace this method.
    app.openapi = openapi  # type: ignore[method-assign]
