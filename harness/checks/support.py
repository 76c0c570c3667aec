"""A rendered, installed service driven as processes over HTTP: what the checks and the bench share.

Standard library only: it runs with the service's own Python, next to the service's packages.
"""

import http.client
import json
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HEALTH, READINESS = "/api/v1/health", "/api/v1/health/ready"
READY = {"status": "ok", "database": "connected", "redis": "connected"}
# What `make api` serves, without --reload: uvicorn builds the app with the service's factory.
APP_FACTORY = "app.main:create_app"
# Where a stopped service says it stopped cleanly (all three, in this order).
SHUTDOWN_MESSAGES = ("Application shutdown complete.", "Database engine disposed", "Redis client closed")


@dataclass(frozen=True)
class Response:
    status: int
    headers: dict[str, str]  # names in lower case
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)

    def __str__(self) -> str:
        return f"{self.status} {self.body[:300].decode(errors='replace')}"


def request(
    port: int, path: str, method: str = "GET", headers: dict[str, str] | None = None, timeout: float = 10
) -> Response:
    """One request on a new connection to 127.0.0.1:PORT; OSError and HTTPException propagate."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.request(method, path, headers=headers or {})
        response = conn.getresponse()
        return Response(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        conn.close()


def wait_for(what: str, probe: Callable[[], bool], within: float, alive: Callable[[], bool] = lambda: True) -> float:
    """Seconds until PROBE() is true; fails the check after WITHIN seconds or once ALIVE() is false."""
    started = time.monotonic()
    while True:
        assert alive(), f"{what}: the process exited"
        with suppress(OSError, http.client.HTTPException):
            if probe():
                return time.monotonic() - started
        assert time.monotonic() - started <= within, f"{what}: not within {within} s"
        time.sleep(0.05)


def clean_env() -> dict[str, str]:
    # Nothing from the shell that runs the checks may configure or redirect the service.
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


def uvicorn_command(backend: Path, port: int, app: str = APP_FACTORY, *, access_log: bool = False) -> list[str]:
    """uvicorn as `make api` runs it, without --reload (and without uvicorn's own access line,
    as the service writes its own; ACCESS_LOG keeps uvicorn's, for apps that have none)."""
    uvicorn = backend / ".venv" / "bin" / "uvicorn"
    command = [str(uvicorn), "--factory", app, "--host", "127.0.0.1", "--port", str(port)]
    return command if access_log else [*command, "--no-access-log"]


@contextmanager
def process(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """COMMAND in its own process group, output to LOG; the group is killed on exit if still running."""
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        if proc.poll() is None:
            with suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@dataclass
class Service:
    """A uvicorn process of the service, where it serves and what it writes."""

    proc: subprocess.Popen[bytes]
    port: int
    log: Path
    start_seconds: float = 0.0  # process start to the first 200 of liveness

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def get(self, path: str, headers: dict[str, str] | None = None, timeout: float = 10) -> Response:
        return request(self.port, path, headers=headers, timeout=timeout)

    def timed_get(self, path: str, timeout: float = 10) -> tuple[Response | str, float]:
        """GET PATH: the response or what went wrong instead, and how long it took."""
        started = time.monotonic()
        try:
            result: Response | str = self.get(path, timeout=timeout)
        except (OSError, http.client.HTTPException) as exc:
            result = repr(exc)
        return result, time.monotonic() - started

    def status(self, path: str) -> int | None:
        response, _ = self.timed_get(path)
        return response.status if isinstance(response, Response) else None

    def terminate(self, grace: float) -> tuple[int | None, float]:
        """SIGTERM: the exit status (None if still running after GRACE seconds) and the time to exit."""
        sent = time.monotonic()
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(grace), time.monotonic() - sent
        except subprocess.TimeoutExpired:
            return None, time.monotonic() - sent


@dataclass(frozen=True)
class Servers:
    """PostgreSQL and Redis as the service's ``devtools.servers`` runs them (start, stop, kill, url, port)."""

    postgres: Any
    redis: Any


@dataclass(frozen=True)
class Stopped:
    """How a service ended after SIGTERM."""

    code: int | None  # None: still running after the grace period (then killed)
    seconds: float


def run(command: list[str], cwd: Path, timeout: float, env: dict[str, str] | None = None) -> str:
    """Runs COMMAND; a non-zero exit fails the check and shows what it printed."""
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{output[-6000:]}"
    return output


def log_records(log: Path) -> list[dict[str, Any]]:
    """Every line LOG holds, parsed; a line that is not a JSON object fails the check."""
    records = []
    for line in filter(str.strip, log.read_text().splitlines()):
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        assert isinstance(record, dict), f"{log.name}: a line that is not a JSON object: {line!r}"
        records.append(record)
    return records


def tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else "(no output)"
