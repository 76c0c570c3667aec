"""`make dev`, as the service's README says: throwaway PostgreSQL and Redis and the API on the
configured port; Ctrl-C stops all three.

The last checks press Ctrl-C (``interrupted``): keep them last.
"""

import os
import signal
import socket
import subprocess
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import HEALTH, READINESS, READY, clean_env, proc_stat, process, request, wait_for


@dataclass
class MakeDev:
    proc: subprocess.Popen[bytes]
    port: int


@pytest.fixture(scope="module")
def make_dev(
    service_dir: Path,
    api_port: int,
    tmp_path_factory: pytest.TempPathFactory,
    watched_logs: dict[Path, str],
    figure: Callable[[str], None],
) -> Iterator[MakeDev]:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", api_port))
        except OSError:
            pytest.fail(f"port {api_port} is already in use: `make dev` needs it", pytrace=False)
    log = tmp_path_factory.mktemp("logs") / "make-dev.log"
    watched_logs[log] = "make dev"
    try:
        with process(["make", "dev"], service_dir, clean_env(), log) as proc:
            serving = f"make dev serves {HEALTH} on port {api_port}"
            took = wait_for(serving, lambda: request(api_port, HEALTH).status == 200, 90, lambda: proc.poll() is None)
            figure(f"dev: make dev to first 200: {took:.2f} s")
            yield MakeDev(proc, api_port)
    finally:
        watched_logs.pop(log)


def test_readiness(make_dev: MakeDev) -> None:
    response = request(make_dev.port, READINESS)
    assert (response.status, response.json()) == (200, READY), response


def test_cors_preflight_allowed(make_dev: MakeDev, origin: str) -> None:
    headers = {"Origin": origin, "Access-Control-Request-Method": "GET"}
    response = request(make_dev.port, HEALTH, "OPTIONS", headers)
    assert response.status == 200 and response.headers.get("access-control-allow-origin") == origin, response


@pytest.fixture(scope="module")
def interrupted(make_dev: MakeDev) -> int | None:
    """Ctrl-C to `make dev` (SIGINT to its process group): make's exit status, None if it did not stop in 30 s."""
    os.killpg(make_dev.proc.pid, signal.SIGINT)
    try:
        return make_dev.proc.wait(timeout=30)
    except subprocess.TimeoutExpired:
        return None


def ancestor_pids() -> set[int]:
    """This process and every process above it."""
    pids, pid = set(), os.getpid()
    while pid > 1:
        pids.add(pid)
        fields = proc_stat(pid)
        assert fields is not None, f"process {pid} ended while its children run"
        pid = int(fields[1])
    return pids


def test_ctrl_c_stops_make(interrupted: int | None) -> None:
    assert interrupted is not None, "Ctrl-C: make dev did not stop within 30 s"


def test_ctrl_c_stops_api_and_servers(
    interrupted: int | None, service_dir: Path, figure: Callable[[str], None]
) -> None:
    # These checks run on the service's Python, so this process's command line matches too,
    # and so may the command lines of what started it (a wrapper such as flock or env).
    ancestors = ancestor_pids()

    # make returns at once on Ctrl-C; what it started finishes shutting down after it.
    def nothing_left() -> bool:
        left = subprocess.run(["pgrep", "-f", str(service_dir / "backend")], capture_output=True, text=True)
        return not [pid for pid in left.stdout.split() if int(pid) not in ancestors]

    took = wait_for("Ctrl-C: uvicorn, PostgreSQL and Redis all stopped", nothing_left, 20)
    figure(f"dev: uvicorn, PostgreSQL and Redis all stopped {took:.2f} s after make returned")
