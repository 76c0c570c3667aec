"""A loopback OTLP/HTTP receiver for the telemetry tests: what a collector would get from the service.

It accepts ``POST /v1/traces`` and ``POST /v1/metrics`` (protobuf, as the service's exporters
send them), decodes them with opentelemetry-proto and keeps them for the test to read. A WSGI
app on the standard library's server: one thread per connection, as the exporters of several
worker processes send at once.
"""

import gzip
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server
from wsgiref.types import StartResponse, WSGIEnvironment

from opentelemetry.proto.collector.metrics.v1.metrics_service_pb2 import (
    ExportMetricsServiceRequest,
    ExportMetricsServiceResponse,
)
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span


class ThreadingServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass  # not on the test's stderr


def attributes(pairs: Any) -> dict[str, Any]:
    """OTLP ``KeyValue`` pairs as a dict of plain values."""
    result = {}
    for pair in pairs:
        assert isinstance(pair, KeyValue)
        kind = pair.value.WhichOneof("value")
        result[pair.key] = getattr(pair.value, kind) if kind else None
    return result


@dataclass(frozen=True)
class ReceivedSpan:
    name: str
    kind: int  # Span.SpanKind: SPAN_KIND_SERVER, SPAN_KIND_CLIENT, ...
    trace_id: str  # hex, as W3C and the log lines write it
    span_id: str
    parent_span_id: str  # "" for a root span
    attributes: dict[str, Any]
    resource: dict[str, Any]

    @property
    def is_server(self) -> bool:
        return self.kind == Span.SPAN_KIND_SERVER


@dataclass(frozen=True)
class DataPoint:
    metric: str
    attributes: dict[str, Any]
    resource: dict[str, Any]
    value: float  # a sum's or gauge's value; a histogram's count
    time_unix_nano: int


class Receiver:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._traces: list[ExportTraceServiceRequest] = []
        self._metrics: list[ExportMetricsServiceRequest] = []
        self._server = make_server("127.0.0.1", 0, self._wsgi, server_class=ThreadingServer, handler_class=QuietHandler)
        self.endpoint = f"http://127.0.0.1:{self._server.server_port}"

    def _wsgi(self, environ: WSGIEnvironment, start_response: StartResponse) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        if environ.get("HTTP_CONTENT_ENCODING") == "gzip":
            body = gzip.decompress(body)
        answer = self._store(environ["PATH_INFO"], body) if environ["REQUEST_METHOD"] == "POST" else None
        if answer is None:
            start_response("404 Not Found", [("Content-Length", "0")])
            return []
        start_response("200 OK", [("Content-Type", "application/x-protobuf"), ("Content-Length", str(len(answer)))])
        return [answer]

    def _store(self, path: str, body: bytes) -> bytes | None:
        with self._lock:
            if path == "/v1/traces":
                self._traces.append(ExportTraceServiceRequest.FromString(body))
                return bytes(ExportTraceServiceResponse().SerializeToString())
            if path == "/v1/metrics":
                self._metrics.append(ExportMetricsServiceRequest.FromString(body))
                return bytes(ExportMetricsServiceResponse().SerializeToString())
        return None

    def spans(self) -> list[ReceivedSpan]:
        with self._lock:
            requests = list(self._traces)
        return [
            ReceivedSpan(
                name=span.name,
                kind=span.kind,
                trace_id=span.trace_id.hex(),
                span_id=span.span_id.hex(),
                parent_span_id=span.parent_span_id.hex(),
                attributes=attributes(span.attributes),
                resource=attributes(resource_spans.resource.attributes),
            )
            for request in requests
            for resource_spans in request.resource_spans
            for scope_spans in resource_spans.scope_spans
            for span in scope_spans.spans
        ]

    def points(self, metric: str) -> list[DataPoint]:
        """Every data point of METRIC received, in the order they came."""
        with self._lock:
            requests = list(self._metrics)
        found = []
        for request in requests:
            for resource_metrics in request.resource_metrics:
                resource = attributes(resource_metrics.resource.attributes)
                for scope_metrics in resource_metrics.scope_metrics:
                    for entry in scope_metrics.metrics:
                        if entry.name != metric:
                            continue
                        kind = entry.WhichOneof("data")
                        for point in getattr(entry, kind).data_points:
                            if kind == "histogram":
                                value = float(point.count)
                            else:
                                value = float(getattr(point, point.WhichOneof("value")))
                            found.append(
                                DataPoint(metric, attributes(point.attributes), resource, value, point.time_unix_nano)
                            )
        return found


@contextmanager
def running_receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    thread = threading.Thread(target=receiver._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield receiver
    finally:
        receiver._server.shutdown()
        receiver._server.server_close()
        thread.join()
