"""A rendered, installed service driven as processes over HTTP: what the checks and the bench share.

Standard library only: it runs with the service's own Python, next to the service's packages.
"""

import asyncio
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
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
    port: int,
    path: str,
    method: str = "GET",
    headers: dict[str, str] | None = None,
    timeout: float = 10,
    source: str = "127.0.0.1",
    body: bytes | None = None,
) -> Response:
    """One request on a new connection to 127.0.0.1:PORT from SOURCE (any 127.0.0.0/8 address
    is loopback); OSError and HTTPException propagate."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout, source_address=(source, 0))
    try:
        conn.request(method, path, body=body, headers=headers or {})
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


# Nothing from the shell that runs the checks may configure or redirect the service, its
# package manager or make (uvicorn and gunicorn read WEB_CONCURRENCY, the Makefile PORT).
NOT_INHERITED = (
    *("DATABASE_URL", "REDIS_URL", "PORT", "WEB_CONCURRENCY", "MAKEFLAGS", "MAKELEVEL", "MFLAGS"),
    *("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "UV_PYTHON", "CONDA_PREFIX", "POETRY_ACTIVE"),
)


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k not in NOT_INHERITED}


def example_values(backend: Path) -> dict[str, str]:
    """The values of backend/.env.example, what a user fills in."""
    lines = (backend / ".env.example").read_text().splitlines()
    return dict(line.partition("=")[::2] for line in lines if line and not line.startswith("#"))


def env_from_example(backend: Path) -> dict[str, str]:
    """The environment a user gives the service: the values of .env.example."""
    return {**clean_env(), **example_values(backend)}


def uvicorn_command(backend: Path, port: int, app: str = APP_FACTORY, *, access_log: bool = False) -> list[str]:
    """uvicorn as `make api` runs it, without --reload (and without uvicorn's own access line,
    as the service writes its own; ACCESS_LOG keeps uvicorn's, for apps that have none)."""
    uvicorn = backend / ".venv" / "bin" / "uvicorn"
    command = [str(uvicorn), "--factory", app, "--host", "127.0.0.1", "--port", str(port)]
    return command if access_log else [*command, "--no-access-log"]


def production_command(backend: Path) -> list[str]:
    """The production server as `make serve` and the image run it (in backend/; PORT in the environment)."""
    return [str(backend / ".venv" / "bin" / "python"), "-m", "app"]


@contextmanager
def process(command: list[str], cwd: Path, env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    """COMMAND in its own process group, output to LOG; what is left of the group is killed on exit."""
    with log.open("wb") as out:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        yield proc
    finally:
        # Also when COMMAND has exited: a server's workers may outlive it (a failed check).
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name (state, ppid, pgrp, ...); None once it is gone."""
    try:
        # The command name may hold spaces and ")": split after its last ")".
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError(f"no VmRSS in /proc/{pid}/status")


def process_tree(root: int) -> list[int]:
    """ROOT and every live process below it."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (fields := proc_stat(int(entry.name))):
            children.setdefault(int(fields[1]), []).append(int(entry.name))
    found, todo = [], [root]
    while todo:
        pid = todo.pop()
        found.append(pid)
        todo.extend(children.get(pid, []))
    return found


@dataclass
class Service:
    """A server process of the service (uvicorn, or `python -m app`), where it serves and what it writes."""

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


class Launcher:
    """Starts the service's servers; close() stops all it started."""

    def __init__(self, backend: Path, env: dict[str, str], logs: Path, watched: dict[Path, str]) -> None:
        self.backend, self.env, self.logs, self.watched = backend, env, logs, watched
        self.stack = ExitStack()

    def __call__(self, name: str, app: str = APP_FACTORY, **overrides: str) -> Service:
        """uvicorn as `make api` serves it (no reload): NAME (its log's name) with APP and
        environment OVERRIDES, once liveness is 200."""
        from devtools.servers import free_port

        port = free_port()
        return self.start(name, uvicorn_command(self.backend, port, app), port, **overrides)

    def production(
        self, name: str, command: list[str] | None = None, cwd: Path | None = None, **overrides: str
    ) -> Service:
        """The production server, `python -m app` (or COMMAND in CWD, such as `make serve`), on a
        free loopback port, once liveness is 200."""
        from devtools.servers import free_port

        port = free_port()
        command = command or production_command(self.backend)
        # Workers with `uv run` or `poetry run` in front take longer than one uvicorn.
        env = {"PORT": str(port), "BIND_ADDRESS": "127.0.0.1", **overrides}
        return self.start(name, command, port, cwd=cwd, within=60, **env)

    def start(
        self, name: str, command: list[str], port: int, cwd: Path | None = None, within: float = 30, **overrides: str
    ) -> Service:
        """COMMAND serving on PORT, as NAME, once liveness is 200 (within WITHIN seconds)."""
        log = self.logs / f"{name}.log"
        self.watched[log] = f"service {name!r}"
        self.stack.callback(self.watched.pop, log, None)
        proc = self.stack.enter_context(process(command, cwd or self.backend, {**self.env, **overrides}, log))
        service = Service(proc, port, log)
        serving = f"{name}: serves {HEALTH}"
        service.start_seconds = wait_for(serving, lambda: service.status(HEALTH) == 200, within, service.alive)
        return service

    def close(self) -> None:
        self.stack.close()


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


def completed(
    command: list[str], cwd: Path | None = None, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs COMMAND to its end, its output captured; whatever its exit status."""
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def run(command: list[str], cwd: Path | None, timeout: float, env: dict[str, str] | None = None) -> str:
    """Runs COMMAND; a non-zero exit fails the check and shows what it printed."""
    done = completed(command, cwd, timeout, env)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{' '.join(command)} exited {done.returncode}:\n{output[-6000:]}"
    return output


def log_records(log: Path, skip: re.Pattern[str] | None = None) -> list[dict[str, Any]]:
    """Every line LOG holds (but those SKIP matches whole), parsed; one that is not a JSON object fails the check."""
    records = []
    for line in filter(str.strip, log.read_text().splitlines()):
        if skip and skip.fullmatch(line):
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            record = None
        assert isinstance(record, dict), f"{log.name}: a line that is not a JSON object: {line!r}"
        records.append(record)
    return records


def tail(log: Path, lines: int = 40) -> str:
    return "\n".join(log.read_text(errors="replace").splitlines()[-lines:]) if log.exists() else "(no output)"


def table_names(database_url: str) -> set[str]:
    """The tables in the database at DATABASE_URL (its default schema)."""
    from sqlalchemy import Connection, inspect, make_url
    from sqlalchemy.ext.asyncio import create_async_engine
    from sqlalchemy.pool import NullPool

    def names(connection: Connection) -> set[str]:
        return set(inspect(connection).get_table_names())

    async def read() -> Any:
        url = make_url(database_url).set(drivername="postgresql+asyncpg")
        engine = create_async_engine(url, poolclass=NullPool)
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(names)
        finally:
            await engine.dispose()

    return set(asyncio.run(read()))


def pypi_json_api_available() -> bool:
    try:
        with urllib.request.urlopen("https://pypi.org/pypi/pip/24.0/json", timeout=20) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def poetry_simple_index(backend: Path, poetry: str = "poetry") -> bool:
    """Gives a poetry service (BACKEND) PyPI's simple index as its source where PyPI's JSON API,
    which poetry resolves through, is not reachable (some mirrors lack it); whether it did.

    Not part of the user's flow: a test machine's workaround, before `make install`. The
    source is part of what poetry.lock's hash covers: the lock is refreshed, its pins kept.
    """
    if not (backend / "poetry.toml").exists() or pypi_json_api_available():
        return False
    for command in (["source", "add", "--priority=primary", "pypi-simple", "https://pypi.org/simple/"], ["lock"]):
        subprocess.run([poetry, *command], cwd=backend, capture_output=True, check=True)
    return True


def git(repo: Path, *args: str) -> str:
    done = subprocess.run(["git", *args], cwd=repo, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, f"git {' '.join(args)}: {done.stderr}"
    return done.stdout


GIT_IDENTITY = ("-c", "user.name=Service Check", "-c", "user.email=service-check@example.com")


def commit(repo: Path, message: str) -> None:
    git(repo, "add", "-A")
    git(repo, *GIT_IDENTITY, "commit", "-q", "--no-verify", "-m", message)


@contextmanager
def committed(service_dir: Path) -> Iterator[Path]:
    """The service with everything committed (a repository of its own if it has none); afterwards,
    back as it was. It must have no uncommitted changes."""
    created = not (service_dir / ".git").exists()
    if created:
        git(service_dir, "init", "-q")
    elif git(service_dir, "status", "--porcelain"):
        raise AssertionError(f"{service_dir} has uncommitted changes: these checks need a clean service")
    git(service_dir, "add", "-A")
    git(service_dir, *GIT_IDENTITY, "commit", "-q", "--allow-empty", "--no-verify", "-m", "before the checks")
    base = git(service_dir, "rev-parse", "HEAD").strip()
    try:
        yield service_dir
    finally:
        git(service_dir, "reset", "-q", "--hard", base)
        git(service_dir, "clean", "-fdq")
        if created:
            shutil.rmtree(service_dir / ".git")


def schemathesis_run(
    schemathesis: Path, base: str, workdir: Path, examples: int, seconds: int
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """schemathesis 4 on BASE's /openapi.json, every check and phase: its exit and its JSON report."""
    report = workdir / "schemathesis.json"
    command = [str(schemathesis), "run", f"{base}/openapi.json", "--checks=all", f"--max-examples={examples}"]
    # --max-time: fuzzing repeats until it is spent; no example database left behind.
    command += [f"--max-time={seconds}", "--generation-database=none", "--no-color"]
    command += ["--report=json", f"--report-json-path={report}"]
    done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=seconds + 240, check=False)
    return done, json.loads(report.read_text()) if report.exists() else {}


def schemathesis_summary(summary: dict[str, Any]) -> str:
    cases, operations = summary.get("test_cases", {}), summary.get("operations", {})
    phases = ", ".join(f"{name} {phase['status']}" for name, phase in summary.get("phases", {}).items())
    return (
        f"schemathesis {summary.get('schemathesis_version')}: {cases.get('generated')} cases, "
        f"{operations.get('tested')} operations, phases: {phases}"
    )
