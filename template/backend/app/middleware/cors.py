"""CORS, configured from settings."""

from fastapi import FastAPI
from starlette.datastructures import Headers, MutableHeaders
from starlette.middleware import cors
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from app.core.config import Settings
from app.exceptions.handlers import error_response
from app.middleware.request_id import REQUEST_ID_HEADER


def _add_vary_origin(message: Message) -> None:
    headers = message.get("headers", ())
    for name, _ in headers:
        if name == b"vary":
            MutableHeaders(scope=message).add_vary_header("Origin")
            return
    # No Vary yet (the usual case): append the raw pair, a fraction of MutableHeaders' cost.
    message["headers"] = [*headers, (b"vary", b"Origin")]


class CORSMiddleware(cors.CORSMiddleware):
    """Starlette's CORS middleware, with refused preflights answered like other errors.

    Starlette refuses a preflight with a plain-text 400 that still carries the
    allow-* headers it would have granted; here a refused origin, method or header
    gets the JSON error envelope and no CORS headers at all.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        # Most requests (server to server, health probes) carry no Origin: skip parsing
        # headers for them, but still say that responses vary by Origin, for caches.
        if scope["type"] != "http" or any(name == b"origin" for name, _ in scope["headers"]):
            await super().__call__(scope, receive, send)
            return

        async def send_with_vary(message: Message) -> None:
            if message["type"] == "http.response.start":
                _add_vary_origin(message)
            await send(message)

        await self.app(scope, receive, send_with_vary)

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
