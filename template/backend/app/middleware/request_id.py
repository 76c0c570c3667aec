"""Request ID and access log, as one pure-ASGI middleware.

Every response gets an ``X-Request-ID`` header, every log record written while the
request is handled carries the same ``request_id``, and one JSON access line is
written when the response has been sent.
"""

import logging
import os
import re
import sys
import threading
import time

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.core.logging import request_id_var

REQUEST_ID_HEADER = "X-Request-ID"
_HEADER_NAME = REQUEST_ID_HEADER.lower().encode("ascii")

# A client-supplied ID is reused only if it cannot smuggle anything into a header
# or a log line: UUIDs and other short tokens pass, anything else is replaced.
_VALID_REQUEST_ID = re.compile(rb"[A-Za-z0-9._-]{1,64}")

access_logger = logging.getLogger("app.access")


class AccessRecord(logging.LogRecord):
    """The access line's record: an ordinary ``LogRecord``, built at a fraction of the cost.

    ``Logger.info`` looks up the caller's frame and ``LogRecord.__init__`` derives file,
    module and level names for every record. For the access line all of that is the
    same every time, so it is computed once; each record sets only its time, thread and
    process (as ``logging``'s switches say; ``taskName`` stays unset), arguments and fields.
    Together that is a few µs of every request (the template's BENCHMARKS.md).
    """

    _call_site = logging.LogRecord(
        access_logger.name, logging.INFO, __file__, 0, "%s %s %d", (), None, "__call__"
    ).__dict__
    # relativeCreated counts from when logging was imported; recover that instant.
    _logging_started = _call_site["created"] - _call_site["relativeCreated"] / 1000

    def __init__(self, method: str, path: str, status: int, duration_ms: float) -> None:
        self.__dict__.update(self._call_site)
        self.created = created = time.time()
        self.msecs = int((created - int(created)) * 1000) + 0.0
        self.relativeCreated = (created - self._logging_started) * 1000
        self.thread = threading.get_ident() if logging.logThreads else None
        self.threadName = threading.current_thread().name if logging.logThreads else None
        self.process = os.getpid() if logging.logProcesses else None
        self.processName = _process_name() if logging.logMultiprocessing else None
        self.args = (method, path, status)
        self.method = method
        self.path = path
        self.status = status
        self.duration_ms = round(duration_ms, 3)


def _process_name() -> str:
    multiprocessing = sys.modules.get("multiprocessing")  # as LogRecord: never imported for this
    return multiprocessing.current_process().name if multiprocessing is not None else "MainProcess"


def _request_id(scope: Scope) -> bytes:
    headers: list[tuple[bytes, bytes]] = scope["headers"]
    for name, value in headers:
        if name == _HEADER_NAME:
            if _VALID_REQUEST_ID.fullmatch(value):
                return value
            break
    return _new_request_id()


def _new_request_id() -> bytes:
    # A random (version 4) UUID, like str(uuid.uuid4()) at a third of the cost: no
    # UUID object on the way, on every request.
    raw = bytearray(os.urandom(16))
    raw[6] = raw[6] & 0x0F | 0x40  # version 4
    raw[8] = raw[8] & 0x3F | 0x80  # RFC 4122 variant
    hexed = raw.hex()
    return f"{hexed[:8]}-{hexed[8:12]}-{hexed[12:16]}-{hexed[16:20]}-{hexed[20:]}".encode("ascii")


class RequestIDMiddleware:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        request_id = _request_id(scope)
        token = request_id_var.set(request_id.decode("ascii"))
        started = time.perf_counter()
        status_code = 500

        async def send_with_request_id(message: Message) -> None:
            nonlocal status_code
            if message["type"] == "http.response.start":
                status_code = message["status"]
                # Appending the raw pair costs a fraction of MutableHeaders, on every response.
                message["headers"] = [*message.get("headers", ()), (_HEADER_NAME, request_id)]
            await send(message)

        try:
            await self.app(scope, receive, send_with_request_id)
        finally:
            if access_logger.isEnabledFor(logging.INFO):
                access_logger.handle(
                    AccessRecord(scope["method"], scope["path"], status_code, (time.perf_counter() - started) * 1000)
                )
            request_id_var.reset(token)
