"""Turns exceptions that no handler took into the 500 error envelope.

Starlette runs an ``Exception`` handler in its outermost middleware, outside the
request-ID and CORS middleware, so its response would lack their headers. Catching
here, inside them, keeps ``X-Request-ID`` and the CORS headers on every 500.
"""

import logging

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.exceptions.handlers import internal_error_response

logger = logging.getLogger(__name__)


class UnhandledErrorMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        response_started = False

        async def send_tracking_start(message: Message) -> None:
            nonlocal response_started
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, receive, send_tracking_start)
        except Exception:
            logger.exception("Unhandled error in %s %s", scope["method"], scope["path"])
            if not response_started:
                await internal_error_response()(scope, receive, send)
            # Otherwise the status line is already sent; the server closes the
            # connection when the app returns with the response unfinished.
