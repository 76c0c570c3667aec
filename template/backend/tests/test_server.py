"""The app served by a real uvicorn process, started as a user starts it."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx2
import pytest

from tests.conftest import BACKEND_DIR, ENV_EXAMPLE, Servers


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def server_env(servers: Servers, **overrides: str) -> dict[str, str]:
    """The environment a user would give the server: .env.example's values, the test servers."""
    env = dict(os.environ)
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line and not line.startswith("#"):
            name, value = line.split("=", 1)
            env[name] = value
    env.update(DATABASE_URL=servers.database_url, REDIS_URL=servers.redis_url)
    env.update(overrides)
    return env


class Server:
    def __init__(self, command: list[str], cwd: Path, env: dict[str, str], port: int, log: Path) -> None:
        self.base_url = f"http://127.0.0.1:{port}"
        self.log = log
        with log.open("wb") as out:
            # Own process group: `make` and the reloader start children that must stop too.
            self.process = subprocess.Popen(
                command, cwd=cwd, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
            )

    def wait_until_serving(self, within: float = 30.0) -> None:
        deadline = time.monotonic() + within
        while time.monotonic() < deadline:
            assert self.process.poll() is None, f"server exited early:\n{self.log.read_text()}"
            try:
                if httpx2.get(f"{self.base_url}/api/v1/health", timeout=1.0).status_code == 200:
                    return
            except httpx2.TransportError:
                time.sleep(0.1)
        pytest.fail(f"server did not answer within {within} s:\n{self.log.read_text()}")

    def terminate(self, within: float = 15.0) -> int:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            return self.process.wait(timeout=within)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
            pytest.fail(f"server did not stop within {within} s of SIGTERM:\n{self.log.read_text()}")

    def cleanup(self) -> None:
        if self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def log_records(self) -> list[dict[str, object]]:
        lines = [line for line in self.log.read_text().splitlines() if line.strip()]
        records = []
        for line in lines:
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                pytest.fail(f"log line is not JSON: {line!r}")
        return records


# How every server builds the app: the factory, called once the server starts.
UVICORN = [sys.executable, "-m", "uvicorn", "--factory", "app.main:create_app"]


@pytest.fixture
def start_uvicorn(servers: Servers, tmp_path: Path) -> Iterator[Callable[..., Server]]:
    """Starts uvicorn in backend/ with the given options, on a free port; stops it after the test."""
    started: list[Server] = []

    def start(*options: str) -> Server:
        port = free_port()
        command = [*UVICORN, "--host", "127.0.0.1", "--port", str(port), *options]
        server = Server(command, BACKEND_DIR, server_env(servers), port, tmp_path / f"server-{len(started)}.log")
        started.append(server)
        return server

    try:
        yield start
    finally:
        for server in started:
            server.cleanup()


@pytest.fixture
def uvicorn_server(start_uvicorn: Callable[..., Server]) -> Server:
    """uvicorn as `make api` runs it, without reload: the app writes the access line, uvicorn does not."""
    return start_uvicorn("--no-access-log")


def test_uvicorn_serves_the_app_logs_json_only_and_shuts_down_cleanly(uvicorn_server: Server) -> None:
    uvicorn_server.wait_until_serving()
    for path in ("/api/v1/health/ready", "/docs", "/redoc", "/openapi.json"):
        response = httpx2.get(uvicorn_server.base_url + path, headers={"X-Request-ID": "boot-check"})
        assert response.status_code == 200, path
        assert response.headers["X-Request-ID"] == "boot-check"

    returncode = uvicorn_server.terminate()
    # uvicorn re-raises the SIGTERM it caught once it has shut down cleanly.
    assert returncode in (0, -signal.SIGTERM), uvicorn_server.log.read_text()

    records = uvicorn_server.log_records()
    messages = [str(r["message"]) for r in records]
    for expected in (
        "Database connection established",
        "Redis connection established",
        "Application startup complete.",
        "Shutting down",
        "Database engine disposed",
        "Redis client closed",
        "Application shutdown complete.",
    ):
        assert expected in messages, f"{expected!r} not logged: {messages}"
    assert any(m.startswith("Started server process") for m in messages)
    access = [r for r in records if r["logger"] == "app.access" and r["request_id"] == "boot-check"]
    assert [r["path"] for r in access] == ["/api/v1/health/ready", "/docs", "/redoc", "/openapi.json"]
    assert not [r for r in records if r["logger"] == "uvicorn.access"], "uvicorn's own access log is on"


def test_without_no_access_log_uvicorns_own_access_line_is_json_too(start_uvicorn: Callable[..., Server]) -> None:
    server = start_uvicorn()
    server.wait_until_serving()
    httpx2.get(server.base_url + "/api/v1/health", headers={"X-Request-ID": "second-line"})
    server.terminate()
    lines = [r for r in server.log_records() if r.get("request_id") == "second-line"]
    assert sorted(str(r["logger"]) for r in lines) == ["app.access", "uvicorn.access"]


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_api_serves_the_app_with_reload(servers: Servers, tmp_path: Path) -> None:
    port = free_port()
    command = ["make", "api", f"PORT={port}"]
    server = Server(command, BACKEND_DIR.parent, server_env(servers), port, tmp_path / "make-api.log")
    try:
        server.wait_until_serving(within=60.0)
        assert httpx2.get(f"{server.base_url}/api/v1/health/ready").json()["status"] == "ok"
        server.terminate()
    finally:
        server.cleanup()


def test_bad_configuration_stops_startup_with_one_clear_message(servers: Servers, tmp_path: Path) -> None:
    secret = "do-not-print-this-password"
    env = server_env(servers, REDIS_URL=f"redis://:{secret}@127.0.0.1:notaport/0")
    del env["DATABASE_URL"]
    result = subprocess.run(
        [*UVICORN, "--no-access-log", "--port", str(free_port())],
        cwd=tmp_path,  # outside backend/, so no .env file is read either
        env={**env, "PYTHONPATH": str(BACKEND_DIR)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert output.startswith("error: invalid configuration"), output
    assert "DATABASE_URL: is required but not set" in output
    assert "REDIS_URL: is not a Redis URL" in output
    assert secret not in output
    assert "Traceback" not in output
