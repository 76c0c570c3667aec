"""Sessions that render the template, install and boot the generated service, and test it.

    nox                      # the default sessions: lint, tests, generated, boot
    nox -s demo -- my-demo   # render a demo service with the default answers and serve it on port 8000

Every session renders this working tree (uncommitted changes included) into scratch
space and drives the service through its own commands, as a user would.
"""

import importlib.util
import shutil
import statistics
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


def _load(path: Path) -> Any:
    """A module of this repository by path: nox runs without the tests' dependencies installed."""
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# The uv case changes every other answer too; python_version stays 3.11, the only
# Python on the machines this runs on (test_render.py lints the other versions).
ANSWERS: dict[str, dict[str, Any]] = {
    "poetry": {},
    "uv": {**_load(ROOT / "tests" / "answers.py").NON_DEFAULT_ANSWERS, "python_version": "3.11"},
}


def render(session: nox.Session, destination: Path, answers: dict[str, Any]) -> Path:
    """`copier copy` of this working tree, non-interactive."""
    data = [f"--data={key}={value}" for key, value in answers.items()]
    session.run("copier", "copy", "--defaults", "--quiet", "--vcs-ref=HEAD", *data, str(ROOT), str(destination))
    return destination


def scratch(session: nox.Session, name: str) -> Path:
    """An empty folder in the session's temporary space (left from a previous run: emptied)."""
    path = Path(session.create_tmp()).resolve() / name
    if path.exists():
        shutil.rmtree(path)
    return path


def pypi_json_api_available() -> bool:
    try:
        with urllib.request.urlopen("https://pypi.org/pypi/pip/24.0/json", timeout=20) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def install(session: nox.Session, service: Path, *, compiles_bytecode: bool = True) -> Path:
    """`make install`, as the rendered README says; returns the service's Python.

    Releases before 0.4.0 did not compile bytecode at install: pass COMPILES_BYTECODE=False.
    """
    backend = service / "backend"
    if (backend / "poetry.toml").exists() and not pypi_json_api_available():
        # Not part of the user's flow: poetry resolves through PyPI's JSON API, which
        # some mirrors (this project's CI among them) lack; use the simple index there.
        session.log("PyPI's JSON API is not reachable: poetry gets the simple index as its source")
        with session.chdir(backend):
            session.run("poetry", "source", "add", "--priority=primary", "pypi-simple", "https://pypi.org/simple/")
    with session.chdir(service):
        make(session, "install")
    # Nothing has imported FastAPI yet, so its bytecode is there only if the install
    # compiled it (the service's start-up figure in BENCHMARKS.md depends on it).
    compiled = (backend / ".venv").glob("lib/python3*/site-packages/fastapi/__pycache__/applications.*.pyc")
    if compiles_bytecode and not any(compiled):
        session.error("make install did not compile the dependencies' bytecode")
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


# Names a user may well type (and a description too long for one line of code): each
# render must pass the service's own ruff and build its app with the title "<name> API".
UNUSUAL_ANSWERS: list[dict[str, str]] = [
    {"project_name": "Café Ünïcode"},
    {"project_name": "Spaced   Out  Service"},
    {"project_name": "3D Render Farm"},
    {
        "project_name": " ".join(["Very Long Project Name"] * 4),
        "description": 'Serves "rooms" and agents to C:\\clients, it\'s said. ' * 4,
    },
]
# Run in a render's backend/: builds its app and compares the title and description with argv.
NAME_PROBE = """
import sys
from app.core.config import Settings
from app.main import create_app
info = create_app(Settings(_env_file=".env.example")).openapi()["info"]
if [info["title"], info["description"]] != sys.argv[1:]:
    sys.exit(f"expected title and description {sys.argv[1:]!r}, got {[info['title'], info['description']]!r}")
"""


@nox.session
def faults(session: nox.Session) -> None:
    """Outages, hangs, SIGTERM under load, a soak, fuzzing, hostile requests and settings; unusual names."""
    session.install("copier", "poetry", "schemathesis>=4,<5")  # faults.py uses the options of its 4.x CLI
    service = render(session, scratch(session, "faults"), {})
    python = install(session, service)
    started = time.monotonic()
    for index, answers in enumerate(UNUSUAL_ANSWERS):
        # Installing each render would be slow: the default render's tools and packages stand in.
        backend = render(session, scratch(session, f"name-{index}"), answers) / "backend"
        name = answers["project_name"]
        description = answers.get("description", f"Platform API of {name}.")
        with session.chdir(backend):
            session.run(str(python.parent / "ruff"), "check", "--quiet", ".", external=True)
            session.run(str(python.parent / "ruff"), "format", "--check", "--quiet", ".", external=True)
            session.run(str(python), "-c", NAME_PROBE, f"{name} API", description, external=True, env=SERVICE_ENV)
        session.log(f"project_name {name!r}: rendered, ruff clean, app titled {name + ' API'!r}")
    timed(session, "unusual names", started)
    schemathesis = Path(session.bin) / "schemathesis"
    faults_script = ROOT / "harness" / "faults.py"
    # -u: a line as each check passes, not a block at the end of the soak.
    command = [str(python), "-u", str(faults_script), str(service), f"--schemathesis={schemathesis}", *session.posargs]
    session.run(*command, external=True, env=SERVICE_ENV)


def release_versions() -> list[str]:
    """Versions in CHANGELOG.md, newest first: the current release, then the previous ones."""
    lines = (ROOT / "CHANGELOG.md").read_text().splitlines()
    return [line.split()[1] for line in lines if line.startswith("## ")]


def copy_tree(session: nox.Session, source: Path, destination: Path) -> None:
    """The files git sees in SOURCE (tracked and untracked, not ignored), copied to DESTINATION."""
    with session.chdir(source):
        listing = session.run(
            "git", "ls-files", "--cached", "--others", "--exclude-standard", "-z", external=True, silent=True
        )
    assert isinstance(listing, str)
    for name in filter(None, listing.split("\0")):
        if (source / name).is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source / name, destination / name)


# Where a clone has no tags (some CI checkouts fetch none): the commit the first
# release's tag points at (the update session starts there), if the history holds it.
RELEASE_COMMITS = {"0.1.0": "969cda627247098ccf5df2c8ce73b34f78285bc4"}


def undo_moves(template: Path, version: str) -> None:
    """Makes a copy of this tree look like the release before VERSION: moved files go back."""
    migration = _load(ROOT / "migrations" / "remove_moved_files.py")
    for old, new, _ in migration.MOVED.get(version, []):
        old_path, new_path = template / "template" / old, template / "template" / new
        old_path.parent.mkdir(parents=True, exist_ok=True)
        new_path.rename(old_path)
        old_module, new_module = (p.removeprefix("backend/").removesuffix(".py").replace("/", ".") for p in (old, new))
        for source in (template / "template").rglob("*.py*"):
            text = source.read_text()
            if new_module in text:
                source.write_text(text.replace(new_module, old_module))


def git(session: nox.Session, *args: str) -> None:
    session.run("git", *args, external=True, silent=True)


def commit_all(session: nox.Session, message: str) -> None:
    git(session, "add", "-A")
    git(session, "commit", "-q", "--no-verify", "-m", message)


USER_ROUTER = '''"""Items: added by the team after the service was generated."""

from fastapi import APIRouter

router = APIRouter(prefix="/items", tags=["items"])


@router.get("")
async def list_items() -> list[str]:
    return ["first"]
'''
USER_README = "This is our team's backend: read docs/onboarding.md first."


def make_team_edits(session: nox.Session, service: Path, package_manager: str) -> None:
    """What a team starting the next epic changes: a router, a setting, a dependency, the README."""
    backend = service / "backend"
    (backend / "app" / "api" / "v1" / "items.py").write_text(USER_ROUTER)
    router = backend / "app" / "api" / "v1" / "router.py"
    text = router.read_text().replace("from app.api.v1 import health\n", "from app.api.v1 import health, items\n")
    router.write_text(text + "api_router.include_router(items.router)\n")
    config = backend / "app" / "core" / "config.py"
    marker = "    READINESS_TIMEOUT: float = Field(default=2.0, gt=0, le=30)\n"
    config.write_text(
        config.read_text().replace(marker, marker + "    ITEMS_PAGE_SIZE: int = Field(default=50, ge=1)\n")
    )
    env_example = backend / ".env.example"
    env_example.write_text(env_example.read_text() + "# Items per page of GET /api/v1/items.\n# ITEMS_PAGE_SIZE=50\n")
    readme = backend / "README.md"
    paragraphs = readme.read_text().split("\n\n")
    paragraphs[1] = USER_README
    readme.write_text("\n\n".join(paragraphs))
    with session.chdir(backend):
        session.run(package_manager, "add", "tenacity>=9.0", external=True, env=SERVICE_ENV)


@nox.session
@nox.parametrize("package_manager", list(ANSWERS), ids=list(ANSWERS))
def update(session: nox.Session, package_manager: str) -> None:
    """`copier update` from the first release of a service a team has changed, for PACKAGE_MANAGER."""
    session.install("copier", package_manager)
    for name, value in (("NAME", "Update Check"), ("EMAIL", "update-check@example.com")):
        for role in ("AUTHOR", "COMMITTER"):
            session.env.setdefault(f"GIT_{role}_{name}", value)
    # From the first release, so that every migration since runs.
    versions = release_versions()
    current, previous = versions[0], versions[-1]
    template = scratch(session, f"template-{package_manager}")
    template.mkdir(parents=True)
    tags = session.run("git", "tag", "--list", previous, external=True, silent=True)
    release = previous if isinstance(tags, str) and tags.strip() == previous else RELEASE_COMMITS.get(previous, "")
    if release and release != previous:
        found = session.run("git", "cat-file", "-t", release, external=True, silent=True, success_codes=[0, 128])
        release = release if isinstance(found, str) and found.strip() == "commit" else ""
    if release:
        session.log(f"Release {previous}: {'its tag' if release == previous else 'its commit ' + release[:12]}")
        archive = Path(session.create_tmp()) / "previous.tar"
        git(session, "archive", "--format=tar", f"--output={archive}", release)
        shutil.unpack_archive(archive, template)
    else:
        session.log(f"No tag or commit of {previous} here: this tree with the later releases' moves undone stands in")
        copy_tree(session, ROOT, template)
        for version in versions[:-1]:
            undo_moves(template, version)
    with session.chdir(template):
        git(session, "init", "-q")
        commit_all(session, f"template {previous}")
        git(session, "tag", previous)

    # A team generates its service from the release, installs it and commits.
    service = scratch(session, f"service-{package_manager}")
    data = [f"--data={key}={value}" for key, value in ANSWERS[package_manager].items()]
    session.run("copier", "copy", "--defaults", "--quiet", *data, str(template), str(service))
    answers = (service / ".copier-answers.yml").read_text()
    if f"_commit: {previous}\n" not in answers:
        session.error(f"copier copy from tag {previous} recorded another _commit:\n{answers}")
    install(session, service, compiles_bytecode=False)  # the first release
    with session.chdir(service):
        git(session, "init", "-q")
        commit_all(session, f"generated from template {previous}")
    make_team_edits(session, service, package_manager)
    with session.chdir(service):
        commit_all(session, "team changes")

    # The template moves on to this tree; the team updates.
    for child in template.iterdir():
        if child.name != ".git":
            shutil.rmtree(child) if child.is_dir() else child.unlink()
    copy_tree(session, ROOT, template)
    with session.chdir(template):
        commit_all(session, f"template {current}")
        git(session, "tag", current)
    with session.chdir(service):
        # --trust: updating across 0.2.0 runs its migration (see CHANGELOG.md). Copier's
        # default conflict mode (inline): a hunk whose context moved is 3-way merged, as
        # router.py's must be from 0.4.0 on; an unresolved one leaves markers (failed below).
        session.run("copier", "update", "--defaults", "--trust", external=False)
    check_update(session, service, current)
    with session.chdir(service):
        make(session, "install")
        make(session, "lint")
        make(session, "test")


def check_update(session: nox.Session, service: Path, current: str) -> None:
    files = [p for p in service.rglob("*") if p.is_file() and ".venv" not in p.parts and ".git" not in p.parts]
    problems = [f"{p.relative_to(service)}: rejected hunks" for p in files if p.suffix == ".rej"]
    problems += [
        f"{p.relative_to(service)}: conflict markers"
        for p in files
        if p.suffix in {".py", ".md", ".toml", ".yml", ".example", ""} and "<<<<<<< " in p.read_text(errors="ignore")
    ]
    backend = service / "backend"
    expectations = {
        "the team's router module is kept": (backend / "app/api/v1/items.py").read_text() == USER_ROUTER,
        "the team's router stays registered": "include_router(items.router)"
        in (backend / "app/api/v1/router.py").read_text(),
        "the team's setting is kept": "ITEMS_PAGE_SIZE" in (backend / "app/core/config.py").read_text(),
        "the team's setting stays documented": "ITEMS_PAGE_SIZE" in (backend / ".env.example").read_text(),
        "the team's dependency is kept": "tenacity" in (backend / "pyproject.toml").read_text(),
        "the team's README paragraph is kept": USER_README in (backend / "README.md").read_text(),
        "the moved module arrived": (backend / "app/core/openapi.py").is_file(),
        "the migration removed the module's old copy": not (backend / "app/exceptions/openapi.py").exists(),
        "main.py uses the module's new place": "from app.core.openapi import" in (backend / "app/main.py").read_text(),
        f"the answers file records {current}": f"_commit: {current}\n" in (service / ".copier-answers.yml").read_text(),
    }
    problems += [what for what, ok in expectations.items() if not ok]
    if problems:
        session.error("copier update went wrong:\n  " + "\n  ".join(problems))
    session.log("copier update: no conflicts; every team change kept; every template change arrived")


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Figures, not a test: the skeleton against bare FastAPI with uvicorn's access log, readiness, startup."""
    # Bytecode compiled at install, as pip and pipx do: copier's start-up is then what a
    # user's is, also where Python may not write .pyc files (PYTHONDONTWRITEBYTECODE=1).
    session.install("copier", "poetry", env={"UV_COMPILE_BYTECODE": "1"})
    copier_runs = []
    for _ in range(3):  # the service of the last run is the one measured
        destination = scratch(session, "bench")
        started = time.monotonic()
        render(session, destination, {})
        copier_runs.append(time.monotonic() - started)
    copier_seconds = statistics.median(copier_runs)
    session.log("copier copy --defaults: " + ", ".join(f"{s:.3f}" for s in copier_runs) + " s")
    python = install(session, destination)
    session.run(
        str(python),
        str(ROOT / "harness" / "bench.py"),
        str(destination),
        f"--json={ROOT / 'benchmarks' / 'latest.json'}",
        f"--markdown={ROOT / 'BENCHMARKS.md'}",
        f"--copier-copy-seconds={copier_seconds:.3f}",
        *session.posargs,
        external=True,
        env=SERVICE_ENV,
    )


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


@nox.session(default=False)
def bench_serve(session: nox.Session) -> None:
    """Figures, not a test: `make serve` (1 worker) against uvicorn as `make api` runs it, and 2 workers against 1."""
    session.install("copier", "poetry", "uv")
    service = render(session, scratch(session, "bench-serve"), {})
    python = install(session, service)
    if "--candidates" in session.posargs:
        # The server `make serve` was chosen against, beside it in the service's environment.
        session.run("uv", "pip", "install", "--quiet", "--python", str(python), "granian>=2.4")
    session.run(
        str(python),
        str(ROOT / "harness" / "bench_serve.py"),
        str(service),
        f"--json={ROOT / 'benchmarks' / 'serve.json'}",
        f"--markdown={ROOT / 'BENCHMARKS.md'}",
        *session.posargs,
        external=True,
        env=SERVICE_ENV,
    )
