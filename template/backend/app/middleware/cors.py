"""CORS, configured from settings."""

from fastapi import FastAPI
from starlette.datastructures import Headers
from starlette.middleware import cors
from starlette.responses import Response

from app.core.config import Settings
from app.exceptions.handlers import error_response
from app.middleware.request_id import REQUEST_ID_HEADER


class CORSMiddleware(cors.CORSMiddleware):
    """Starlette's CORS middleware, with refused preflights answered like other errors.

    Starlette refuses a preflight with a plain-text 400 that still carries the
    allow-* headers it would have granted; here a refused origin, method or header
    gets the JSON error envelope and no CORS headers at all.
    """

    def preflight_response(self, request_headers: Headers) -> Response:
        response = super().preflight_response(request_headers)
        if response.status_code == 200:
            return response
        return error_response(400, "cors_preflight_refused", bytes(response.body).decode())


def add_cors_middleware(app: FastAPI, settings: Settings) -> None:
    app.add_middleware(
        CORSMiddleware,
        allow_origins=settings.CORS_ORIGINS,
        allow_credentials=settings.CORS_ALLOW_CREDENTIALS,
        allow_methods=["*"],
        allow_headers=["*"],
        # Lets browser code read the ID to quote it in bug reports.
        expose_headers=[REQUEST_ID_HEADER],
    )
