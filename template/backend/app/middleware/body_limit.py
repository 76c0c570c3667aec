"""A limit on the size of request bodies: 413 in the error envelope, before the body is read in full.

A declared ``Content-Length`` over the limit is refused before the app runs; a body
without one (chunked) is counted as the app reads it, and refused once it passes the
limit. Either way nothing beyond the limit is buffered: the server discards the rest.
"""

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.exceptions.handlers import error_response

# RFC 9110's name for 413.
CODE = "content_too_large"


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.message = f"The request body is larger than {max_bytes} bytes"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        declared = Headers(scope=scope).get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            await error_response(413, CODE, self.message)(scope, receive, send)
            return

        received = 0
        over = answered = started = False

        async def receive_within_limit() -> Message:
            nonlocal received, over, answered
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    over = True
                    if not started:
                        answered = True
                        await error_response(413, CODE, self.message)(scope, receive, send)
                    # The app stops reading as it would for a client that went away.
                    return {"type": "http.disconnect"}
            return message

        async def send_unless_answered(message: Message) -> None:
            nonlocal started
            if answered:  # the 413 went instead of whatever the app makes of the disconnect
                return
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, receive_within_limit, send_unless_answered)
