"""Checks a rendered, installed service as a running process, over HTTP.

Runs with the service's own Python, so that it can use the service's dev tooling
(``devtools.servers``) to start, stop and restart real PostgreSQL and Redis:

    backend/.venv/bin/python harness/check_service.py boot SERVICE --title "X API"
    backend/.venv/bin/python harness/check_service.py dev SERVICE --port 8000 --origin http://localhost:3000

Each check prints one line; the first failure stops the run with a message that
names the request, what was expected and what came back, and the server's log.
"""

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

READY = {"status": "ok", "database": "connected", "redis": "connected"}


class CheckFailed(Exception):
    pass


class Response:
    def __init__(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status, self.headers, self.body = status, headers, body

    def json(self) -> Any:
        return json.loads(self.body)

    def __str__(self) -> str:
        return f"{self.status} {self.body[:300].decode(errors='replace')}"


def request(url: str, method: str = "GET", headers: dict[str, str] | None = None, timeout: float = 10) -> Response:
    req = urllib.request.Request(url, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return Response(resp.status, {k.lower(): v for k, v in resp.headers.items()}, resp.read())
    except urllib.error.HTTPError as err:
        return Response(err.code, {k.lower(): v for k, v in err.headers.items()}, err.read())


def expect(what: str, condition: bool, got: object) -> None:
    if not condition:
        raise CheckFailed(f"{what}: got {got}")
    print(f"  ok  {what}")


def wait_for(what: str, probe: Callable[[], bool], within: float, alive: Callable[[], bool]) -> float:
    started = time.monotonic()
    while True:
        if not alive():
            raise CheckFailed(f"{what}: the server process exited")
        with suppress(OSError):
            if probe():
                return time.monotonic() - started
        if time.monotonic() - started > within:
            raise CheckFailed(f"{what}: not within {within} s")
        time.sleep(0.05)


def clean_env() -> dict[str, str]:
    # Nothing from the shell that runs the check may configure or redirect the service.
    drop = ("DATABASE_URL", "REDIS_URL", "VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "UV_PYTHON")
    return {k: v for k, v in os.environ.items() if k not in drop}


def env_from_example(backend: Path) -> dict[str, str]:
    """The environment a user gives the service: the values of .env.example."""
    env = clean_env()
    for line in (backend / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name] = value
    return env


@contextmanager
def process(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def boot(service: Path, title: str, bound: float) -> None:
    """uvicorn as `make api` starts it (without --reload), on real servers, with outages and SIGTERM."""
    backend = service / "backend"
    sys.path.insert(0, str(backend))
    from devtools.servers import free_port, running_servers  # the service's own dev tooling

    log = service / "boot.log"
    with running_servers() as (postgres, redis):
        env = env_from_example(backend)
        env.update(DATABASE_URL=postgres.url, REDIS_URL=redis.url, READINESS_TIMEOUT=str(bound))
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        command = [
            str(backend / ".venv" / "bin" / "uvicorn"),
            "--factory",
            "app.main:create_app",
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ]
        print(f"$ {' '.join(command)}")
        with process(command, backend, env, log) as proc:

            def alive() -> bool:
                return proc.poll() is None

            try:
                took = wait_for(
                    "server answers /api/v1/health",
                    lambda: request(base + "/api/v1/health").status == 200,
                    within=30,
                    alive=alive,
                )
                print(f"  --  process start to first 200: {took:.2f} s")
                health = request(base + "/api/v1/health", headers={"X-Request-ID": "boot-check-1"})
                expect(
                    "GET /api/v1/health -> 200 {'status': 'ok'}",
                    health.status == 200 and health.json() == {"status": "ok"},
                    health,
                )
                expect(
                    "X-Request-ID echoed when well formed",
                    health.headers.get("x-request-id") == "boot-check-1",
                    health.headers,
                )
                ready = request(base + "/api/v1/health/ready")
                expect(
                    "GET /api/v1/health/ready -> 200 with both connected",
                    ready.status == 200 and ready.json() == READY,
                    ready,
                )
                expect("X-Request-ID generated", len(ready.headers.get("x-request-id", "")) == 36, ready.headers)
                spec = request(base + "/openapi.json")
                expect(
                    f"GET /openapi.json -> 200, title {title!r}",
                    spec.status == 200 and spec.json()["info"]["title"] == title,
                    spec,
                )
                for page in ("/docs", "/redoc"):
                    response = request(base + page)
                    expect(
                        f"GET {page} -> 200 naming {title!r}",
                        response.status == 200 and title in response.body.decode(),
                        response,
                    )

                for server, field in ((redis, "redis"), (postgres, "database")):
                    server.stop()
                    started = time.monotonic()
                    down = request(base + "/api/v1/health/ready")
                    elapsed = time.monotonic() - started
                    expected = {**READY, "status": "unavailable", field: "disconnected"}
                    expect(
                        f"{server.name} stopped: /api/v1/health/ready -> 503 naming {field}",
                        down.status == 503 and down.json() == expected,
                        down,
                    )
                    expect(
                        f"{server.name} stopped: answered within READINESS_TIMEOUT={bound} s ({elapsed:.3f} s)",
                        elapsed <= bound,
                        f"{elapsed:.3f} s",
                    )
                    server.start()
                    took = wait_for(
                        f"{server.name} restarted on port {server.port}: readiness 200 again",
                        lambda: request(base + "/api/v1/health/ready").status == 200,
                        within=5,
                        alive=alive,
                    )
                    print(f"  ok  {server.name} restarted: readiness 200 after {took:.3f} s, no service restart")

                proc.send_signal(signal.SIGTERM)
                try:
                    code = proc.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    raise CheckFailed("SIGTERM: the process did not exit within 20 s") from None
                # uvicorn re-raises the SIGTERM it caught once it has shut down cleanly.
                expect("SIGTERM: clean exit (status -15, i.e. 143 in a shell)", code == -signal.SIGTERM, code)
                check_log(log)
            except CheckFailed as failure:
                raise CheckFailed(f"{failure}\n--- server output ({log}) ---\n{tail(log)}") from None


def check_log(log: Path) -> None:
    lines = [line for line in log.read_text().splitlines() if line.strip()]
    records = []
    for line in lines:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            raise CheckFailed(f"server output is not JSON: {line!r}") from None
    print(f"  ok  all {len(records)} lines the process wrote are JSON objects")
    messages = [record.get("message") for record in records]
    for expected in ("Application shutdown complete.", "Database engine disposed", "Redis client closed"):
        expect(f"shutdown logged: {expected!r}", expected in messages, messages[-8:])


def tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else "(no output)"


def dev(service: Path, port: int, origin: str) -> None:
    """`make dev`, as the README says: throwaway servers and the API on the configured port; Ctrl-C stops all."""
    base = f"http://127.0.0.1:{port}"
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            raise CheckFailed(f"port {port} is already in use: `make dev` needs it") from None
    log = service / "make-dev.log"
    print("$ make dev")
    with process(["make", "dev"], service, clean_env(), log) as proc:
        try:
            took = wait_for(
                f"make dev serves on port {port}",
                lambda: request(base + "/api/v1/health").status == 200,
                within=90,
                alive=lambda: proc.poll() is None,
            )
            print(f"  --  make dev to first 200: {took:.2f} s")
            ready = request(base + "/api/v1/health/ready")
            expect("GET /api/v1/health/ready -> 200", ready.status == 200 and ready.json() == READY, ready)
            preflight = request(
                base + "/api/v1/health", "OPTIONS", {"Origin": origin, "Access-Control-Request-Method": "GET"}
            )
            expect(
                f"CORS preflight from {origin} allowed",
                preflight.status == 200 and preflight.headers.get("access-control-allow-origin") == origin,
                preflight,
            )
            os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                raise CheckFailed("Ctrl-C: make dev did not stop within 30 s") from None

            # make returns at once on Ctrl-C; what it started finishes shutting down after it.
            def nothing_left() -> bool:
                # This checker runs on the service's Python, so its own command line matches too.
                left = subprocess.run(["pgrep", "-f", str(service / "backend")], capture_output=True, text=True)
                return not [pid for pid in left.stdout.split() if int(pid) != os.getpid()]

            took = wait_for("Ctrl-C: uvicorn, PostgreSQL and Redis all stopped", nothing_left, 20, lambda: True)
            print(f"  ok  Ctrl-C: uvicorn, PostgreSQL and Redis all stopped ({took:.2f} s after make returned)")
        except CheckFailed as failure:
            raise CheckFailed(f"{failure}\n--- make dev output ({log}) ---\n{tail(log)}") from None


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    boot_parser = commands.add_parser("boot")
    boot_parser.add_argument("service", type=Path)
    boot_parser.add_argument("--title", required=True)
    boot_parser.add_argument("--readiness-timeout", type=float, default=1.0)
    dev_parser = commands.add_parser("dev")
    dev_parser.add_argument("service", type=Path)
    dev_parser.add_argument("--port", type=int, required=True)
    dev_parser.add_argument("--origin", required=True)
    args = parser.parse_args()
    try:
        if args.command == "boot":
            boot(args.service.resolve(), args.title, args.readiness_timeout)
        else:
            dev(args.service.resolve(), args.port, args.origin)
    except CheckFailed as failure:
        print(f"FAILED: {failure}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
