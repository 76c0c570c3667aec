"""OpenTelemetry: request traces with their SQL and Redis spans, HTTP and database-pool
metrics, both pushed over OTLP/HTTP, and the trace ID in every JSON log line.

Imported only when TELEMETRY_ENABLED is true (app/main.py): with it off, the process loads
no OpenTelemetry SDK, instruments nothing and exports nothing. The exporters read the
standard OTEL_* variables (OTEL_EXPORTER_OTLP_ENDPOINT, OTEL_EXPORTER_OTLP_HEADERS, ...)
from the process environment; backend/README.md, "Observability", lists them.
"""

import asyncio
import logging
import threading
import time
from collections.abc import Iterable
from uuid import uuid4

from fastapi.telemetry import TelemetryConfig
from opentelemetry import metrics, trace
from opentelemetry.context import Context
from opentelemetry.exporter.otlp.proto.http.metric_exporter import OTLPMetricExporter
from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
from opentelemetry.instrumentation.asyncpg import AsyncPGInstrumentor
from opentelemetry.instrumentation.redis import RedisInstrumentor
from opentelemetry.metrics import CallbackOptions, Observation
from opentelemetry.sdk.metrics import MeterProvider
from opentelemetry.sdk.metrics.export import PeriodicExportingMetricReader
from opentelemetry.sdk.resources import SERVICE_INSTANCE_ID, SERVICE_NAME, SERVICE_VERSION, Resource
from opentelemetry.sdk.trace import Span, SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.pool import QueuePool

from app.core.config import Settings
from app.core.logging import redact_query

logger = logging.getLogger(__name__)

# The longest the app's shutdown waits for its last spans and metrics to be sent, and then
# for the exporters to give up: an unreachable collector must not use up SHUTDOWN_TIMEOUT.
FLUSH_TIMEOUT = 4.0
ABORT_TIMEOUT = 1.0
# The exporters log every failed attempt; an unreachable collector is reported once a
# minute per message instead.
REPEAT_INTERVAL = 60.0


class TraceContextFilter(logging.Filter):
    """Adds the current span's ``trace_id`` and ``span_id``, in hex as OTLP and W3C write them."""

    def filter(self, record: logging.LogRecord) -> bool:
        context = trace.get_current_span().get_span_context()
        if context.is_valid:
            record.trace_id = trace.format_trace_id(context.trace_id)
            record.span_id = trace.format_span_id(context.span_id)
        return True


class RepeatFilter(logging.Filter):
    """Lets each OpenTelemetry message through once per REPEAT_INTERVAL, none once muted; other records pass."""

    def __init__(self) -> None:
        super().__init__()
        self.muted = False
        self._last_passed: dict[tuple[str, object], float] = {}

    def filter(self, record: logging.LogRecord) -> bool:
        if not record.name.startswith("opentelemetry."):
            return True
        if self.muted:
            return False
        key, now = (record.name, record.msg), time.monotonic()
        last = self._last_passed.get(key)
        if last is not None and now - last < REPEAT_INTERVAL:
            return False
        self._last_passed[key] = now
        return True


class QueryRedactor(SpanProcessor):
    """Masks secret-looking values in the server span's ``url.query``, as the access line does."""

    def on_start(self, span: Span, parent_context: Context | None = None) -> None:
        query = span.attributes.get("url.query") if span.attributes else None
        if isinstance(query, str):
            span.set_attribute("url.query", redact_query(query))


def observe_pool(meter: metrics.Meter, engine: AsyncEngine, max_overflow: int) -> None:
    """The pool's connections in use, idle and in overflow, read from it at each collection."""
    pool = engine.pool
    if not isinstance(pool, QueuePool):
        return  # DATABASE_POOLER=transaction: no pool of ours, the pooler holds the connections
    url = engine.url
    attributes = {"db.client.connection.pool.name": f"{url.host}:{url.port}/{url.database}"}

    def connections(_options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(pool.checkedout(), {**attributes, "db.client.connection.state": "used"})
        yield Observation(pool.checkedin(), {**attributes, "db.client.connection.state": "idle"})

    def overflow(_options: CallbackOptions) -> Iterable[Observation]:
        # overflow() counts up from -pool_size while the pool is not yet full.
        yield Observation(max(pool.overflow(), 0), attributes)

    def maximum(_options: CallbackOptions) -> Iterable[Observation]:
        yield Observation(pool.size() + max_overflow, attributes)

    # Up-down counters, the semantic conventions' instrument: a backend sums them over workers.
    meter.create_observable_up_down_counter(
        "db.client.connection.count",
        [connections],
        unit="{connection}",
        description="Connections in use (state=used) and idle in the pool (state=idle).",
    )
    meter.create_observable_up_down_counter(
        "db.client.connection.overflow",
        [overflow],
        unit="{connection}",
        description="Connections open beyond DATABASE_POOL_SIZE, at most DATABASE_MAX_OVERFLOW.",
    )
    meter.create_observable_up_down_counter(
        "db.client.connection.max", [maximum], unit="{connection}", description="The most connections the pool opens."
    )


class Telemetry:
    """One process's OpenTelemetry: its providers, what they export to, what is instrumented."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.repeat_filter = RepeatFilter()
        # A singleton, as every instrumentor. (Its constructor lacks type hints.)
        self.asyncpg_instrumentor = AsyncPGInstrumentor()  # type: ignore[no-untyped-call]
        # create_app runs in each worker process, so each has its own providers, with an
        # instance ID of its own: a backend sums the workers' series instead of mixing them.
        self.instance_id = str(uuid4())
        resource = Resource.create(
            {
                SERVICE_NAME: settings.OTEL_SERVICE_NAME,
                SERVICE_VERSION: settings.VERSION,
                SERVICE_INSTANCE_ID: self.instance_id,
            }
        )
        # Shut down by the app's lifespan, within FLUSH_TIMEOUT, not at interpreter exit.
        self.tracer_provider = TracerProvider(resource=resource, shutdown_on_exit=False)
        self.meter_provider = MeterProvider(resource=resource, shutdown_on_exit=False)

    def fastapi_options(self) -> TelemetryConfig:
        """FastAPI's request spans and HTTP metrics (``FastAPI(telemetry=...)``), on these providers."""
        return {
            "tracer_provider": self.tracer_provider,
            "meter_provider": self.meter_provider,
            # Log records stay JSON lines on stdout, with the trace ID.
            "logs": False,
            # Spans for dependency resolution, the endpoint and serialization: off, so that a
            # trace is the request and its SQL and Redis calls. Turn on to see where time goes.
            "operation_spans": False,
            # The export is configured here; FASTAPI_OTEL_AUTO_CONFIGURE would add a second one.
            "auto_configure": False,
        }

    def log_filters(self) -> list[logging.Filter]:
        return [TraceContextFilter(), self.repeat_filter]

    def start(self, engine: AsyncEngine, redis: Redis) -> None:
        """Starts exporting and instruments ENGINE and REDIS (the lifespan's startup)."""
        self.tracer_provider.add_span_processor(QueryRedactor())
        self.span_exporter, self.metric_exporter = OTLPSpanExporter(), OTLPMetricExporter()
        self.tracer_provider.add_span_processor(BatchSpanProcessor(self.span_exporter))
        self.metric_reader = PeriodicExportingMetricReader(self.metric_exporter)
        self.meter_provider.add_metric_reader(self.metric_reader)
        observe_pool(self.meter_provider.get_meter(__name__), engine, self.settings.DATABASE_MAX_OVERFLOW)
        # A span per round trip to PostgreSQL (BEGIN, statements, COMMIT),
        # without the statements' parameters: asyncpg's instrumentation (SQLAlchemy's supports
        # only SQLAlchemy < 2.1). Process-wide, as servers run one app per process.
        self.asyncpg_instrumentor.instrument(tracer_provider=self.tracer_provider)
        # A span per Redis command, its arguments replaced by "?".
        RedisInstrumentor.instrument_client(redis, tracer_provider=self.tracer_provider)
        # Spans and metrics that routes add through the global API (trace.get_tracer(__name__))
        # join the same traces. The API takes the first providers a process sets.
        trace.set_tracer_provider(self.tracer_provider)
        metrics.set_meter_provider(self.meter_provider)

    async def stop(self, redis: Redis) -> None:
        """Removes the instrumentation and sends what is left (the lifespan's end), in bounded time."""
        self.asyncpg_instrumentor.uninstrument()
        RedisInstrumentor.uninstrument_client(redis)
        # Daemon threads: an export still retrying after the deadline does not hold the
        # process's exit, as a thread of the event loop's executor would.
        flushes = [
            threading.Thread(target=shutdown, name="telemetry-flush", daemon=True)
            # The reader, not the meter provider: MeterProvider.shutdown() skips the readers
            # added with add_metric_reader().
            for shutdown in (self.tracer_provider.shutdown, self.metric_reader.shutdown)
        ]
        for flush in flushes:
            flush.start()
        if not await joined(flushes, FLUSH_TIMEOUT):
            logger.warning("Telemetry not sent within %s s of shutdown (collector unreachable?)", FLUSH_TIMEOUT)
            # Ends their retries, so that nothing exports after the app has stopped; what is
            # left is dropped, and so are the exporters' complaints about it.
            self.repeat_filter.muted = True
            self.span_exporter.shutdown()  # type: ignore[no-untyped-call]  # the package's hints miss it
            self.metric_exporter.shutdown()
            await joined(flushes, ABORT_TIMEOUT)


async def joined(threads: list[threading.Thread], within: float) -> bool:
    """Whether THREADS all end within WITHIN seconds, waited for off the event loop."""
    deadline = time.monotonic() + within
    for thread in threads:
        await asyncio.to_thread(thread.join, max(deadline - time.monotonic(), 0))
    return not any(thread.is_alive() for thread in threads)
