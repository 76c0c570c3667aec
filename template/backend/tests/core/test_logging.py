"""One JSON object per line, with the request ID inside requests."""

import io
import logging
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import uvicorn
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.core.logging import request_id_var, setup_logging
from app.main import create_app
from tests.conftest import parse_log_lines


@pytest.fixture
def stream() -> Iterator[io.StringIO]:
    buffer = io.StringIO()
    yield buffer
    setup_logging()  # leave the root logger on stdout for the next test


def test_records_are_json_with_the_required_fields(stream: io.StringIO) -> None:
    setup_logging(stream=stream)
    logging.getLogger("app.example").info("hello %s", "world", extra={"user_id": 7})
    (record,) = parse_log_lines(stream.getvalue())
    assert record["message"] == "hello world"
    assert record["level"] == "INFO"
    assert record["module"] == "test_logging"
    assert record["logger"] == "app.example"
    assert record["user_id"] == 7
    assert "T" in record["timestamp"] and record["timestamp"].endswith("+00:00")
    assert "request_id" not in record  # outside a request


def test_request_id_is_added_inside_a_request_context(stream: io.StringIO) -> None:
    setup_logging(stream=stream)
    token = request_id_var.set("abc-123")
    try:
        logging.getLogger("app.example").warning("inside")
    finally:
        request_id_var.reset(token)
    (record,) = parse_log_lines(stream.getvalue())
    assert record["request_id"] == "abc-123"


@pytest.mark.parametrize(("debug", "level"), [(True, logging.DEBUG), (False, logging.INFO)])
def test_level_follows_debug(debug: bool, level: int, stream: io.StringIO) -> None:
    setup_logging(debug=debug, stream=stream)
    assert logging.getLogger().level == level
    logging.getLogger("app.example").debug("detail")
    assert bool(stream.getvalue()) is debug


def test_setup_is_idempotent(stream: io.StringIO) -> None:
    setup_logging(stream=stream)
    setup_logging(stream=stream)
    logging.getLogger("app.example").info("once")
    assert len(parse_log_lines(stream.getvalue())) == 1


@pytest.mark.parametrize("access_log", [True, False])
def test_uvicorn_records_come_out_as_json_and_its_access_switch_is_kept(access_log: bool, stream: io.StringIO) -> None:
    # uvicorn configures its loggers (text handlers) when its Config is built, before it builds the app.
    uvicorn.Config("app.main:create_app", factory=True, access_log=access_log)
    setup_logging(stream=stream)
    logging.getLogger("uvicorn.error").info(
        "Started server process [%d]", 1, extra={"color_message": "Started server process [\x1b[36m%d\x1b[0m]"}
    )
    logging.getLogger("uvicorn.access").info('%s - "%s %s HTTP/%s" %d', "127.0.0.1:5000", "GET", "/", "1.1", 200)
    # uvicorn writes its access line only where a handler is reachable from this logger.
    assert logging.getLogger("uvicorn.access").hasHandlers() is access_log
    records = parse_log_lines(stream.getvalue())
    assert [(r["logger"], r["message"]) for r in records] == [
        ("uvicorn.error", "Started server process [1]"),
        *([("uvicorn.access", '127.0.0.1:5000 - "GET / HTTP/1.1" 200')] if access_log else []),
    ]
    assert "color_message" not in records[0]


def test_exception_traceback_stays_inside_one_json_line(stream: io.StringIO) -> None:
    setup_logging(stream=stream)
    try:
        raise RuntimeError("boom\nsecond line")
    except RuntimeError:
        logging.getLogger("app.example").exception("failed")
    (record,) = parse_log_lines(stream.getvalue())
    assert "RuntimeError: boom" in record["exc_info"]


def test_request_logs_and_access_line_share_the_request_id(
    settings: Settings, read_logs: Callable[[], list[dict[str, Any]]]
) -> None:
    app: FastAPI = create_app(settings)

    @app.get("/logs-something")
    async def logs_something() -> dict[str, str]:
        logging.getLogger("app.example").info("handling")
        return {}

    with TestClient(app) as client:
        read_logs()
        response = client.get("/logs-something")
    records = read_logs()
    request_id = response.headers["X-Request-ID"]
    handling = next(r for r in records if r["message"] == "handling")
    access = next(r for r in records if r["logger"] == "app.access")
    assert handling["request_id"] == access["request_id"] == request_id
    assert access["method"] == "GET"
    assert access["path"] == "/logs-something"
    assert access["status"] == 200
    assert isinstance(access["duration_ms"], float)
    assert access["message"] == "GET /logs-something 200"
