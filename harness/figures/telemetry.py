"""Telemetry: the skeleton with it off against the skeleton before it, and with it on.

Servers, interleaved (the order turns each round), each as `make api` serves it:
- before: the service rendered from the template at BASELINE_REF (the last commit before
  telemetry arrived; TELEMETRY_BASELINE_REF names another), built in the bench's scratch
  space, so that "off costs what it cost" is measured side by side, not against another
  run's figures;
- off: the service as rendered (TELEMETRY_ENABLED=false, the default);
- on: the same with TELEMETRY_ENABLED=true, exporting traces and metrics to a local receiver
  (a loopback HTTP server of the bench's that takes every OTLP post and answers 200);
- on 10%: on, recording a tenth of the traces (the SDK's ratio sampler), as a team would cut the cost.
Liveness touches nothing (the request path itself); readiness queries PostgreSQL and Redis,
so with telemetry on each request also has its SQL and Redis spans.
"""

import os
import statistics
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from checks.support import HEALTH, READINESS

from figures.common import Bench, Section, rendered_release, table, verdict

# The template's last commit without telemetry (0.5.0's other changes all in).
BASELINE_REF = os.environ.get("TELEMETRY_BASELINE_REF", "7f7b694")
FLOOR = 0.95  # off / before, requests per second: no cost beyond the noise of a shared machine


class Sink:
    """A collector stand-in: counts the OTLP/HTTP posts it gets and answers each with 200."""

    def __init__(self) -> None:
        self.posts, self.bytes = 0, 0
        sink = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"  # keep-alive, as a collector answers

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                self.rfile.read(length)
                sink.posts, sink.bytes = sink.posts + 1, sink.bytes + length
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"


@contextmanager
def running_sink() -> Iterator[Sink]:
    sink = Sink()
    thread = threading.Thread(target=sink.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield sink
    finally:
        sink.server.shutdown()
        sink.server.server_close()
        thread.join()


def baseline(bench: Bench) -> tuple[Bench | None, str]:
    """The template at BASELINE_REF rendered and installed, and what it is; None (and why) where it cannot be built."""
    before, commit = rendered_release(bench, BASELINE_REF, "telemetry-baseline")
    return before, f"{BASELINE_REF} ({commit})" if before is not None else commit


def figures(bench: Bench) -> Section:
    before, before_label = baseline(bench)
    print(f"telemetry: before = {before_label}")
    with running_sink() as sink:
        on_env = {"TELEMETRY_ENABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": sink.endpoint}
        sampled_env = {**on_env, "OTEL_TRACES_SAMPLER": "parentbased_traceidratio", "OTEL_TRACES_SAMPLER_ARG": "0.1"}
        # (name, the bench serving it, extra environment, the paths it is loaded on)
        servers: list[tuple[str, Bench, dict[str, str], list[str]]] = [
            ("off", bench, {"TELEMETRY_ENABLED": "false"}, [HEALTH, READINESS]),
            ("on", bench, on_env, [HEALTH, READINESS]),
            ("on 10%", bench, sampled_env, [HEALTH, READINESS]),
        ]
        if before is not None:
            servers.insert(0, ("before", before, {}, [HEALTH]))
        rounds: list[dict[str, dict[str, Any]]] = []
        for number in range(bench.rounds):
            turn = number % len(servers)
            measured: dict[str, dict[str, Any]] = {}
            for name, serving, env, paths in servers[turn:] + servers[:turn]:
                with serving.serve("telemetry-" + name.replace(" ", "-").replace("%", ""), **env) as server:
                    for path in paths:
                        result = serving.throughput(server, path)
                        result["start_s"] = round(server.start_seconds, 3)
                        measured[f"{name} {path}"] = result
                        print(
                            f"round {number + 1}, {name} {path}: {result['rps']:.0f} req/s, "
                            f"p50 {result['p50_ms']:.2f} ms, p99 {result['p99_ms']:.2f} ms, "
                            f"{result['cpu_us_per_request']} CPU µs/req"
                        )
            rounds.append(dict(sorted(measured.items())))
        exported = {"posts": sink.posts, "bytes": sink.bytes}
    print(f"telemetry: the receiver got {exported['posts']} posts, {exported['bytes']} bytes")

    comparisons = [("off / before", "off", "before", HEALTH)]
    comparisons += [(f"{on} / off", on, "off", path) for on in ("on", "on 10%") for path in (HEALTH, READINESS)]
    ratios: dict[str, dict[str, list[float]]] = {}
    for label, mine, other, path in comparisons:
        if any(f"{other} {path}" not in r for r in rounds):
            continue
        key = f"{label}, {path}"
        ratios[key] = {
            "rps": [round(r[f"{mine} {path}"]["rps"] / r[f"{other} {path}"]["rps"], 3) for r in rounds],
            "cpu": [
                round(r[f"{mine} {path}"]["cpu_us_per_request"] / r[f"{other} {path}"]["cpu_us_per_request"], 3)
                for r in rounds
            ],
        }
    medians = {key: {k: round(statistics.median(v), 3) for k, v in value.items()} for key, value in ratios.items()}
    for key, value in medians.items():
        print(f"telemetry {key}: req/s {value['rps']:.2f}, CPU µs/req {value['cpu']:.2f}")

    ratio_rows = []
    for key, value in medians.items():
        target = f"floor ≥ {FLOOR}" if key.startswith("off / before") else "reported"
        met = verdict(value["rps"] >= FLOOR) if key.startswith("off / before") else ""
        per_round = ", ".join(f"{ratio:.2f}" for ratio in ratios[key]["rps"])
        ratio_rows.append([key, f"**{value['rps']:.2f}**", per_round, f"{value['cpu']:.2f}", target, met])
    rows = [
        [
            number,
            server,
            f"{f['rps']:.0f}",
            f"{f['p50_ms']:.2f} / {f['p99_ms']:.2f}",
            f["cpu_us_per_request"],
            f["rss_mib"],
            f["start_s"],
            f["errors"],
        ]
        for number, measured in enumerate(rounds, 1)
        for server, f in measured.items()
    ]
    markdown = "\n\n".join(
        [
            "The skeleton with telemetry off (the default) against the skeleton before telemetry was added, "
            "and with telemetry on, exporting to a local receiver, on liveness (`GET /api/v1/health`, the "
            "request path alone) and readiness (`GET /api/v1/health/ready`: PostgreSQL and Redis, so with "
            "telemetry on also their spans).",
            f"- **before**: the template at `{BASELINE_REF}`, rendered and installed beside this one: "
            f"{before_label}.\n"
            "- **off**: this render, as `make api` serves it (without `--reload`), `TELEMETRY_ENABLED=false`.\n"
            "- **on**: the same with `TELEMETRY_ENABLED=true`: FastAPI's server span and HTTP metrics, the "
            "asyncpg and Redis spans, the pool's metrics and the trace ID in every log line, sent over "
            "OTLP/HTTP to a loopback receiver that answers 200 "
            f"({exported['posts']} posts, {exported['bytes'] // 1024} KiB in all).\n"
            "- **on 10%**: on, with a tenth of the traces recorded (`OTEL_TRACES_SAMPLER=parentbased_traceidratio`, "
            "`OTEL_TRACES_SAMPLER_ARG=0.1`); metrics still count every request.",
            f"{bench.rounds} round(s), the servers interleaved (the order turns each round); a ratio is "
            "taken within a round, and the median of the rounds is shown, for requests per second (higher "
            "is faster) and for server CPU µs per request (lower is cheaper).",
            table(
                ["comparison", "req/s ratio (median)", "per round", "CPU µs/req ratio", "target", "verdict"], ratio_rows
            ),
            table(
                ["round", "server, path", "req/s", "p50 / p99 ms", "server CPU µs/req", "RSS MiB", "start s", "errors"],
                rows,
            ),
        ]
    )
    data = {
        "baseline": before_label,
        "rounds": rounds,
        "ratios": ratios,
        "median_ratios": medians,
        "exported": exported,
    }
    return Section("Telemetry: off against before, and on", markdown, data)
