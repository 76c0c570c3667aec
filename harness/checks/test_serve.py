"""`make serve`, the production server (`python -m app`), run as a user and the container run it.

Run with the rendered, installed service's Python, the service named by SERVICE_DIR:

    SERVICE_DIR=/path/to/service /path/to/service/backend/.venv/bin/python -m pytest harness/checks/test_serve.py

Real PostgreSQL and Redis come from the service's own ``devtools.servers``. Every server
listens on 127.0.0.1 only; every wait is bounded.
"""

import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest

HEALTH, READINESS = "/api/v1/health", "/api/v1/health/ready"
# gunicorn's line for each worker it starts.
BOOTED = re.compile(r"Booting worker with pid: (\d+)")
# What `make serve` prints that is not the server's: make's echo of the recipe, and the
# status line `uv run` writes when it compiles bytecode. Nothing else may be anything but JSON.
NOT_THE_SERVER = re.compile(r"cd backend && (uv|poetry) run python -m app|Bytecode compiled \d+ files in [\d.]+m?s")


@pytest.fixture(scope="module")
def service() -> Path:
    """The rendered, installed service under test (SERVICE_DIR)."""
    value = os.environ.get("SERVICE_DIR")
    if not value:
        pytest.fail("set SERVICE_DIR to a rendered service whose backend is installed (make install)")
    path = Path(value).resolve()
    if not (path / "backend" / "app" / "__main__.py").is_file():
        pytest.fail(f"SERVICE_DIR={value} is not a rendered service with a production server (backend/app/__main__.py)")
    return path


@pytest.fixture(scope="module")
def servers(service: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Any]]:
    """Real PostgreSQL and Redis, from the service's own dev tooling."""
    sys.path.insert(0, str(service / "backend"))
    from devtools.servers import running_servers

    with running_servers(tmp_path_factory.mktemp("servers")) as (postgres, redis):
        yield postgres, redis


def free_port() -> int:
    from devtools.servers import free_port as servers_free_port  # on sys.path once `servers` ran

    return servers_free_port()


def server_env(service: Path, servers: tuple[Any, Any], **settings: str) -> dict[str, str]:
    """What a user gives the service: .env.example's values, the real servers, loopback only; then SETTINGS."""
    drop = ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "UV_PYTHON", "POETRY_ACTIVE", "WEB_CONCURRENCY", "PORT")
    env = {k: v for k, v in os.environ.items() if k not in drop}
    for line in (service / "backend" / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name] = value
    postgres, redis = servers
    env.update(DATABASE_URL=postgres.url, REDIS_URL=redis.url, BIND_ADDRESS="127.0.0.1", PORT=str(free_port()))
    env.update(settings)
    return env


def get(port: int, path: str, source: str = "127.0.0.1", headers: dict[str, str] | None = None) -> tuple[int, Any]:
    """One GET on a new connection from SOURCE (any 127.0.0.0/8 address is loopback); status and JSON body."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30, source_address=(source, 0))
    try:
        connection.request("GET", path, headers=headers or {})
        response = connection.getresponse()
        body = response.read()
        return response.status, json.loads(body) if body else None
    finally:
        connection.close()


def proc_stat(pid: int) -> list[str] | None:
    """Fields of /proc/PID/stat after the command name: state, ppid, pgrp, session, ..."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        fields = proc_stat(int(entry.name)) if entry.name.isdigit() else None
        # A zombie (Z) has exited; only its parent has yet to reap it.
        if fields and int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


class Serve:
    """`make serve` (or COMMAND) in its own process group, its output in LOG."""

    def __init__(self, cwd: Path, env: dict[str, str], log: Path, command: list[str] | None = None) -> None:
        self.port = int(env["PORT"])
        self.log = log
        self.command = command or ["make", "serve"]
        with log.open("wb") as out:
            self.process = subprocess.Popen(
                self.command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_serving(self, within: float = 60) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"{self.command} exited early:\n{self.output()}"
            with suppress(OSError):
                if get(self.port, HEALTH)[0] == 200:
                    return
            time.sleep(0.1)
        pytest.fail(f"{self.command} did not answer within {within} s:\n{self.output()}")

    def wait_started(self, workers: int, within: float = 60) -> None:
        """Until WORKERS workers have started their apps (uvicorn says so for each)."""
        deadline = time.monotonic() + within
        while self.messages().count("Application startup complete.") < workers:
            assert time.monotonic() < deadline, f"{workers} workers not started within {within} s:\n{self.output()}"
            time.sleep(0.05)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def records(self) -> list[dict[str, Any]]:
        """Every line of output as JSON; fails on any that is not (bar make's and uv's own, NOT_THE_SERVER)."""
        records = []
        for line in self.output().splitlines():
            if not line.strip() or NOT_THE_SERVER.fullmatch(line):
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError:
                pytest.fail(f"a line of output is not JSON: {line!r}\n{self.output()}")
            assert isinstance(record, dict), line
            records.append(record)
        return records

    def messages(self) -> list[str]:
        return [str(record.get("message")) for record in self.records()]

    def main_pid(self) -> int:
        """The supervising `python -m app` process: in the group, its parent not one itself."""
        found = [pid for pid in group_members(self.process.pid) if self.is_server(pid)]
        main = [pid for pid in found if (fields := proc_stat(pid)) and int(fields[1]) not in found]
        assert len(main) == 1, f"expected one supervising `python -m app`, found {main} among {found}"
        return main[0]

    @staticmethod
    def is_server(pid: int) -> bool:
        # Exactly `python -m app` (not `uv run python -m app`, which ends the same way).
        try:
            argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
        except OSError:
            return False
        return len(argv) == 3 and Path(argv[0].decode()).name.startswith("python") and argv[1:] == [b"-m", b"app"]

    def workers(self) -> list[int]:
        """PIDs of the live workers: children of the supervisor that it says it booted."""
        booted = {int(m.group(1)) for m in map(BOOTED.fullmatch, self.messages()) if m}
        main = self.main_pid()
        return sorted(
            pid for pid in booted if (fields := proc_stat(pid)) and int(fields[1]) == main and fields[0] != "Z"
        )

    def wait_gone(self, within: float) -> float:
        """Seconds until no process of the group is left; fails after WITHIN."""
        started = time.monotonic()
        while group_members(self.process.pid):
            if time.monotonic() - started > within:
                left = {pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid in group_members(self.process.pid)}
                pytest.fail(f"processes left {within} s after SIGTERM: {left}\n{self.output()}")
            time.sleep(0.05)
        self.process.wait(5)
        return time.monotonic() - started

    def cleanup(self) -> None:
        with suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(10)


@pytest.fixture
def serve(service: Path, servers: tuple[Any, Any], tmp_path: Path) -> Iterator[Callable[..., Serve]]:
    """Starts `make serve` with the given settings and waits until it answers; stopped after the test."""
    started: list[Serve] = []

    def start(**settings: str) -> Serve:
        server = Serve(service, server_env(service, servers, **settings), tmp_path / f"serve-{len(started)}.log")
        started.append(server)
        server.wait_serving()
        server.wait_started(int(settings.get("WEB_CONCURRENCY", "1")))
        return server

    yield start
    for server in started:
        server.cleanup()


@pytest.fixture
def redis_paused(servers: tuple[Any, Any]) -> Iterator[Callable[[float], None]]:
    """Pauses every Redis client for some seconds: the readiness route then answers that much later."""
    import redis

    client = redis.Redis.from_url(servers[1].url)
    ends = time.monotonic()

    def pause(seconds: float) -> None:
        nonlocal ends
        client.client_pause(int(seconds * 1000))
        ends = time.monotonic() + seconds

    yield pause
    # Redis 6.2 holds even CLIENT UNPAUSE until the pause is over: wait it out.
    time.sleep(max(0.0, ends - time.monotonic()))
    client.ping()
    client.close()


def in_background(call: Callable[[], Any]) -> Callable[[], Any]:
    """Runs CALL in a thread; the returned function waits for its result (or re-raises its error)."""
    outcome: dict[str, Any] = {}

    def run() -> None:
        try:
            outcome["result"] = call()
        except Exception as error:
            outcome["error"] = error

    thread = threading.Thread(target=run, daemon=True)
    thread.start()

    def result(within: float = 60) -> Any:
        thread.join(within)
        assert not thread.is_alive(), f"no answer within {within} s"
        if "error" in outcome:
            raise outcome["error"]
        return outcome["result"]

    return result


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_two_workers_serve_and_every_line_is_json(serve: Callable[..., Serve]) -> None:
    server = serve(WEB_CONCURRENCY="2")
    assert get(server.port, READINESS) == (200, {"status": "ok", "database": "connected", "redis": "connected"})
    main = server.main_pid()
    assert len(server.workers()) == 2, server.output()  # live children of the supervisor
    for _ in range(20):
        assert get(server.port, HEALTH)[0] == 200

    os.kill(main, signal.SIGTERM)
    server.wait_gone(within=15)
    assert server.process.returncode == 0, server.output()
    messages = server.messages()  # fails on any line that is not JSON
    assert any(m.startswith("Starting gunicorn") for m in messages), messages  # the supervisor's own lines
    assert messages.count("Application startup complete.") == 2, messages  # the workers' (uvicorn's) lines
    assert messages.count("Database engine disposed") == 2, messages  # each worker shut its app down
    assert "Shutting down: Master" in messages, messages


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_a_killed_worker_is_respawned_while_the_other_serves(serve: Callable[..., Serve]) -> None:
    server = serve(WEB_CONCURRENCY="2")
    main = server.main_pid()
    killed, survivor = server.workers()
    os.kill(killed, signal.SIGKILL)
    # A request the worker had taken in dies with it, as in any crash; every request
    # sent once it is gone must be answered, by the other worker until the new one is up.
    deadline = time.monotonic() + 10
    while (fields := proc_stat(killed)) and fields[0] != "Z":
        assert time.monotonic() < deadline, f"worker {killed} still alive 10 s after SIGKILL"
        time.sleep(0.01)

    answers, deadline = [], time.monotonic() + 30
    while len(workers := server.workers()) < 2 or killed in workers:
        assert time.monotonic() < deadline, f"no worker respawned within 30 s:\n{server.output()}"
        answers.append(get(server.port, HEALTH)[0])
        time.sleep(0.05)
    assert set(answers) <= {200}, f"answers while a worker was down: {answers}"
    assert survivor in workers and killed not in workers, (killed, survivor, workers)
    assert all(get(server.port, READINESS)[0] == 200 for _ in range(10))
    assert server.main_pid() == main


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_sigterm_lets_the_request_in_flight_finish_then_exits(
    serve: Callable[..., Serve], redis_paused: Callable[[float], None]
) -> None:
    grace = 10
    server = serve(WEB_CONCURRENCY="2", SHUTDOWN_TIMEOUT=str(grace), READINESS_TIMEOUT="10")
    redis_paused(3)  # readiness waits for Redis: a slow request that ends with 200
    slow = in_background(lambda: get(server.port, READINESS))
    time.sleep(0.5)

    sent = time.monotonic()
    os.kill(server.main_pid(), signal.SIGTERM)
    status, body = slow()
    assert (status, body["status"]) == (200, "ok")
    took = time.monotonic() - sent + server.wait_gone(within=grace + 5)
    assert took < grace, f"exited {took:.1f} s after SIGTERM; SHUTDOWN_TIMEOUT={grace}"
    assert server.process.returncode == 0, server.output()
    access = [r for r in server.records() if r.get("logger") == "app.access" and r.get("path") == READINESS]
    assert access and access[-1]["status"] == 200 and access[-1]["duration_ms"] > 2000, access


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_sigterm_exits_within_the_grace_period_when_a_request_outlasts_it(
    serve: Callable[..., Serve], redis_paused: Callable[[float], None]
) -> None:
    grace = 2
    server = serve(WEB_CONCURRENCY="1", SHUTDOWN_TIMEOUT=str(grace), READINESS_TIMEOUT="15")
    redis_paused(8)
    slow = in_background(lambda: get(server.port, READINESS))
    time.sleep(0.5)

    sent = time.monotonic()
    os.kill(server.main_pid(), signal.SIGTERM)
    gone = server.wait_gone(within=grace + 5)
    assert gone < grace + 2, f"left {gone:.1f} s after SIGTERM; SHUTDOWN_TIMEOUT={grace}"
    with pytest.raises(OSError):  # the worker was killed with the request unanswered
        slow(within=5)
    assert time.monotonic() - sent < 8
    assert "Database engine disposed" not in server.messages(), server.output()  # killed, not finished


# A route of the check's own on top of the service's app (in a copy): what the app sees
# as the client address and scheme. The server still starts as `python -m app`.
PEER_ROUTE = """

import fastapi as _check_fastapi

_service_create_app = create_app


def create_app(settings=None):
    app = _service_create_app(settings)

    @app.get("/_check/peer")
    async def _peer(request: _check_fastapi.Request) -> dict:
        return {"client": request.client.host if request.client else None, "scheme": request.url.scheme}

    return app
"""


def test_forwarded_headers_are_believed_only_from_allowed_peers(
    service: Path, servers: tuple[Any, Any], tmp_path: Path
) -> None:
    backend = tmp_path / "backend"
    shutil.copytree(service / "backend" / "app", backend / "app", ignore=shutil.ignore_patterns("__pycache__"))
    (backend / "app" / "main.py").write_text((backend / "app" / "main.py").read_text() + PEER_ROUTE)
    env = server_env(service, servers, FORWARDED_ALLOW_IPS="127.0.0.2, 127.0.0.8/30")
    python = str(service / "backend" / ".venv" / "bin" / "python")
    server = Serve(backend, env, tmp_path / "peer.log", command=[python, "-m", "app"])
    try:
        server.wait_serving()
        forwarded = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
        seen = {
            source: get(server.port, "/_check/peer", source, forwarded)[1]
            for source in ("127.0.0.2", "127.0.0.9", "127.0.0.3", "127.0.0.1")
        }
        assert seen == {
            "127.0.0.2": {"client": "203.0.113.7", "scheme": "https"},  # an allowed address
            "127.0.0.9": {"client": "203.0.113.7", "scheme": "https"},  # in an allowed network
            "127.0.0.3": {"client": "127.0.0.3", "scheme": "http"},  # not allowed: headers ignored
            "127.0.0.1": {"client": "127.0.0.1", "scheme": "http"},  # nor the default's loopback, now
        }
        # Through two proxies: the nearest address that is not an allowed proxy is the client.
        chain = {"X-Forwarded-For": "198.51.100.1, 127.0.0.10"}
        assert get(server.port, "/_check/peer", "127.0.0.2", chain)[1]["client"] == "198.51.100.1"
        # A client cannot pass itself off as an allowed proxy by adding one to the header.
        spoofed = {"X-Forwarded-For": "127.0.0.2"}
        assert get(server.port, "/_check/peer", "127.0.0.3", spoofed)[1]["client"] == "127.0.0.3"
        # Where the access line carries the client address, it is the one the app saw.
        access = [r for r in server.records() if r.get("logger") == "app.access" and "client" in r]
        assert all(
            str(r["client"]).split(":")[0] in {"203.0.113.7", "127.0.0.3", "127.0.0.1", "198.51.100.1"} for r in access
        ), access
    finally:
        server.cleanup()


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        ("WEB_CONCURRENCY", "0", "WEB_CONCURRENCY: Input should be greater than or equal to 1"),
        ("FORWARDED_ALLOW_IPS", "10.0.0.1/8", "FORWARDED_ALLOW_IPS: '10.0.0.1/8' not an IP address or network"),
        ("SHUTDOWN_TIMEOUT", "soon", "SHUTDOWN_TIMEOUT: Input should be a valid integer"),
    ],
)
def test_a_bad_setting_stops_make_serve_with_one_clear_message(
    service: Path, servers: tuple[Any, Any], setting: str, value: str, expected: str
) -> None:
    env = server_env(service, servers, **{setting: value})
    result = subprocess.run(["make", "serve"], cwd=service, env=env, capture_output=True, text=True, timeout=60)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert expected in output, output
    assert "Traceback" not in output, output
