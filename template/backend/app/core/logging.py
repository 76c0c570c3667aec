"""Structured logging: one JSON object per line, carrying the request ID.

``setup_logging`` routes the root logger and uvicorn's loggers through one JSON
handler on stdout. It is safe to call more than once (tests build many apps).
"""

import logging
import re
import sys
from collections.abc import Iterable
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any
from urllib.parse import unquote_plus

from pythonjsonlogger.core import RESERVED_ATTRS
from pythonjsonlogger.orjson import OrjsonFormatter

# Set by the request-ID middleware for the duration of a request.
request_id_var: ContextVar[str | None] = ContextVar("request_id", default=None)

_HANDLER_NAME = "app-json"
# Record attributes that are not extra fields. uvicorn attaches an ANSI-coloured copy
# of some messages for its own console format: not wanted either.
_NOT_EXTRA = frozenset((*RESERVED_ATTRS, "message", "asctime", "color_message"))


class JsonFormatter(OrjsonFormatter):
    """python-json-logger's orjson formatter with a fixed set of fields.

    ``timestamp`` (UTC, ISO 8601), ``level``, ``logger``, ``module``, ``message``,
    then every ``extra`` field (``request_id`` among them) and ``exc_info``. Fixing
    the fields lets ``add_fields`` skip the generic field lookups and renames, which
    are most of the cost of the access line written for every request.
    """

    def add_fields(self, log_data: dict[str, Any], record: logging.LogRecord, message_dict: dict[str, Any]) -> None:
        log_data["timestamp"] = datetime.fromtimestamp(record.created, tz=UTC)
        log_data["level"] = record.levelname
        log_data["logger"] = record.name
        log_data["module"] = record.module
        log_data["message"] = record.message
        for key, value in record.__dict__.items():
            if key not in _NOT_EXTRA:
                log_data[key] = value
        log_data.update(message_dict)


class RequestIdFilter(logging.Filter):
    """Adds the current request's ID to every record written inside a request."""

    def filter(self, record: logging.LogRecord) -> bool:
        request_id = request_id_var.get()
        if request_id is not None:
            record.request_id = request_id
        return True


# Query parameters whose values stay out of log lines and traces: names containing one of
# these words (api_key, access_token, X-Amz-Signature), case-insensitive, or exactly "sig".
_SECRET_PARAMETER = re.compile(r"token|passw(or)?d|secret|key|signature|credential|^sig$", re.IGNORECASE)


def redact_query(query: str) -> str:
    """QUERY (``a=1&api_key=xyz``) with the values of secret-looking parameters as ``***``."""
    if not query:
        return query
    parts = []
    for part in query.split("&"):
        name, equals, value = part.partition("=")
        if equals and value and _SECRET_PARAMETER.search(unquote_plus(name)):
            part = f"{name}=***"
        parts.append(part)
    return "&".join(parts)


def json_formatter() -> JsonFormatter:
    return JsonFormatter()


def setup_logging(*, debug: bool = False, stream: Any = None, filters: Iterable[logging.Filter] = ()) -> None:
    """Send every log record to ``stream`` (stdout by default) as one JSON line.

    FILTERS run after the request-ID filter (telemetry adds the trace and span IDs).
    """
    handler = logging.StreamHandler(stream if stream is not None else sys.stdout)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(json_formatter())
    handler.addFilter(RequestIdFilter())
    for extra_filter in filters:
        handler.addFilter(extra_filter)

    root = logging.getLogger()
    for old in [h for h in root.handlers if h.get_name() == _HANDLER_NAME]:
        root.removeHandler(old)
        old.close()
    root.addHandler(handler)
    root.setLevel(logging.DEBUG if debug else logging.INFO)

    # uvicorn installs its own text handlers before it builds the app; hand their
    # records to the root handler instead, so they come out as JSON too. A logger
    # uvicorn left without handlers stays as it is: `--no-access-log` (what `make api`
    # passes, as the request-ID middleware writes the access line) leaves its access
    # logger so, and uvicorn then skips building its own line.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        uvicorn_logger = logging.getLogger(name)
        if uvicorn_logger.handlers:
            uvicorn_logger.handlers.clear()
            uvicorn_logger.propagate = True
            uvicorn_logger.setLevel(logging.NOTSET)


def logging_config(*, debug: bool = False) -> dict[str, Any]:
    """What ``setup_logging`` sets up, as a ``logging.config.dictConfig`` dictionary.

    For a server that configures logging before any app exists (the production server's
    supervising process), so that its own records come out as the same JSON lines. The
    handler has ``setup_logging``'s name: an app built later replaces it, not doubles it.
    """
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "formatters": {"json": {"()": json_formatter}},
        "handlers": {
            _HANDLER_NAME: {"class": "logging.StreamHandler", "formatter": "json", "stream": "ext://sys.stdout"}
        },
        "root": {"handlers": [_HANDLER_NAME], "level": "DEBUG" if debug else "INFO"},
    }
