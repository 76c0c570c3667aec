"""Request ID and access log, as one pure-ASGI middleware.

Every response gets an ``X-Request-ID`` header, every log record written while the
request is handled carries the same ``request_id``, and one JSON access line is
written when the response has been sent: method, path, query (secret-looking values
masked), status, duration, client address, HTTP version, user agent and, where a route
verified an access token, its subject.
"""

import logging
import re
import time
import uuid

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.logging import redact_query, request_id_var

REQUEST_ID_HEADER = "X-Request-ID"

# A client-supplied ID is reused only if it cannot smuggle anything into a header
# or a log line: UUIDs and other short tokens pass, anything else is replaced.
_VALID_REQUEST_ID = re.compile(r"[A-Za-z0-9._-]{1,64}")

access_logger = logging.getLogger("app.access")


def _request_id(headers: Headers) -> str:
    incoming = headers.get(REQUEST_ID_HEADER)
    if incoming is not None and _VALID_REQUEST_ID.fullmatch(incoming):
        return incoming
    return str(uuid.uuid4())


def _caller(scope: Scope) -> dict[str, str]:
    # The subject of the access token a route verified (request.state.subject), if any.
    subject = scope.get("state", {}).get("subject")
    return {"subject": subject} if subject else {}


class RequestIDMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        headers = Headers(scope=scope)
        request_id = _request_id(headers)
        token = request_id_var.set(request_id)
        started = time.perf_counter()
        status_code = 500

        async def send_with_request_id(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
                message.setdefault("headers", [])
                MutableHeaders(scope=message).append(REQUEST_ID_HEADER, request_id)
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            method, path = scope["method"], scope["path"]
            duration_ms = round((time.perf_counter() - started) * 1000, 3)
            # The peer, or the client a trusted proxy forwarded (the server rewrites it only
            # for FORWARDED_ALLOW_IPS).
            client = scope.get("client")
            # Written while the request ID is still set, so the line carries it too.
            access_logger.info(
                "%s %s %d",
                method,
                path,
                status_code,
                extra={
                    "method": method,
                    "path": path,
                    "query": redact_query(scope.get("query_string", b"").decode("latin-1")),
                    "status": status_code,
                    "duration_ms": duration_ms,
                    "client": client[0] if client else None,
                    "http_version": scope.get("http_version", "1.1"),
                    "user_agent": headers.get("user-agent"),
                    **_caller(scope),
                },
            )
            request_id_var.reset(token)
