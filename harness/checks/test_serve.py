"""`make serve`, the production server (`python -m app`), run as a user and the container run it.

Every server listens on 127.0.0.1 only, on the real PostgreSQL and Redis of the checks'
``servers``; every wait is bounded.
"""

import itertools
import os
import re
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from devtools.servers import free_port
from support import (
    HEALTH,
    READINESS,
    READY,
    Launcher,
    Response,
    Servers,
    Service,
    completed,
    log_records,
    proc_stat,
    request,
)

needs_make = pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
# gunicorn's line for each worker it starts.
BOOTED = re.compile(r"Booting worker with pid: (\d+)")
# What `make serve` prints that is not the server's: make's echo of the recipe, and the
# status line `uv run` writes when it compiles bytecode. Nothing else may be anything but JSON.
NOT_THE_SERVER = re.compile(
    r"cd backend && (uv run --locked|poetry run) python -m app|Bytecode compiled \d+ files in [\d.]+m?s"
)


def group_members(pgid: int) -> list[int]:
    members = []
    for entry in Path("/proc").iterdir():
        fields = proc_stat(int(entry.name)) if entry.name.isdigit() else None
        # A zombie (Z) has exited; only its parent has yet to reap it.
        if fields and int(fields[2]) == pgid and fields[0] != "Z":
            members.append(int(entry.name))
    return members


def messages(server: Service) -> list[str]:
    """The message of every line the server wrote; fails on any that is not JSON (bar NOT_THE_SERVER)."""
    return [str(record.get("message")) for record in log_records(server.log, skip=NOT_THE_SERVER)]


def wait_started(server: Service, workers: int, within: float = 60) -> None:
    """Until WORKERS workers have started their apps (uvicorn says so for each)."""
    deadline = time.monotonic() + within
    while messages(server).count("Application startup complete.") < workers:
        assert time.monotonic() < deadline, f"{workers} workers not started within {within} s"
        time.sleep(0.05)


def is_server(pid: int) -> bool:
    # Exactly `python -m app` (not `uv run python -m app`, which ends the same way).
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")[:-1]
    except OSError:
        return False
    return len(argv) == 3 and Path(argv[0].decode()).name.startswith("python") and argv[1:] == [b"-m", b"app"]


def main_pid(server: Service) -> int:
    """The supervising `python -m app` process: in the group, its parent not one itself."""
    found = [pid for pid in group_members(server.proc.pid) if is_server(pid)]
    main = [pid for pid in found if (fields := proc_stat(pid)) and int(fields[1]) not in found]
    assert len(main) == 1, f"expected one supervising `python -m app`, found {main} among {found}"
    return main[0]


def workers(server: Service) -> list[int]:
    """PIDs of the live workers: children of the supervisor that it says it booted."""
    booted = {int(m.group(1)) for m in map(BOOTED.fullmatch, messages(server)) if m}
    main = main_pid(server)
    return sorted(pid for pid in booted if (fields := proc_stat(pid)) and int(fields[1]) == main and fields[0] != "Z")


def wait_gone(server: Service, within: float) -> float:
    """Seconds until no process of the group is left; fails after WITHIN."""
    started = time.monotonic()
    while left := group_members(server.proc.pid):
        if time.monotonic() - started > within:
            commands = {pid: Path(f"/proc/{pid}/cmdline").read_bytes() for pid in left}
            pytest.fail(f"processes left {within} s after SIGTERM: {commands}")
        time.sleep(0.05)
    server.proc.wait(5)
    return time.monotonic() - started


@pytest.fixture
def serve(launch: Launcher, service_dir: Path) -> Callable[..., Service]:
    """Starts `make serve` with the given settings, until every worker has started its app."""
    started = itertools.count()

    def start(**settings: str) -> Service:
        server = launch.production(f"serve-{next(started)}", ["make", "serve"], service_dir, **settings)
        wait_started(server, int(settings.get("WEB_CONCURRENCY", "1")))
        return server

    return start


def get(server: Service, path: str, source: str = "127.0.0.1", headers: dict[str, str] | None = None) -> Response:
    return request(server.port, path, headers=headers, timeout=30, source=source)


@pytest.fixture
def redis_paused(servers: Servers) -> Iterator[Callable[[float], None]]:
    """Pauses every Redis client for some seconds: the readiness route then answers that much later."""
    import redis

    client = redis.Redis.from_url(servers.redis.url)
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


def sigterm_during_a_slow_request(
    server: Service, redis_paused: Callable[[float], None], seconds: float
) -> tuple[Callable[..., Any], float]:
    """SIGTERM to the server while a readiness request waits SECONDS for Redis: the request's
    result (a function that waits for it) and when SIGTERM was sent."""
    redis_paused(seconds)
    slow = in_background(lambda: get(server, READINESS))
    time.sleep(0.5)
    sent = time.monotonic()
    os.kill(main_pid(server), signal.SIGTERM)
    return slow, sent


@needs_make
def test_two_workers_serve_and_every_line_is_json(serve: Callable[..., Service]) -> None:
    server = serve(WEB_CONCURRENCY="2")
    ready = get(server, READINESS)
    assert (ready.status, ready.json()) == (200, READY), ready
    main = main_pid(server)
    assert len(workers(server)) == 2  # live children of the supervisor
    for _ in range(20):
        assert get(server, HEALTH).status == 200

    os.kill(main, signal.SIGTERM)
    wait_gone(server, within=15)
    assert server.proc.returncode == 0
    lines = messages(server)  # fails on any line that is not JSON
    assert any(m.startswith("Starting gunicorn") for m in lines), lines  # the supervisor's own lines
    assert lines.count("Application startup complete.") == 2, lines  # the workers' (uvicorn's) lines
    assert lines.count("Database engine disposed") == 2, lines  # each worker shut its app down
    assert "Shutting down: Master" in lines, lines


@needs_make
def test_a_killed_worker_is_respawned_while_the_other_serves(serve: Callable[..., Service]) -> None:
    server = serve(WEB_CONCURRENCY="2")
    main = main_pid(server)
    killed, survivor = workers(server)
    os.kill(killed, signal.SIGKILL)
    # A request the worker had taken in dies with it, as in any crash; every request
    # sent once it is gone must be answered, by the other worker until the new one is up.
    deadline = time.monotonic() + 10
    while (fields := proc_stat(killed)) and fields[0] != "Z":
        assert time.monotonic() < deadline, f"worker {killed} still alive 10 s after SIGKILL"
        time.sleep(0.01)

    answers, deadline = [], time.monotonic() + 30
    while len(live := workers(server)) < 2 or killed in live:
        assert time.monotonic() < deadline, "no worker respawned within 30 s"
        answers.append(get(server, HEALTH).status)
        time.sleep(0.05)
    assert set(answers) <= {200}, f"answers while a worker was down: {answers}"
    assert survivor in live and killed not in live, (killed, survivor, live)
    assert all(get(server, READINESS).status == 200 for _ in range(10))
    assert main_pid(server) == main


@needs_make
def test_sigterm_lets_the_request_in_flight_finish_then_exits(
    serve: Callable[..., Service], redis_paused: Callable[[float], None]
) -> None:
    grace = 10
    server = serve(WEB_CONCURRENCY="2", SHUTDOWN_TIMEOUT=str(grace), READINESS_TIMEOUT="10")
    slow, sent = sigterm_during_a_slow_request(server, redis_paused, 3)  # a slow request that ends with 200
    answer = slow()
    assert (answer.status, answer.json()["status"]) == (200, "ok"), answer
    took = time.monotonic() - sent + wait_gone(server, within=grace + 5)
    assert took < grace, f"exited {took:.1f} s after SIGTERM; SHUTDOWN_TIMEOUT={grace}"
    assert server.proc.returncode == 0
    records = log_records(server.log, skip=NOT_THE_SERVER)
    access = [r for r in records if r.get("logger") == "app.access" and r.get("path") == READINESS]
    assert access and access[-1]["status"] == 200 and access[-1]["duration_ms"] > 2000, access


@needs_make
def test_sigterm_exits_within_the_grace_period_when_a_request_outlasts_it(
    serve: Callable[..., Service], redis_paused: Callable[[float], None]
) -> None:
    grace = 2
    server = serve(WEB_CONCURRENCY="1", SHUTDOWN_TIMEOUT=str(grace), READINESS_TIMEOUT="15")
    slow, sent = sigterm_during_a_slow_request(server, redis_paused, 8)
    gone = wait_gone(server, within=grace + 5)
    assert gone < grace + 2, f"left {gone:.1f} s after SIGTERM; SHUTDOWN_TIMEOUT={grace}"
    with pytest.raises(OSError):  # the worker was killed with the request unanswered
        slow(within=5)
    assert time.monotonic() - sent < 8
    assert "Database engine disposed" not in messages(server)  # killed, not finished


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
    launch: Launcher, backend: Path, tmp_path: Path
) -> None:
    copy = tmp_path / "backend"
    shutil.copytree(backend / "app", copy / "app", ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "app" / "main.py").write_text((copy / "app" / "main.py").read_text() + PEER_ROUTE)
    python = str(backend / ".venv" / "bin" / "python")
    server = launch.production("peer", [python, "-m", "app"], copy, FORWARDED_ALLOW_IPS="127.0.0.2, 127.0.0.8/30")

    def peer(source: str, headers: dict[str, str]) -> Any:
        return get(server, "/_check/peer", source, headers).json()

    forwarded = {"X-Forwarded-For": "203.0.113.7", "X-Forwarded-Proto": "https"}
    seen = {source: peer(source, forwarded) for source in ("127.0.0.2", "127.0.0.9", "127.0.0.3", "127.0.0.1")}
    assert seen == {
        "127.0.0.2": {"client": "203.0.113.7", "scheme": "https"},  # an allowed address
        "127.0.0.9": {"client": "203.0.113.7", "scheme": "https"},  # in an allowed network
        "127.0.0.3": {"client": "127.0.0.3", "scheme": "http"},  # not allowed: headers ignored
        "127.0.0.1": {"client": "127.0.0.1", "scheme": "http"},  # nor the default's loopback, now
    }
    # Through two proxies: the nearest address that is not an allowed proxy is the client.
    assert peer("127.0.0.2", {"X-Forwarded-For": "198.51.100.1, 127.0.0.10"})["client"] == "198.51.100.1"
    # A client cannot pass itself off as an allowed proxy by adding one to the header.
    assert peer("127.0.0.3", {"X-Forwarded-For": "127.0.0.2"})["client"] == "127.0.0.3"
    # Where the access line carries the client address, it is the one the app saw.
    access = [r for r in log_records(server.log) if r.get("logger") == "app.access" and "client" in r]
    assert all(
        str(r["client"]).split(":")[0] in {"203.0.113.7", "127.0.0.3", "127.0.0.1", "198.51.100.1"} for r in access
    ), access


@needs_make
@pytest.mark.parametrize(
    ("setting", "value", "expected"),
    [
        ("WEB_CONCURRENCY", "0", "WEB_CONCURRENCY: Input should be greater than or equal to 1"),
        ("FORWARDED_ALLOW_IPS", "10.0.0.1/8", "FORWARDED_ALLOW_IPS: '10.0.0.1/8' not an IP address or network"),
        ("SHUTDOWN_TIMEOUT", "soon", "SHUTDOWN_TIMEOUT: Input should be a valid integer"),
    ],
)
def test_a_bad_setting_stops_make_serve_with_one_clear_message(
    service_dir: Path, service_env: dict[str, str], setting: str, value: str, expected: str
) -> None:
    # Should it start after all: on a free loopback port.
    env = {**service_env, "PORT": str(free_port()), "BIND_ADDRESS": "127.0.0.1", setting: value}
    result = completed(["make", "serve"], service_dir, 60, env)
    output = result.stdout + result.stderr
    assert result.returncode != 0
    assert expected in output, output
    assert "Traceback" not in output, output
