"""The service behind PgBouncer in transaction mode: safe with DATABASE_POOLER=transaction, broken without.

A real PgBouncer (Debian's package: installed with apt-get where it is missing and this
runs as root with apt-get; else the checks are skipped, and the notes at the end say so)
pools the checks' real PostgreSQL in transaction mode, with fewer server connections than
the service has clients. The production server (`python -m app`, two workers) answers
concurrent readiness requests, each of which queries PostgreSQL through PgBouncer.
"""

import os
import shutil
import socket
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from devtools.servers import free_port
from support import READINESS, Launcher, Servers, clean_env, completed, log_records, process, request, wait_for

REQUESTS, CONCURRENCY = 200, 20
# What asyncpg's cached, sequentially named prepared statements run into behind the pooler.
STATEMENT_ERROR = 'prepared statement "__asyncpg_'
# Where Debian's package puts it (/usr/sbin is not on every user's PATH).
DEBIAN_PGBOUNCER = "/usr/sbin/pgbouncer"


def find_pgbouncer() -> str | None:
    return shutil.which("pgbouncer") or (DEBIAN_PGBOUNCER if os.access(DEBIAN_PGBOUNCER, os.X_OK) else None)


def install_pgbouncer() -> tuple[str | None, str]:
    """Debian's pgbouncer with apt-get (the package lists refreshed if need be): where it is, and apt's output."""
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    install, update = ["apt-get", "install", "-y", "-q", "pgbouncer"], ["apt-get", "update", "-q"]
    output = ""
    for commands in ([install], [update, install]):  # the package lists may be stale or missing
        for command in commands:
            done = completed(command, timeout=600, env=env)
            output = done.stdout + done.stderr
        if found := find_pgbouncer():
            return found, output
    return None, output


@pytest.fixture(scope="module")
def pgbouncer_binary(note: Callable[[str], None]) -> str:
    """pgbouncer: found, or installed here where this can (root and apt-get); else a skip, noted.

    Where it could be installed and was not, the check fails: on a Debian machine run as
    root (CI), a missing pgbouncer must not pass as a skip.
    """
    if found := find_pgbouncer():
        note(f"pooler: PgBouncer found at {found}")
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        reason = "pgbouncer is not installed, and installing it needs root and apt-get (Debian's package)"
        note(f"pooler: SKIPPED, {reason}")
        pytest.skip(reason)
    found, output = install_pgbouncer()
    assert found, f"apt-get could not install pgbouncer:\n{output.strip()[-2000:]}"
    note(f"pooler: PgBouncer installed with apt-get (Debian's package), at {found}")
    return found


def accepts(port: int) -> bool:
    with socket.socket() as sock:
        return sock.connect_ex(("127.0.0.1", port)) == 0


@pytest.fixture(scope="module")
def pgbouncer(
    pgbouncer_binary: str, servers: Servers, tmp_path_factory: pytest.TempPathFactory, watched_logs: dict[Path, str]
) -> Iterator[str]:
    """PgBouncer in transaction mode in front of PostgreSQL: its URL. Three server connections for all clients."""
    base = tmp_path_factory.mktemp("pgbouncer")
    port = free_port()
    (base / "users.txt").write_text('"postgres" ""\n')
    (base / "pgbouncer.ini").write_text(
        "[databases]\n"
        f"postgres = host=127.0.0.1 port={servers.postgres.port} dbname=postgres user=postgres\n"
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
    watched_logs[log] = "pgbouncer"
    try:
        with process(command, base, clean_env(), log) as proc:
            wait_for("pgbouncer listens", lambda: accepts(port), 20, lambda: proc.poll() is None)
            yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        watched_logs.pop(log)


@pytest.fixture
def serve_behind_pgbouncer(
    pgbouncer: str, launch: Launcher, servers: Servers
) -> Callable[[str], tuple[Counter[int | str], str]]:
    """Serves the app with DATABASE_URL at PgBouncer and DATABASE_POOLER=MODE, sends the load.

    Returns the answers counted by status (or error) and what PostgreSQL logged meanwhile.
    """

    def run(mode: str) -> tuple[Counter[int | str], str]:
        postgres_log = Path(servers.postgres.log_path)
        logged_before = postgres_log.stat().st_size
        server = launch.production(f"pooler-{mode}", DATABASE_URL=pgbouncer, DATABASE_POOLER=mode, WEB_CONCURRENCY="2")

        def one(_: int) -> int | str:
            try:
                return request(server.port, READINESS, timeout=30).status
            except OSError as error:
                return type(error).__name__

        with ThreadPoolExecutor(CONCURRENCY) as pool:
            answers = Counter(pool.map(one, range(REQUESTS)))
        code, _ = server.terminate(grace=30)
        assert code is not None, "python -m app still running 30 s after SIGTERM"
        assert log_records(server.log)  # the production server writes JSON only, here too
        with postgres_log.open("rb") as logged:
            logged.seek(logged_before)
            return answers, logged.read().decode(errors="replace")

    return run


def test_transaction_pooler_setting_serves_every_request(
    serve_behind_pgbouncer: Callable[[str], tuple[Counter[int | str], str]], figure: Callable[[str], None]
) -> None:
    answers, postgres_log = serve_behind_pgbouncer("transaction")
    figure(f"pooler: DATABASE_POOLER=transaction behind PgBouncer: {dict(answers)} of {REQUESTS} readiness answers")
    assert answers == {200: REQUESTS}, answers
    assert STATEMENT_ERROR not in postgres_log


def test_without_the_setting_requests_fail_behind_the_pooler(
    serve_behind_pgbouncer: Callable[[str], tuple[Counter[int | str], str]], figure: Callable[[str], None]
) -> None:
    # What the setting prevents: if this passes with no failure, the test above proves nothing.
    answers, postgres_log = serve_behind_pgbouncer("none")
    figure(f"pooler: DATABASE_POOLER=none behind PgBouncer: {dict(answers)} of {REQUESTS} readiness answers")
    assert answers[503] > 0, answers
    assert STATEMENT_ERROR in postgres_log, postgres_log[-2000:]
