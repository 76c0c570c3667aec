"""Fixtures of the checks that run a rendered, installed service as processes.

The checks run with the service's own Python (pytest is in its dev group), so that they
can start, stop and kill real PostgreSQL and Redis with the service's ``devtools.servers``:

    SERVICE_DIR=/path/to/service /path/to/service/backend/.venv/bin/python -m pytest \\
        -c harness/checks/pytest.ini harness/checks/test_boot.py --title "Live Interactive Agent API"

``SERVICE_DIR`` (environment, required) is the service; everything else is an option
(``--title``, ``--api-port``, ``--origin``, ``--readiness-timeout``, ``--soak-seconds``,
``--fuzz-examples``, ``--fuzz-seconds``, ``--schemathesis``, ``--copier``; see
``pytest --help``), set by the nox sessions. Figures (measurements reported, not
asserted) are printed in a "figures" section at the end, and what a check did instead
or could not do here (a tool missing, a stand-in made) in a "notes" section; when a
check fails, the last lines of every service process in use are shown under it.
"""

import os
import signal
import sys
import tempfile
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import Launcher, Servers, Service, Stopped, env_from_example, tail

FIGURES = pytest.StashKey[list[str]]()
NOTES = pytest.StashKey[list[str]]()  # what a check did instead, or could not do, here
LOGS = pytest.StashKey[dict[Path, str]]()  # log -> label, of the processes in use
SERVERS = pytest.StashKey[list[Any]]()  # PostgreSQL and Redis, once started


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("service checks")
    group.addoption("--title", help="the API title the boot checks expect (OpenAPI, /docs, /redoc)")
    group.addoption("--api-port", type=int, help="the port `make dev` serves on (the api_port answer)")
    group.addoption("--origin", help="an origin the service allows (one of the cors_origins answer)")
    group.addoption("--readiness-timeout", type=float, default=1.0, help="READINESS_TIMEOUT given to the service")
    group.addoption("--soak-seconds", type=float, default=60, help="how long the soak loads the service")
    group.addoption("--fuzz-examples", type=int, default=500, help="schemathesis examples per operation")
    group.addoption("--fuzz-seconds", type=int, default=20, help="schemathesis --max-time")
    group.addoption("--schemathesis", type=Path, help="the schemathesis executable (4.x), for the fuzz check")
    group.addoption("--copier", type=Path, help="the copier executable, for the unusual-names checks")


def pytest_configure(config: pytest.Config) -> None:
    config.stash[FIGURES], config.stash[NOTES], config.stash[LOGS], config.stash[SERVERS] = [], [], {}, []
    if config.option.help or config.option.version:
        return
    service = os.environ.get("SERVICE_DIR", "")
    if not service or not (Path(service) / "backend" / ".venv").is_dir():
        raise pytest.UsageError(f"SERVICE_DIR must name a rendered, installed service, not {service!r}")
    # The service's own modules: devtools.servers, and app for its settings.
    sys.path.insert(0, str(Path(service).resolve() / "backend"))


def pytest_terminal_summary(terminalreporter: Any, config: pytest.Config) -> None:
    for title, key in (("figures", FIGURES), ("notes", NOTES)):
        if lines := config.stash.get(key, []):
            terminalreporter.section(title)
            for line in lines:
                terminalreporter.line(line)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item) -> Generator[None, pytest.TestReport, pytest.TestReport]:
    report = yield
    if report.failed:
        for log, label in item.config.stash[LOGS].items():
            report.sections.append((f"{label}: last lines of {log}", tail(log)))
    return report


def required(config: pytest.Config, name: str) -> Any:
    value = config.getoption(name)
    if value is None:
        pytest.fail(f"this check needs --{name.replace('_', '-')}", pytrace=False)
    return value


@pytest.fixture(scope="session")
def title(pytestconfig: pytest.Config) -> str:
    return str(required(pytestconfig, "title"))


@pytest.fixture(scope="session")
def api_port(pytestconfig: pytest.Config) -> int:
    return int(required(pytestconfig, "api_port"))


@pytest.fixture(scope="session")
def origin(pytestconfig: pytest.Config) -> str:
    return str(required(pytestconfig, "origin"))


@pytest.fixture(scope="session")
def readiness_timeout(pytestconfig: pytest.Config) -> float:
    return float(pytestconfig.getoption("readiness_timeout"))


@pytest.fixture(scope="session")
def schemathesis(pytestconfig: pytest.Config) -> Path:
    return Path(required(pytestconfig, "schemathesis"))


@pytest.fixture(scope="session")
def copier(pytestconfig: pytest.Config) -> Path:
    return Path(required(pytestconfig, "copier"))


@pytest.fixture(scope="session")
def service_dir() -> Path:
    return Path(os.environ["SERVICE_DIR"]).resolve()


@pytest.fixture(scope="session")
def backend(service_dir: Path) -> Path:
    return service_dir / "backend"


@pytest.fixture(scope="session")
def figure(pytestconfig: pytest.Config) -> Callable[[str], None]:
    """Records a figure (a measurement, not a check) for the summary at the end."""
    return pytestconfig.stash[FIGURES].append


@pytest.fixture(scope="session")
def note(pytestconfig: pytest.Config) -> Callable[[str], None]:
    """Records what a check did instead, or could not do here (a tool missing, a stand-in made),
    for a "notes" section at the end."""
    return pytestconfig.stash[NOTES].append


@pytest.fixture
def say(note: Callable[[str], None], capsys: pytest.CaptureFixture[str]) -> Callable[[str], None]:
    """Prints a line as the check goes (output captured or not), and keeps it as a note."""

    def say(line: str) -> None:
        note(line)
        with capsys.disabled():
            print(f"\n  --  {line}", flush=True)

    return say


@pytest.fixture(scope="session")
def watched_logs(pytestconfig: pytest.Config) -> dict[Path, str]:
    """Logs (and their labels) whose last lines are shown under a check that fails."""
    return pytestconfig.stash[LOGS]


@pytest.fixture(scope="session")
def servers(pytestconfig: pytest.Config) -> Iterator[Servers]:
    """Real PostgreSQL and Redis on free loopback ports, from the service's devtools."""
    from devtools.servers import running_servers

    with running_servers() as (postgres, redis):
        pytestconfig.stash[SERVERS] = [postgres, redis]
        yield Servers(postgres, redis)
        pytestconfig.stash[SERVERS] = []


@pytest.fixture(autouse=True)
def _servers_up(pytestconfig: pytest.Config) -> None:
    # A check that failed with PostgreSQL or Redis stopped must not fail the next ones.
    for server in pytestconfig.stash[SERVERS]:
        server.start()  # does nothing when it runs


@pytest.fixture(scope="module")
def database_url() -> Iterator[str]:
    """A throwaway PostgreSQL of a module's own, from the service's dev tooling, as `make dev` starts it."""
    from devtools.servers import PostgresServer

    with tempfile.TemporaryDirectory(prefix="service-check-") as base:
        server = PostgresServer(Path(base))
        server.start()
        try:
            yield server.url
        finally:
            server.stop()


@pytest.fixture(scope="session")
def service_env(backend: Path, servers: Servers, readiness_timeout: float) -> dict[str, str]:
    """What the service is started with: .env.example's values, the servers' URLs, READINESS_TIMEOUT."""
    env = env_from_example(backend)
    env.update(DATABASE_URL=servers.postgres.url, REDIS_URL=servers.redis.url)
    env["READINESS_TIMEOUT"] = str(readiness_timeout)
    return env


@pytest.fixture(scope="module")
def module_launcher(
    backend: Path, service_env: dict[str, str], tmp_path_factory: pytest.TempPathFactory, watched_logs: dict[Path, str]
) -> Iterator[Launcher]:
    """Starts services that a module's checks share."""
    launcher = Launcher(backend, service_env, tmp_path_factory.mktemp("logs"), watched_logs)
    yield launcher
    launcher.close()


@pytest.fixture
def launch(
    backend: Path, service_env: dict[str, str], tmp_path: Path, watched_logs: dict[Path, str]
) -> Iterator[Launcher]:
    """Starts services for one check: launch(name, app=..., **environment overrides), or
    launch.production(name, ...) for the production server."""
    launcher = Launcher(backend, service_env, tmp_path, watched_logs)
    yield launcher
    launcher.close()


@pytest.fixture(scope="module")
def service(module_launcher: Launcher, figure: Callable[[str], None], request: pytest.FixtureRequest) -> Service:
    """The service as `make api` serves it (no reload) on the servers, shared by a module's checks."""
    started = module_launcher("service")
    figure(f"{request.module.__name__}: process start to first 200: {started.start_seconds:.2f} s")
    return started


@pytest.fixture(scope="module")
def service_stopped(service: Service) -> Stopped:
    """The module's service after SIGTERM: only a module's last checks may ask for it."""
    code, seconds = service.terminate(grace=20)
    if code is None:
        os.killpg(service.proc.pid, signal.SIGKILL)
        service.proc.wait()
    return Stopped(code, seconds)
