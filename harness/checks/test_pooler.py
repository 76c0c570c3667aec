"""The service behind PgBouncer in transaction mode: safe with DATABASE_POOLER=transaction, broken without.

Run with the rendered, installed service's Python, the service named by SERVICE_DIR:

    SERVICE_DIR=/path/to/service /path/to/service/backend/.venv/bin/python -m pytest harness/checks/test_pooler.py

A real PgBouncer (Debian's package: installed with apt-get where it is missing and this
runs as root, else the check is skipped and says why) pools the real PostgreSQL of the
service's ``devtools.servers`` in transaction mode, with fewer server connections than the
service has clients. The production server (`python -m app`, two workers) answers
concurrent readiness requests, each of which queries PostgreSQL through PgBouncer.
"""

import http.client
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress
from pathlib import Path
from typing import Any

import pytest

READINESS = "/api/v1/health/ready"
REQUESTS, CONCURRENCY = 200, 20
# What asyncpg's cached, sequentially named prepared statements run into behind the pooler.
STATEMENT_ERROR = 'prepared statement "__asyncpg_'


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


def find_pgbouncer() -> str | None:
    return shutil.which("pgbouncer") or next((p for p in ("/usr/sbin/pgbouncer",) if os.access(p, os.X_OK)), None)


@pytest.fixture(scope="module")
def pgbouncer_binary() -> str:
    """Debian's pgbouncer, installed here if it is missing and this can (root, apt-get); else a skip."""
    if found := find_pgbouncer():
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        pytest.skip("pgbouncer is not installed, and installing it needs root and apt-get (Debian's package)")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install, update = ["apt-get", "install", "-y", "-q", "pgbouncer"], ["apt-get", "update", "-q"]
    output = ""
    for commands in ([install], [update, install]):  # the package lists may be stale or missing
        for command in commands:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=600, check=False)
            output = done.stdout + done.stderr
        if found := find_pgbouncer():
            print(f"pgbouncer installed with apt-get: {found}")
            return found
    pytest.skip(f"pgbouncer could not be installed with apt-get: {output.strip()[-500:]}")


@pytest.fixture(scope="module")
def postgres(service: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """Real PostgreSQL (and Redis, which readiness also needs), from the service's own dev tooling."""
    sys.path.insert(0, str(service / "backend"))
    from devtools.servers import running_servers

    with running_servers(tmp_path_factory.mktemp("servers")) as servers:
        yield servers


def free_port() -> int:
    from devtools.servers import free_port as servers_free_port  # on sys.path once `postgres` ran

    return servers_free_port()


@pytest.fixture(scope="module")
def pgbouncer(pgbouncer_binary: str, postgres: Any, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """PgBouncer in transaction mode in front of PostgreSQL: its URL. Three server connections for all clients."""
    pg = postgres[0]
    base = tmp_path_factory.mktemp("pgbouncer")
    port = free_port()
    (base / "users.txt").write_text('"postgres" ""\n')
    (base / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"postgres = host=127.0.0.1 port={pg.port} dbname=postgres user=postgres\n"
        "[pgbouncer]\n"
        f"listen_addr = 127.0.0.1\nlisten_port = {port}\nunix_socket_dir =\n"
        f"auth_type = trust\nauth_file = {base / 'users.txt'}\n"
        "pool_mode = transaction\ndefault_pool_size = 3\nmax_client_conn = 500\n"
    )
    command = [pgbouncer_binary, str(base / "pgbouncer.ini")]
    if os.geteuid() == 0:  # pgbouncer refuses to run as root
        command[1:1] = ["-u", "nobody"]
        for path in (base, *base.parents):
            os.chmod(path, os.stat(path).st_mode | 0o005)
    log = base / "pgbouncer.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + 20
        while not _accepts(port):
            assert proc.poll() is None, f"pgbouncer exited with {proc.returncode}:\n{log.read_text()}"
            assert time.monotonic() < deadline, f"pgbouncer not listening after 20 s:\n{log.read_text()}"
            time.sleep(0.05)
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _accepts(port: int) -> bool:
    import socket

    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


def get(port: int, path: str) -> int:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        return response.status
    finally:
        connection.close()


@pytest.fixture
def serve_behind_pgbouncer(
    service: Path, postgres: Any, pgbouncer: str, tmp_path: Path
) -> Iterator[Callable[[str], tuple[Counter[int | str], str]]]:
    """Serves the app with DATABASE_URL at PgBouncer and DATABASE_POOLER=MODE, sends the load.

    Returns the answers counted by status (or error) and what PostgreSQL logged meanwhile.
    """
    backend = service / "backend"
    procs: list[subprocess.Popen[bytes]] = []

    def run(mode: str) -> tuple[Counter[int | str], str]:
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "WEB_CONCURRENCY", "PORT")}
        for line in (backend / ".env.example").read_text().splitlines():
            if line and not line.startswith("#"):
                name, _, value = line.partition("=")
                env[name] = value
        port = free_port()
        env.update(
            DATABASE_URL=pgbouncer,
            DATABASE_POOLER=mode,
            REDIS_URL=postgres[1].url,
            BIND_ADDRESS="127.0.0.1",
            PORT=str(port),
            WEB_CONCURRENCY="2",
        )
        log = tmp_path / f"serve-{mode}.log"
        postgres_log = Path(postgres[0].log_path)
        logged_before = postgres_log.stat().st_size
        with log.open("wb") as out:
            proc = subprocess.Popen(
                [str(backend / ".venv" / "bin" / "python"), "-m", "app"],
                cwd=backend,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        procs.append(proc)
        deadline = time.monotonic() + 60
        while True:
            assert proc.poll() is None, f"python -m app exited with {proc.returncode}:\n{log.read_text()}"
            with suppress(OSError):
                get(port, "/api/v1/health")
                break
            assert time.monotonic() < deadline, f"python -m app did not answer within 60 s:\n{log.read_text()}"
            time.sleep(0.1)

        def one(_: int) -> int | str:
            try:
                return get(port, READINESS)
            except OSError as error:
                return type(error).__name__

        with ThreadPoolExecutor(CONCURRENCY) as pool:
            answers = Counter(pool.map(one, range(REQUESTS)))
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(30)
        for line in log.read_text().splitlines():
            json.loads(line)  # the production server writes JSON only, here too
        with postgres_log.open("rb") as logged:
            logged.seek(logged_before)
            return answers, logged.read().decode(errors="replace")

    yield run
    for proc in procs:
        with suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_transaction_pooler_setting_serves_every_request(
    serve_behind_pgbouncer: Callable[[str], tuple[Counter[int | str], str]],
) -> None:
    answers, postgres_log = serve_behind_pgbouncer("transaction")
    print(f"DATABASE_POOLER=transaction behind PgBouncer: {dict(answers)} of {REQUESTS} readiness answers")
    assert answers == {200: REQUESTS}, answers
    assert STATEMENT_ERROR not in postgres_log


def test_without_the_setting_requests_fail_behind_the_pooler(
    serve_behind_pgbouncer: Callable[[str], tuple[Counter[int | str], str]],
) -> None:
    # What the setting prevents: if this passes with no failure, the test above proves nothing.
    answers, postgres_log = serve_behind_pgbouncer("none")
    print(f"DATABASE_POOLER=none behind PgBouncer: {dict(answers)} of {REQUESTS} readiness answers")
    assert answers[503] > 0, answers
    assert STATEMENT_ERROR in postgres_log, postgres_log[-2000:]
