"""Reliability and security checks of a rendered, installed service, run as processes on real servers.

Runs with the service's own Python, like check_service.py (whose helpers it shares), so
that it can stop, kill and restart real PostgreSQL and Redis with ``devtools.servers``:

    backend/.venv/bin/python harness/faults.py SERVICE --schemathesis PATH [--soak-seconds 60] [--only soak,fuzz]

Dependency outages and hangs, SIGTERM under load, a soak (errors, memory), fuzzing from
the OpenAPI schema, hostile requests and hostile configuration. Each check prints one
"  ok  ..." line and figures "  --  ..." lines; the first failure stops the run with the
request or step, what was expected, what came back and the server's output.
"""

import argparse
import http.client
import itertools
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

# The script's folder is on sys.path: the boot check's helpers, shared.
from check_service import READY, CheckFailed, Response, check_log, env_from_example, expect, process, tail, wait_for

HEALTH, READINESS = "/api/v1/health", "/api/v1/health/ready"
CHECKS = ("outage", "hang", "shutdown", "soak", "fuzz", "config", "docs")
# Distinctive values that must never appear in anything the service prints.
SECRETS = {
    "DATABASE_URL": "pg-Secret-4f9c1e",
    "REDIS_URL": "redis-Secret-b72d0a",
    "LIVEKIT_API_SECRET": "lk-Secret-93e5d8",
}

# A POST route with a body, which the rendered service lacks: the fuzz and hostile
# requests need one. Strict, so that the schema it documents is exactly what it accepts.
HOSTILE_APP = """
from pydantic import BaseModel, ConfigDict, Field

from app.main import create_app

app = create_app()


class Echo(BaseModel):
    model_config = ConfigDict(strict=True)
    text: str = Field(max_length=1000)
    tags: list[str] = []


@app.post("/echo")
async def echo(body: Echo) -> Echo:
    return body
"""


@dataclass
class Service:
    """A uvicorn process of the service and where it serves."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def get(self, path: str, timeout: float = 10) -> tuple[Response | str, float]:
        """GET PATH: the response or what went wrong, and how long it took."""
        started = time.monotonic()
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=timeout)
        try:
            conn.request("GET", path)
            resp = conn.getresponse()
            result: Response | str = Response(resp.status, {k.lower(): v for k, v in resp.getheaders()}, resp.read())
        except (OSError, http.client.HTTPException) as exc:
            result = repr(exc)
        finally:
            conn.close()
        return result, time.monotonic() - started

    def status(self, path: str) -> int | None:
        response, _ = self.get(path)
        return response.status if isinstance(response, Response) else None


@dataclass
class Context:
    backend: Path
    env: dict[str, str]  # .env.example with the servers' URLs
    bound: float  # READINESS_TIMEOUT

    def command(self, port: int, app: str = "app.main:create_app") -> list[str]:
        uvicorn = self.backend / ".venv" / "bin" / "uvicorn"
        return [str(uvicorn), app, "--host", "127.0.0.1", "--port", str(port)]

    @contextmanager
    def serve(self, name: str, app: str = "app.main:create_app", **overrides: str) -> Iterator[Service]:
        """The service started as `make api` does (no reload), ENV overridden; failures show its log."""
        from devtools.servers import free_port  # the service's own dev tooling

        port, log = free_port(), self.backend.parent / f"faults-{name}.log"
        with process(self.command(port, app), self.backend, {**self.env, **overrides}, log) as proc:
            service = Service(proc, port, log)
            try:
                wait_for(f"{name}: serves {HEALTH}", lambda: service.status(HEALTH) == 200, 30, service.alive)
                yield service
            except CheckFailed as failure:
                raise CheckFailed(f"{failure}\n--- server output ({log}) ---\n{tail(log)}") from None


def unready(response: Response | str, down: str) -> bool:
    """A readiness 503 that names DOWN, and nothing else, as disconnected."""
    with suppress(ValueError):
        expected = {**READY, "status": "unavailable", down: "disconnected"}
        return isinstance(response, Response) and response.status == 503 and response.json() == expected
    return False


def expect_readiness(service: Service, what: str, down: str, within: float, concurrent: int = 20) -> None:
    """One readiness request, then CONCURRENT at once: all 503 naming DOWN, none slower than WITHIN."""
    response, took = service.get(READINESS, timeout=within + 5)
    expect(
        f"{what}: readiness 503 naming {down} in {took:.3f} s (at most {within:.1f} s)",
        unready(response, down) and took <= within,
        f"{response} after {took:.3f} s",
    )
    with ThreadPoolExecutor(concurrent) as pool:
        results = list(pool.map(lambda _: service.get(READINESS, timeout=within + 5), range(concurrent)))
    bad = [str(response) for response, _ in results if not unready(response, down)]
    slowest = max(took for _, took in results)
    expect(
        f"{what}: {concurrent} concurrent readiness requests all 503, slowest {slowest:.3f} s",
        not bad and slowest <= within,
        bad[:3] or f"slowest {slowest:.3f} s",
    )
    expect(f"{what}: liveness still 200", service.status(HEALTH) == 200, service.get(HEALTH)[0])


def expect_recovery(service: Service, what: str, within: float) -> None:
    pid = service.proc.pid
    took = wait_for(f"{what}: readiness 200 again", lambda: service.status(READINESS) == 200, within, service.alive)
    expect(f"{what}: readiness 200 after {took:.3f} s, same process", service.proc.pid == pid and service.alive(), pid)


def outage(ctx: Context, postgres: Any, redis: Any) -> None:
    """SIGKILL each server under a running service, then start it again on its port."""
    with ctx.serve("outage") as service:
        expect("readiness 200 with both servers up", service.status(READINESS) == 200, service.status(READINESS))
        for server, down in ((postgres, "database"), (redis, "redis")):
            server.kill()
            expect_readiness(service, f"{server.name} SIGKILLed", down, ctx.bound + 0.5)
            started = time.monotonic()
            server.start()
            print(f"  --  {server.name} back on port {server.port} after {time.monotonic() - started:.2f} s")
            expect_recovery(service, f"{server.name} restarted", 2)


class BlackHole:
    """A loopback listener that accepts connections and never reads from them, until it
    forwards to TARGET (a port): a dependency that hangs, then comes back."""

    def __init__(self, target: int) -> None:
        self.target, self.forwarding = target, False
        self.held: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port: int = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with suppress(OSError):
            while True:
                conn, _ = self.listener.accept()
                if not self.forwarding:
                    self.held.append(conn)
                    continue
                upstream = socket.create_connection(("127.0.0.1", self.target))
                for source, sink in ((conn, upstream), (upstream, conn)):
                    threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for sock in (source, sink):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def forward(self) -> None:
        """The dependency answers again: held connections drop, new ones reach TARGET."""
        self.forwarding = True
        for conn in self.held:
            conn.close()

    def close(self) -> None:
        self.listener.close()
        for conn in self.held:
            conn.close()


def hang(ctx: Context, postgres: Any, redis: Any) -> None:
    """A service whose database (then Redis) accepts connections and never answers; then it answers."""
    for name, server, down, url in (
        ("DATABASE_URL", postgres, "database", "postgresql://postgres@127.0.0.1:{port}/postgres"),
        ("REDIS_URL", redis, "redis", "redis://127.0.0.1:{port}/0"),
    ):
        hole = BlackHole(server.port)
        try:
            with ctx.serve(f"hang-{down}", **{name: url.format(port=hole.port)}) as service:
                # Without the bound, the drivers would wait for their own (5 s) timeouts.
                expect_readiness(service, f"{name} never answers", down, ctx.bound + 0.5)
                hole.forward()
                expect_recovery(service, f"{name} answers again", 2)
        finally:
            hole.close()


@dataclass
class Load:
    """What a bounded load got back."""

    statuses: Counter[int] = field(default_factory=Counter)
    dropped: int = 0  # connection refused or reset: the listener was closing
    errors: list[str] = field(default_factory=list)  # anything else
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def responses(self) -> int:
        return sum(self.statuses.values())

    def failures(self) -> list[str]:
        return [f"{n} x {status}" for status, n in self.statuses.items() if status != 200] + self.errors[:5]

    def error_count(self) -> int:
        return self.responses - self.statuses[200] + len(self.errors) + self.dropped


def start_load(
    port: int, paths: list[str], seconds: float, max_requests: int, clients: int = 8, stop: Callable[[], bool] = bool
) -> tuple[Load, Callable[[], None]]:
    """CLIENTS threads on keep-alive connections GET PATHS in turn until SECONDS or
    MAX_REQUESTS are spent, or STOP() is true. Returns the tally so far and a function
    that waits for the end."""
    load, deadline, numbers = Load(), time.monotonic() + seconds, itertools.count()

    def client() -> None:
        conn: http.client.HTTPConnection | None = None
        while time.monotonic() < deadline and not stop() and (n := next(numbers)) < max_requests:
            conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                conn.request("GET", paths[n % len(paths)])
                resp = conn.getresponse()
                resp.read()
                with load.lock:
                    load.statuses[resp.status] += 1
                continue
            except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
                with load.lock:
                    load.dropped += 1
            except (OSError, http.client.HTTPException) as exc:
                with load.lock:
                    load.errors.append(repr(exc))
            conn.close()
            conn = None
            time.sleep(0.01)  # a refused connection fails at once: don't spin

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()

    def join() -> None:
        for thread in threads:
            thread.join()

    return load, join


def terminate(service: Service, grace: float = 15) -> tuple[int, float]:
    """SIGTERM, then the exit status and how long the process took to exit."""
    sent = time.monotonic()
    service.proc.send_signal(signal.SIGTERM)
    try:
        return service.proc.wait(grace), time.monotonic() - sent
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"SIGTERM: still running after {grace} s") from None


def shutdown(ctx: Context) -> None:
    """SIGTERM while 8 clients load the service."""
    with ctx.serve("shutdown") as service:
        load, join = start_load(service.port, [HEALTH], 5, 5000, stop=lambda: not service.alive())
        wait_for("load under way: 1000 responses", lambda: load.responses >= 1000, 5, service.alive)
        before = load.responses
        code, took = terminate(service)
        join()
        print(
            f"  --  SIGTERM after {before} responses; {load.responses - before} more, then "
            f"{load.dropped} connections refused or reset once it stopped listening"
        )
        expect("SIGTERM came under load (before the load's bound)", before < 5000, before)
        expect("SIGTERM under load: every response was a 200", not load.failures(), load.failures())
        # uvicorn re-raises the SIGTERM it caught once it has shut down cleanly.
        expect(f"SIGTERM under load: exit status -15 after {took:.2f} s", code == -signal.SIGTERM, code)
        check_log(service.log)


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise CheckFailed(f"no VmRSS in /proc/{pid}/status")


def soak(ctx: Context, seconds: float) -> None:
    """Liveness and readiness under load for SECONDS: no error, and memory that levels off."""
    with ctx.serve("soak") as service:
        max_requests = int(seconds * 5000)
        load, join = start_load(service.port, [HEALTH, READINESS], seconds, max_requests)
        samples, started = [], time.monotonic()
        for tick in range(1, int(seconds) + 1):
            if not service.alive():
                raise CheckFailed(f"soak: the service exited after {tick - 1} s")
            samples.append(rss_kib(service.proc.pid))
            time.sleep(max(0.0, started + tick - time.monotonic()))
        join()
        rate = load.responses / (time.monotonic() - started)
        print(f"  --  {load.responses} requests in {seconds:.0f} s ({rate:.0f}/s), {load.error_count()} errors")
        expect(
            f"soak: every one of {load.responses} responses was a 200",
            load.responses > 0 and load.error_count() == 0,
            f"{load.failures()}, {load.dropped} refused or reset",
        )
        window = min(10, len(samples) // 2)
        first, last = statistics.mean(samples[:window]), statistics.mean(samples[-window:])
        growth = (last - first) / first * 100
        print(
            f"  --  RSS MiB: first {window} s {first / 1024:.1f}, last {window} s {last / 1024:.1f}, "
            f"min {min(samples) / 1024:.1f}, max {max(samples) / 1024:.1f} ({len(samples)} samples)"
        )
        expect(f"soak: RSS grew {growth:+.2f}% from the first to the last {window} s (under 5%)", growth < 5, samples)


def fuzz_and_hostile(ctx: Context, schemathesis: Path, examples: int, seconds: int) -> None:
    """The service with a POST route added: fuzzed from its schema, then sent hostile requests."""
    with tempfile.TemporaryDirectory(prefix="faults-") as tmp:
        Path(tmp, "hostile_app.py").write_text(HOSTILE_APP)
        pythonpath = os.pathsep.join([str(ctx.backend), tmp])
        with ctx.serve("hostile", app="hostile_app:app", PYTHONPATH=pythonpath) as service:
            fuzz(service, schemathesis, Path(tmp), examples, seconds)
            hostile(service)
            code, _ = terminate(service)
            expect("then SIGTERM: exit status -15", code == -signal.SIGTERM, code)
            check_log(service.log)
            expect("the bad request IDs never reached the log", "hostile" not in service.log.read_text(), "")


def fuzz(service: Service, schemathesis: Path, workdir: Path, examples: int, seconds: int) -> None:
    report = workdir / "schemathesis.json"
    command = [str(schemathesis), "run", f"{service.base}/openapi.json", "--checks=all", f"--max-examples={examples}"]
    # --max-time: fuzzing repeats until it is spent; no example database left behind.
    command += [f"--max-time={seconds}", "--generation-database=none", "--no-color"]
    command += ["--report=json", f"--report-json-path={report}"]
    print(f"$ {' '.join(command)}")
    try:
        done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=seconds + 120, check=False)
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"schemathesis did not finish within {seconds + 120} s") from None
    summary = json.loads(report.read_text()) if report.exists() else {}
    cases, operations = summary.get("test_cases", {}), summary.get("operations", {})
    phases = ", ".join(f"{name} {phase['status']}" for name, phase in summary.get("phases", {}).items())
    print(
        f"  --  schemathesis {summary.get('schemathesis_version')}: {cases.get('generated')} cases, "
        f"{operations.get('tested')} operations, phases: {phases}"
    )
    expect(
        f"fuzzing ({cases.get('generated')} cases): no 5xx, every response as documented, every check passed",
        done.returncode == 0 and summary.get("failures") == [] and summary.get("errors") == [],
        f"exit {done.returncode}, failures {summary.get('failures')}\n{done.stdout[-6000:]}{done.stderr[-3000:]}",
    )


def raw_request(port: int, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Sends exactly HEAD (request line and headers, no final blank line) and BODY: the
    client libraries refuse to send what a hostile client sends. Status and the raw response."""
    length = b"Content-Length: %d\r\n" % len(body) if body else b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        chunks = []
        # The server may answer and close before it has read everything.
        with suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head + b"\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + length + b"\r\n" + body)
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    response = b"".join(chunks)
    try:
        return int(response.split(b" ", 2)[1]), response
    except (IndexError, ValueError):
        raise CheckFailed(f"not an HTTP response: {response[:300]!r}") from None


def is_envelope(body: bytes) -> bool:
    with suppress(ValueError, KeyError, TypeError):
        return isinstance(json.loads(body)["error"]["code"], str)
    return False


def post_echo(content_type: bytes | None) -> bytes:
    return b"POST /echo HTTP/1.1" + (b"\r\nContent-Type: " + content_type if content_type else b"")


def hostile(service: Service) -> None:
    """Bad request IDs are replaced, never echoed; bad requests get a 4xx and the error envelope."""
    get = b"GET " + HEALTH.encode() + b" HTTP/1.1"
    request_ids = {
        "a newline (LF)": b"hostile\nSet-Cookie: x=1",
        "a carriage return (CR)": b"hostile\rSet-Cookie: x=1",
        "a NUL byte": b"hostile\x00id",
        "10 kB of text": b"hostile request id " * 540,
        "non-ASCII bytes": b"hostile-\xff\xfe-caf\xc3\xa9",
    }
    for label, value in request_ids.items():
        status, response = raw_request(service.port, get + b"\r\nX-Request-ID: " + value)
        # The server may refuse the request outright (400); if it is served, a new ID replaces it.
        expect(
            f"X-Request-ID with {label} -> {status}, not echoed",
            status in (200, 400) and b"hostile" not in response,
            response[:600],
        )
    json_type = b"application/json"
    requests: list[tuple[str, bytes, bytes, set[int]]] = [
        ("an 8 kB path", b"GET /api/v1/" + b"a" * 8192 + b" HTTP/1.1", b"", {404}),
        ("an 8 kB query string", b"GET " + HEALTH.encode() + b"?" + b"q=1&" * 2048 + b" HTTP/1.1", b"", {200}),
        ("POST a valid body (control)", post_echo(json_type), b'{"text": "hi"}', {200}),
        ("POST malformed JSON", post_echo(json_type), b'{"text": "hi",', {422}),
        ("POST JSON that is not UTF-8", post_echo(json_type), b'{"text": "\xc3\x28"}', {400}),
        ("POST JSON nested 100000 deep", post_echo(json_type), b"[" * 100_000 + b"]" * 100_000, {400, 422}),
        ("POST a 10 kB text (the limit is 1000)", post_echo(json_type), b'{"text": "%s"}' % (b"x" * 10240), {422}),
        ("POST as text/plain", post_echo(b"text/plain"), b'{"text": "hi"}', {415, 422}),
        ("POST as application/xml", post_echo(b"application/xml"), b"<text>hi</text>", {415, 422}),
        ("POST as a form", post_echo(b"application/x-www-form-urlencoded"), b"text=hi", {415, 422}),
        ("POST as multipart without boundary", post_echo(b"multipart/form-data"), b"text=hi", {400, 415, 422}),
        ("POST without Content-Type", post_echo(None), b'{"text": "hi"}', {415, 422}),
    ]
    for label, head, body, expected in requests:
        status, response = raw_request(service.port, head, body)
        expect(
            f"{label} -> {status}{' with the error envelope' if status >= 400 else ''}",
            status in expected and (status < 400 or is_envelope(response.partition(b"\r\n\r\n")[2])),
            response[:600],
        )


def documented_required(backend: Path) -> list[str]:
    """The variables set in .env.example's "Required" section."""
    names, section = [], None
    for line in (backend / ".env.example").read_text().splitlines():
        if line.startswith("# ---"):
            section = line.split()[2]
        elif section == "Required" and line and not line.startswith("#"):
            names.append(line.partition("=")[0])
    return sorted(names)


def config(ctx: Context) -> None:
    """uvicorn with invalid settings, one at a time: a prompt exit that names the variable and no secret."""
    from app.core.config import Settings  # the service's own settings, read from its venv

    required = sorted(name for name, spec in Settings.model_fields.items() if spec.is_required())
    expect(
        f"required settings {required} are the ones .env.example lists as required",
        documented_required(ctx.backend) == required,
        documented_required(ctx.backend),
    )
    pg, rd, lk = SECRETS.values()
    # Nothing listens on port 1: the service starts, and reports both servers down.
    secrets = {
        "DATABASE_URL": f"postgresql://postgres:{pg}@127.0.0.1:1/app",
        "REDIS_URL": f"redis://:{rd}@127.0.0.1:1/0",
    }
    if "LIVEKIT_API_SECRET" in Settings.model_fields:
        secrets["LIVEKIT_API_SECRET"] = lk
    base = {**ctx.env, **secrets}
    cases: list[tuple[str, str, str | None]] = [(f"{name} missing", name, None) for name in required]
    cases += [
        ("DATABASE_URL not a URL", "DATABASE_URL", "not a url"),
        ("DATABASE_URL without @host", "DATABASE_URL", f"postgresql://postgres:{pg}/app"),
        ("DATABASE_URL with a bad port", "DATABASE_URL", f"postgresql://postgres:{pg}@127.0.0.1:54x32/app"),
        ("DATABASE_URL of MySQL", "DATABASE_URL", f"mysql://root:{pg}@127.0.0.1/app"),
        ("REDIS_URL without a scheme", "REDIS_URL", "127.0.0.1:6379"),
        ("REDIS_URL with a bad port", "REDIS_URL", f"redis://:{rd}@127.0.0.1:63x79/0"),
        ("REDIS_URL of HTTP", "REDIS_URL", f"http://:{rd}@127.0.0.1:6379/0"),
        ("CORS_ORIGINS '[not json'", "CORS_ORIGINS", "[not json"),
        ("CORS_ORIGINS '*' with credentials", "CORS_ORIGINS", "*"),
        ("DEBUG=maybe", "DEBUG", "maybe"),
    ]

    def start(variable: str, value: str | None) -> tuple[int | None, str]:
        from devtools.servers import free_port

        env = {k: v for k, v in {**base, variable: value}.items() if v is not None}
        try:
            done = subprocess.run(ctx.command(free_port()), cwd=ctx.backend, env=env, capture_output=True, timeout=30)
        except subprocess.TimeoutExpired as exc:
            return None, f"still running after 30 s: {exc.stdout!r} {exc.stderr!r}"
        return done.returncode, (done.stdout + done.stderr).decode(errors="replace")

    # Each start is mostly imports: a few at a time.
    with ThreadPoolExecutor(4) as pool:
        results = list(pool.map(lambda case: start(case[1], case[2]), cases))
    for (label, variable, _), (code, output) in zip(cases, results, strict=True):
        leaked = [name for name, secret in SECRETS.items() if secret in output]
        expect(
            f"{label}: exits {code} at startup, naming {variable}, showing no secret",
            code not in (0, None) and variable in output and not leaked,
            f"exit {code}, secrets of {leaked} shown:\n{output[-3000:]}",
        )
    with ctx.serve("secrets", **secrets) as service:
        expect("secrets in the settings, servers unreachable: readiness 503", service.status(READINESS) == 503, "")
        terminate(service)
        leaked = [name for name, secret in SECRETS.items() if secret in service.log.read_text()]
        expect("... and no secret in anything the service wrote", not leaked, leaked)


def docs(ctx: Context) -> None:
    """DOCS_ENABLED=false removes the documentation."""
    with ctx.serve("docs", DOCS_ENABLED="false") as service:
        for path in ("/docs", "/redoc", "/openapi.json"):
            expect(f"DOCS_ENABLED=false: GET {path} -> 404", service.status(path) == 404, service.get(path)[0])
        expect(f"DOCS_ENABLED=false: GET {HEALTH} -> 200", service.status(HEALTH) == 200, service.get(HEALTH)[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("service", type=Path)
    parser.add_argument("--schemathesis", type=Path, help="the schemathesis executable (for the fuzz check)")
    parser.add_argument("--readiness-timeout", type=float, default=1.0)
    parser.add_argument("--soak-seconds", type=float, default=60)
    parser.add_argument("--fuzz-examples", type=int, default=500, help="per operation")
    parser.add_argument("--fuzz-seconds", type=int, default=20)
    parser.add_argument("--only", default=",".join(CHECKS), help=f"comma-separated, of {', '.join(CHECKS)}")
    args = parser.parse_args()
    selected = args.only.split(",")
    if unknown := set(selected) - set(CHECKS):
        parser.error(f"unknown checks: {', '.join(sorted(unknown))}")
    if "fuzz" in selected and not args.schemathesis:
        parser.error("the fuzz check needs --schemathesis")
    backend = args.service.resolve() / "backend"
    sys.path.insert(0, str(backend))
    from devtools.servers import running_servers  # the service's own dev tooling

    try:
        with running_servers() as (postgres, redis):
            env = env_from_example(backend)
            env.update(DATABASE_URL=postgres.url, REDIS_URL=redis.url, READINESS_TIMEOUT=str(args.readiness_timeout))
            ctx = Context(backend, env, args.readiness_timeout)
            checks: dict[str, tuple[Callable[..., None], tuple[Any, ...]]] = {
                "outage": (outage, (ctx, postgres, redis)),
                "hang": (hang, (ctx, postgres, redis)),
                "shutdown": (shutdown, (ctx,)),
                "soak": (soak, (ctx, args.soak_seconds)),
                "fuzz": (fuzz_and_hostile, (ctx, args.schemathesis, args.fuzz_examples, args.fuzz_seconds)),
                "config": (config, (ctx,)),
                "docs": (docs, (ctx,)),
            }
            for name in selected:
                check, arguments = checks[name]
                started = time.monotonic()
                print(f"[{name}] {(check.__doc__ or '').splitlines()[0]}")
                check(*arguments)
                print(f"  --  {name} took {time.monotonic() - started:.1f} s")
    except CheckFailed as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
