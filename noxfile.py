"""Sessions that render the template, install and boot the generated service, and test it.

    nox                      # the default sessions: lint, tests, generated, boot
    nox -s demo -- my-demo   # render a demo service with the default answers and serve it on port 8000

Every session renders this working tree (uncommitted changes included) into scratch
space and drives the service through its own commands, as a user would.
"""

import shutil
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import nox

nox.needs_version = ">=2024.3.2"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_external_run = True

ROOT = Path(__file__).resolve().parent
CHECK = ROOT / "harness" / "check_service.py"
DEFAULT_TITLE = "Live Interactive Agent API"
# The uv case changes every other answer too; python_version stays 3.11, the only
# Python on the machines this runs on (test_render.py lints the other versions).
ANSWERS: dict[str, dict[str, Any]] = {
    "poetry": {},
    "uv": {
        "package_manager": "uv",
        "project_name": "Café Ünïcode Agent",
        "project_slug": "cafe-agent",
        "description": 'Says "hi" & <more>',
        "version": "2.0.0rc1",
        "api_port": 8123,
        "cors_origins": "https://app.example.com, http://localhost:5173",
        "include_livekit": False,
    },
}


def render(session: nox.Session, destination: Path, answers: dict[str, Any]) -> Path:
    """`copier copy` of this working tree, non-interactive."""
    data = [f"--data={key}={value}" for key, value in answers.items()]
    session.run("copier", "copy", "--defaults", "--quiet", "--vcs-ref=HEAD", *data, str(ROOT), str(destination))
    return destination


def scratch(session: nox.Session, name: str) -> Path:
    """An empty folder in the session's temporary space (left from a previous run: emptied)."""
    path = Path(session.create_tmp()) / name
    if path.exists():
        shutil.rmtree(path)
    return path


def pypi_json_api_available() -> bool:
    try:
        with urllib.request.urlopen("https://pypi.org/pypi/pip/24.0/json", timeout=20) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def install(session: nox.Session, service: Path) -> Path:
    """`make install`, as the rendered README says; returns the service's Python."""
    backend = service / "backend"
    if (backend / "poetry.toml").exists() and not pypi_json_api_available():
        # Not part of the user's flow: poetry resolves through PyPI's JSON API, which
        # some mirrors (this project's CI among them) lack; use the simple index there.
        session.log("PyPI's JSON API is not reachable: poetry gets the simple index as its source")
        with session.chdir(backend):
            session.run("poetry", "source", "add", "--priority=primary", "pypi-simple", "https://pypi.org/simple/")
    with session.chdir(service):
        make(session, "install")
    return backend / ".venv" / "bin" / "python"


# nox points these at the session's environment; the service installs into its own,
# and configuration comes from the service, not from the shell running nox.
SERVICE_ENV: dict[str, str | None] = dict.fromkeys(
    ("VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "UV_PYTHON", "CONDA_PREFIX", "DATABASE_URL", "REDIS_URL")
)


def make(session: nox.Session, *targets: str) -> None:
    session.run("make", *targets, external=True, env=SERVICE_ENV)


def timed(session: nox.Session, label: str, started: float) -> None:
    session.log(f"{label} took {time.monotonic() - started:.1f} s")


@nox.session
def lint(session: nox.Session) -> None:
    """ruff on the noxfile, the template's tests and the harness."""
    session.install("ruff")
    session.run("ruff", "check", "noxfile.py", "tests", "harness")
    session.run("ruff", "format", "--check", "noxfile.py", "tests", "harness")


@nox.session
def tests(session: nox.Session) -> None:
    """The template's own tests: invalid answers, and a rendering matrix linted and type-checked."""
    session.install("-r", "tests/requirements.txt")
    session.run("pytest", "tests", *session.posargs)


@nox.session
@nox.parametrize("package_manager", list(ANSWERS), ids=list(ANSWERS))
def generated(session: nox.Session, package_manager: str) -> None:
    """Render with PACKAGE_MANAGER, install with it, run the service's lint and tests, then `make dev`."""
    session.install("copier", package_manager)
    answers = ANSWERS[package_manager]
    service = render(session, scratch(session, f"generated-{package_manager}"), answers)
    started = time.monotonic()
    python = install(session, service)
    timed(session, "make install", started)
    with session.chdir(service):
        started = time.monotonic()
        make(session, "lint")
        timed(session, "make lint", started)
        started = time.monotonic()
        make(session, "test")
        timed(session, "make test", started)
    origin = answers.get("cors_origins", "http://localhost:3000").split(",")[0].strip()
    port = str(answers.get("api_port", 8000))
    session.run(
        str(python), str(CHECK), "dev", str(service), "--port", port, "--origin", origin, external=True, env=SERVICE_ENV
    )


@nox.session
def boot(session: nox.Session) -> None:
    """Serve a default render as `make api` does (no reload) on real servers: endpoints, outages, SIGTERM."""
    session.install("copier", "poetry")
    service = render(session, scratch(session, "boot"), {})
    python = install(session, service)
    session.run(str(python), str(CHECK), "boot", str(service), "--title", DEFAULT_TITLE, external=True, env=SERVICE_ENV)


@nox.session(default=False)
def demo(session: nox.Session) -> None:
    """Render a service with the default answers (into ./demo or the folder given after --) and serve it on :8000."""
    destination = Path(session.posargs[0] if session.posargs else "demo").resolve()
    session.install("copier", "poetry")
    if not (destination / ".copier-answers.yml").exists():
        if destination.exists() and any(destination.iterdir()):
            session.error(f"{destination} exists and is not a rendered service; name another folder after --")
        render(session, destination, {})
    install(session, destination)
    session.log("Starting PostgreSQL, Redis and the API; stop all three with Ctrl-C.")
    session.log("  Swagger UI: http://127.0.0.1:8000/docs")
    session.log("  Readiness:  http://127.0.0.1:8000/api/v1/health/ready")
    with session.chdir(destination):
        # Ctrl-C reaches make and everything under it; give them time to shut down cleanly.
        session.run("make", "dev", external=True, env={"VIRTUAL_ENV": None}, interrupt_timeout=30, terminate_timeout=10)
