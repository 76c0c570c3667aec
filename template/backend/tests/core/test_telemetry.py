"""Telemetry on: what a collector receives (a loopback OTLP/HTTP receiver), and the log lines.

With TELEMETRY_ENABLED=true a request to a route that queries PostgreSQL and Redis is one
trace (the server span, named by the route template, and its SQL and Redis spans), the log
lines written meanwhile carry its trace ID, an incoming W3C traceparent is continued, and
the metrics carry route templates. A collector that is down fails no request. With it off
nothing is loaded, instrumented or exported.
"""

import json
import logging
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

from app.core.config import Settings
from app.main import create_app
from tests.conftest import BACKEND_DIR, Servers, parse_log_lines
from tests.otlp import DataPoint, ReceivedSpan, Receiver, running_receiver
from tests.probe import probe_router
from tests.test_server import free_port, server_env

PROBE = "/probe/both/{key}"


@pytest.fixture
def receiver(monkeypatch: pytest.MonkeyPatch) -> Iterator[Receiver]:
    """A collector on a loopback port, where the service's exporters send (read by the SDK)."""
    with running_receiver() as running:
        monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", running.endpoint)
        yield running


def telemetry_app(make_settings: Callable[..., Settings]) -> FastAPI:
    app = create_app(make_settings(TELEMETRY_ENABLED=True, OTEL_SERVICE_NAME="probe-service"))
    app.include_router(probe_router())
    return app


def stdout_records(capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    """The app's own JSON lines (create_app's handler writes to stdout)."""
    return parse_log_lines(capsys.readouterr().out)


def server_span(spans: list[ReceivedSpan], trace_id: str | None = None) -> ReceivedSpan:
    (found,) = [s for s in spans if s.is_server and trace_id in (None, s.trace_id)]
    return found


def descends_from(span: ReceivedSpan, ancestor: ReceivedSpan, spans: list[ReceivedSpan]) -> bool:
    by_id = {s.span_id: s for s in spans}
    while span.parent_span_id:
        if span.parent_span_id == ancestor.span_id:
            return True
        span = by_id[span.parent_span_id]
    return False


def test_a_request_is_one_trace_with_its_sql_and_redis_spans(
    receiver: Receiver, make_settings: Callable[..., Settings]
) -> None:
    with TestClient(telemetry_app(make_settings)) as client:
        assert client.get("/probe/both/k1").json() == {"number": 42, "cached": None}
    # Leaving the client ran the lifespan's end, which sends what is left.
    spans = receiver.spans()
    server = server_span(spans)
    assert server.name == f"GET {PROBE}"
    assert server.attributes["http.route"] == PROBE
    assert server.attributes["http.request.method"] == "GET"
    assert server.attributes["http.response.status_code"] == 200
    assert server.attributes["url.path"] == "/probe/both/k1"
    assert server.resource["service.name"] == "probe-service"
    assert server.resource["service.instance.id"]

    children = [s for s in spans if s.trace_id == server.trace_id and s is not server]
    assert all(descends_from(s, server, spans) for s in children), children
    sql = [s for s in children if "SELECT 41 + 1" in str(s.attributes.get("db.statement"))]
    assert [s.attributes["db.system"] for s in sql] == ["postgresql"]
    redis = [s for s in children if s.attributes.get("db.system") == "redis"]
    assert [s.name for s in redis] == ["GET"]
    assert redis[0].attributes["db.statement"] == "GET ?"  # the key stays out
    assert len({s.trace_id for s in spans if s.is_server}) == 1


def test_log_lines_written_during_the_request_carry_its_trace_id(
    receiver: Receiver, make_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    with TestClient(telemetry_app(make_settings)) as client:
        request_id = client.get("/probe/both/k2").headers["X-Request-ID"]
    server = server_span(receiver.spans())
    records = stdout_records(capsys)
    during = [r for r in records if r.get("request_id") == request_id]
    assert {r["message"] for r in during} >= {"Probe reads PostgreSQL and Redis", "GET /probe/both/k2 200"}
    for record in during:
        assert (record["trace_id"], record["span_id"]) == (server.trace_id, server.span_id), record
    # Outside a request (startup, shutdown) there is no span, and no ID.
    assert [r for r in records if "request_id" not in r and "trace_id" in r] == []


def test_an_incoming_traceparent_is_continued(receiver: Receiver, make_settings: Callable[..., Settings]) -> None:
    trace_id, parent_id = "4bf92f3577b34da6a3ce929d0e0e4736", "00f067aa0ba902b7"
    with TestClient(telemetry_app(make_settings)) as client:
        client.get("/probe/both/k3", headers={"traceparent": f"00-{trace_id}-{parent_id}-01"})
        client.get("/api/v1/health")  # no traceparent: a trace of its own
    spans = receiver.spans()
    continued = server_span(spans, trace_id)
    assert continued.parent_span_id == parent_id
    assert continued.name == f"GET {PROBE}"
    assert len([s for s in spans if s.trace_id == trace_id and not s.is_server]) >= 2  # SQL and Redis
    assert len({s.trace_id for s in spans if s.is_server}) == 2


def test_the_query_of_a_span_has_its_secrets_masked(receiver: Receiver, make_settings: Callable[..., Settings]) -> None:
    with TestClient(telemetry_app(make_settings)) as client:
        client.get("/api/v1/health?page=2&api_key=k-123&Access_Token=t-456")
    assert server_span(receiver.spans()).attributes["url.query"] == "page=2&api_key=***&Access_Token=***"


def last_values(points: list[DataPoint]) -> dict[tuple[str, str], float]:
    """The latest value per (route, status) over cumulative points of one process."""
    latest: dict[tuple[str, str], DataPoint] = {}
    for point in points:
        key = (str(point.attributes.get("http.route")), str(point.attributes["http.response.status_code"]))
        if key not in latest or point.time_unix_nano >= latest[key].time_unix_nano:
            latest[key] = point
    return {key: point.value for key, point in latest.items()}


def test_metrics_carry_route_templates_and_the_pool(receiver: Receiver, make_settings: Callable[..., Settings]) -> None:
    with TestClient(telemetry_app(make_settings)) as client:
        for key in ("a", "b", "c"):
            assert client.get(f"/probe/both/{key}").status_code == 200
        assert client.get("/no/such/path/123").status_code == 404
    requests = receiver.points("http.server.request.duration")
    assert last_values(requests) == {(PROBE, "200"): 3, ("None", "404"): 1}
    assert {p.attributes["http.request.method"] for p in requests} == {"GET"}
    # No raw path, nor anything else per request, in any attribute of any metric.
    values = {str(v) for p in requests for v in p.attributes.values()}
    assert not [v for v in values if ("/probe/both/" in v and v != PROBE) or "no/such" in v], values

    pool = receiver.points("db.client.connection.count")
    assert {p.attributes["db.client.connection.state"] for p in pool} == {"used", "idle"}
    assert max(p.value for p in pool if p.attributes["db.client.connection.state"] == "idle") >= 1
    assert receiver.points("db.client.connection.overflow")
    assert {p.value for p in receiver.points("db.client.connection.max")} == {5 + 10}
    assert receiver.points("db.client.connections.usage") == []  # the instrumentation's own: dropped


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)


def test_a_collector_that_is_down_fails_no_request(
    monkeypatch: pytest.MonkeyPatch, make_settings: Callable[..., Settings], capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", f"http://127.0.0.1:{free_port()}")  # nothing listens
    monkeypatch.setenv("OTEL_BSP_SCHEDULE_DELAY", "20")  # export spans every 20 ms
    attempts = Recorder()  # every failure the exporters report, before the app's handler filters them
    exporter_logs = logging.getLogger("opentelemetry.exporter")
    exporter_logs.addHandler(attempts)
    try:
        with TestClient(telemetry_app(make_settings)) as client:
            deadline = time.monotonic() + 15
            while len(attempts.records) < 2:
                assert time.monotonic() < deadline, "the exporters did not try (and fail) twice"
                assert client.get("/probe/both/down").status_code == 200
                time.sleep(0.02)
            stopping = time.monotonic()
        # The exporters would retry for 10 s (OTEL_EXPORTER_OTLP_TIMEOUT); the shutdown waits 4 + 1.
        assert time.monotonic() - stopping < 4 + 1 + 1
    finally:
        exporter_logs.removeHandler(attempts)
    records = stdout_records(capsys)
    reported = [r for r in records if r["logger"].startswith("opentelemetry.")]
    assert reported, "an unreachable collector is reported"
    kinds = [(r["logger"], r["level"], re.sub(r"\d+", "#", r["message"])) for r in reported]
    assert len(kinds) == len(set(kinds)), f"reported more than once: {reported}"
    assert "Telemetry not sent within 4.0 s of shutdown (collector unreachable?)" in [r["message"] for r in records]


def test_off_means_nothing_loaded_instrumented_or_exported(servers: Servers, receiver: Receiver) -> None:
    # A fresh interpreter: what the libraries import by themselves, then the app and a request.
    code = """
import json, sys
def otel(): return sorted(m for m in sys.modules if m.startswith("opentelemetry"))
import fastapi
by_fastapi = otel()
import asyncpg, redis.asyncio, sqlalchemy
from fastapi.testclient import TestClient
by_libraries = otel()
from app.main import create_app
with TestClient(create_app()) as client:
    status = client.get("/api/v1/health/ready").status_code
from opentelemetry import metrics, trace
print(json.dumps({
    "status": status,
    "by_fastapi": by_fastapi,
    "by_libraries": by_libraries,
    "by_app": sorted(set(otel()) - set(by_libraries)),
    "telemetry_module": "app.core.telemetry" in sys.modules,
    "wrapped": [hasattr(f, "__wrapped__") for f in (redis.asyncio.Redis.execute_command, asyncpg.Connection.fetch)],
    "providers": [type(trace.get_tracer_provider()).__name__, type(metrics.get_meter_provider()).__name__],
}))
"""
    env = server_env(servers, TELEMETRY_ENABLED="false", OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint)
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=BACKEND_DIR, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.splitlines()[-1])
    assert found["status"] == 200
    # FastAPI imports the OpenTelemetry API unconditionally, not the SDK. (redis-py 7.1 and
    # newer import the SDK's metrics package when it is installed, and use it only if asked.)
    assert not [m for m in found["by_fastapi"] if m.startswith("opentelemetry.sdk")]
    assert found["by_app"] == []
    assert not [m for m in found["by_libraries"] if m.startswith(("opentelemetry.instr", "opentelemetry.exporter"))]
    assert found["telemetry_module"] is False
    assert found["wrapped"] == [False, False]  # no instrumentation
    assert found["providers"] == ["ProxyTracerProvider", "_ProxyMeterProvider"]  # none set
    assert receiver.spans() == [] and receiver.points("http.server.request.duration") == []
