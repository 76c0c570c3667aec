"""Sessions that render the template, install and boot the generated service, and test it.

    nox                      # the default sessions: lint, tests, generated, boot, deploy, faults, update, lowest_direct
    nox -s demo -- my-demo   # render a demo service with the default answers and serve it on port 8000

Every session renders this working tree (uncommitted changes included) into scratch
space and drives the service through its own commands, as a user would.
"""

import importlib.util
import itertools
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

import nox

nox.needs_version = ">=2024.3.2"
nox.options.default_venv_backend = "uv|virtualenv"
nox.options.error_on_external_run = True

ROOT = Path(__file__).resolve().parent
CHECKS = ROOT / "harness" / "checks"
DEFAULT_TITLE = "Live Interactive Agent API"
# The fuzz checks use the options of schemathesis's 4.x CLI.
SCHEMATHESIS = "schemathesis>=4,<5"


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
updating = _load(ROOT / "harness" / "update.py")
support = _load(ROOT / "harness" / "checks" / "support.py")
locks = _load(ROOT / "harness" / "locks.py")


def render(session: nox.Session, destination: Path, answers: dict[str, Any]) -> Path:
    """`copier copy` of this working tree, non-interactive."""
    data = [f"--data={key}={value}" for key, value in answers.items()]
    session.run("copier", "copy", "--defaults", "--quiet", "--vcs-ref=HEAD", *data, str(ROOT), str(destination))
    return destination


def commit(session: nox.Session, service: Path, message: str) -> None:
    """Everything in SERVICE committed, as a team keeps its service (a git repository made if need be)."""
    with session.chdir(service):
        for command in (["init", "-q"], ["add", "-A"], ["commit", "-q", "--no-verify", "-m", message]):
            session.run("git", *command, external=True, silent=True)


def scratch(session: nox.Session, name: str) -> Path:
    """An empty folder in the session's temporary space (left from a previous run: emptied)."""
    path = Path(session.create_tmp()).resolve() / name
    if path.exists():
        shutil.rmtree(path)
    return path


def install(session: nox.Session, service: Path, *, compiles_bytecode: bool = True) -> Path:
    """`make install`, as the rendered README says; returns the service's Python.

    Releases before 0.4.0 did not compile bytecode at install: pass COMPILES_BYTECODE=False.
    """
    backend = service / "backend"
    # Not part of the user's flow: some mirrors (this project's CI among them) lack the
    # JSON API that poetry resolves through.
    if support.poetry_simple_index(backend, poetry=str(Path(session.bin) / "poetry")):
        session.log("PyPI's JSON API is not reachable: poetry got the simple index as its source (pins kept)")
        if (service / ".git").exists():
            commit(session, service, "Test machine: PyPI's simple index as poetry's source")
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


def run_checks(session: nox.Session, python: Path, service: Path, *checks: str, options: tuple[str, ...] = ()) -> None:
    """The pytest checks in harness/checks/CHECKS (modules or folders), run in one go with the
    service's Python against SERVICE, with OPTIONS.

    `nox -s SESSION -- --collect-only -q` lists them; `-- -k NAME` runs the ones NAME matches.
    """
    # -v names each check as it runs; a listing (-q) then prints bare test IDs.
    verbose = [] if {"--collect-only", "--co"} & set(session.posargs) else ["-v"]
    command = [str(python), "-m", "pytest", "-c", str(CHECKS / "pytest.ini"), *verbose]
    env = {**SERVICE_ENV, "SERVICE_DIR": str(service)}
    paths = [str(CHECKS / check) for check in checks]
    session.run(*command, *paths, *options, *session.posargs, external=True, env=env)


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
    """Render with PACKAGE_MANAGER, install with it, run the service's lint and tests, then the `make dev` checks."""
    answers = ANSWERS[package_manager]
    bearer = answers.get("auth") == "bearer"
    # test_resource.py fuzzes the resources it makes; test_contract.py the shipped document
    session.install("copier", package_manager, SCHEMATHESIS)
    service = render(session, scratch(session, f"generated-{package_manager}"), answers)
    updating.set_git_identity(session)
    commit(session, service, "Generated")  # test_dependencies.py: make install changes no file of it
    started = time.monotonic()
    python = install(session, service)
    timed(session, "make install", started)
    with session.chdir(service):
        for target in ("lint", "test"):
            started = time.monotonic()
            make(session, target)
            timed(session, f"make {target}", started)
    origin = answers.get("cors_origins", "http://localhost:3000").split(",")[0].strip()
    port = answers.get("api_port", 8000)
    options = (f"--api-port={port}", f"--origin={origin}", f"--schemathesis={Path(session.bin) / 'schemathesis'}")
    checks = ["test_dependencies.py", "test_dev.py", "test_migrations.py", "test_resource.py", "test_contract.py"]
    if bearer:  # `make token`, and a protected route served and fuzzed with a token
        checks.append("test_auth.py")
    run_checks(session, python, service, *checks, options=options)


@nox.session
def boot(session: nox.Session) -> None:
    """Serve a default render as `make api` does (no reload) on real servers: endpoints, outages, SIGTERM."""
    session.install("copier", "poetry")
    service = render(session, scratch(session, "boot"), {})
    python = install(session, service)
    run_checks(session, python, service, "test_boot.py", options=(f"--title={DEFAULT_TITLE}",))


@nox.session
@nox.parametrize("package_manager", list(ANSWERS), ids=list(ANSWERS))
def deploy(session: nox.Session, package_manager: str) -> None:
    """Render with PACKAGE_MANAGER; validate its deployment files, check them, `make serve` and PgBouncer against it."""
    steps = _load(ROOT / "harness" / "deploy.py")
    session.install("copier", package_manager, *steps.VALIDATORS)
    service = render(session, scratch(session, f"deploy-{package_manager}"), ANSWERS[package_manager])
    started = time.monotonic()
    steps.validate(session, service)
    timed(session, "validators", started)
    python = install(session, service)
    started = time.monotonic()
    steps.hooks(session, service, SERVICE_ENV)
    timed(session, "pre-commit hooks", started)
    # Probes against the running service, the image where a container engine works;
    # `make serve`, and the service behind PgBouncer.
    run_checks(session, python, service, "test_deploy.py", "test_serve.py", "test_pooler.py")


@nox.session
def faults(session: nox.Session) -> None:
    """Outages, hangs, SIGTERM under load, a soak, fuzzing, hostile requests and settings; unusual names."""
    session.install("copier", "poetry", SCHEMATHESIS)
    service = render(session, scratch(session, "faults"), {})
    python = install(session, service)
    tools = Path(session.bin)
    options = (f"--schemathesis={tools / 'schemathesis'}", f"--copier={tools / 'copier'}")
    run_checks(session, python, service, "faults", options=options)


@nox.session
@nox.parametrize("package_manager", list(ANSWERS), ids=list(ANSWERS))
def update(session: nox.Session, package_manager: str) -> None:
    """`copier update` from the first release of a service a team has changed; then resources, and the next update."""
    session.install("copier", package_manager)
    updating.set_git_identity(session)
    # From the first release, so that every migration since runs.
    template = scratch(session, f"template-{package_manager}")
    first = updating.first_release(session, ROOT, template)
    # A team generates its service from the release, installs it, commits, and changes it.
    service = scratch(session, f"service-{package_manager}")
    data = [f"--data={key}={value}" for key, value in ANSWERS[package_manager].items()]
    session.run("copier", "copy", "--defaults", "--quiet", *data, str(template), str(service))
    updating.check_recorded(session, service, first)
    install(session, service, compiles_bytecode=False)  # the first release
    updating.commit_team_changes(session, service, package_manager, SERVICE_ENV)
    # The template moves on to this tree; the team updates.
    current = updating.release_this_tree(session, ROOT, template)
    # The answers again: those the first release did not ask (auth) take them now, not their defaults.
    updating.copier_update(session, service, ANSWERS[package_manager])
    updating.check_update(session, service, current)
    if ANSWERS[package_manager].get("auth") == "bearer" and not (service / "backend/app/core/security.py").is_file():
        session.error("copier update --data auth=bearer did not bring app/core/security.py")
    with session.chdir(service):
        # The release's new dependencies go into the team's lock, the team's pins kept (CHANGELOG).
        make(session, "lock")
        updating.check_lock_kept(session, service, locks.versions)
        # As the CHANGELOG's update notes say: the contract's snapshot gains the team's routes.
        make(session, "install", "openapi", "lint", "test")
    # The team generates two resources; the next release changes files they depend on; the team updates again.
    updating.generate_resources(session, service, SERVICE_ENV)
    later = updating.release_next(session, template, current)
    updating.copier_update(session, service)
    updating.check_resources_kept(session, service, later)
    with session.chdir(service):
        make(session, "install", "lint", "test")


@nox.session
def lowest_direct(session: nox.Session) -> None:
    """Render with uv, install the lowest versions pyproject.toml allows, run the service's lint and tests."""
    session.install("copier", "uv")
    service = render(session, scratch(session, "lowest-direct"), ANSWERS["uv"])
    # uv reads UV_RESOLUTION in every command: `uv run` in the Makefile's targets keeps
    # the lowest versions instead of resolving the highest again.
    env = {**SERVICE_ENV, "UV_RESOLUTION": "lowest-direct"}
    with session.chdir(service / "backend"):
        session.run("uv", "sync", "--resolution", "lowest-direct", env=env)
        session.run("uv", "tree", "--depth", "1", env=env)  # the versions under test, for the log
    with session.chdir(service):
        # Older FastAPI and pydantic write some schemas differently (pydantic 2.9 adds an enum to
        # a const): the contract is the app's document under these versions, as after `make upgrade`.
        session.run("make", "openapi", "lint", "test", external=True, env=env)


@nox.session(default=False)
def latest(session: nox.Session) -> None:
    """Each package manager: render, `make upgrade` (the newest versions allowed), `make lint` and `make test`."""
    session.install("copier", "uv", "poetry")
    for package_manager in ANSWERS:
        service = render(session, scratch(session, f"latest-{package_manager}"), ANSWERS[package_manager])
        backend = service / "backend"
        lock = backend / locks.MANAGERS[package_manager]
        shipped = locks.versions(lock.read_text())
        install(session, service)
        with session.chdir(service):
            make(session, "upgrade")
        # Named first, so that a failure below can be put down to the packages that moved.
        moved = locks.changes(shipped, locks.versions(lock.read_text()))
        session.log(f"{package_manager}: newer than the shipped lock: " + (", ".join(moved) or "nothing"))
        with session.chdir(service):
            make(session, "lint", "test")


@nox.session(default=False)
def relock(session: nox.Session) -> None:
    """Regenerate the shipped locks (locks/) from pyproject.toml, then run the service's suite on them.

    Every pin is kept where pyproject.toml still allows it; `-- --upgrade` moves every one to
    the newest version allowed; `-- --python=3.12 --manager=uv --auth=bearer` limits the
    locks made (each option repeatable). The renders for the machine's Python then pass lint and tests.
    """
    session.install("copier", "uv", "poetry")
    upgrade = "--upgrade" in session.posargs
    pythons = [o.split("=")[1] for o in session.posargs if o.startswith("--python=")] or locks.PYTHONS
    managers = [o.split("=")[1] for o in session.posargs if o.startswith("--manager=")] or list(locks.MANAGERS)
    auths = [o.split("=")[1] for o in session.posargs if o.startswith("--auth=")] or locks.AUTHS
    for package_manager, python, auth in itertools.product(managers, pythons, auths):
        lock_name = locks.MANAGERS[package_manager]
        target = locks.template_path(ROOT, package_manager, python, auth)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.touch()  # the first time: an empty lock, resolved afresh
        answers = {"package_manager": package_manager, "python_version": python, "auth": auth}
        name = f"relock-{package_manager}-{python}-{auth}"
        backend = render(session, scratch(session, name), answers) / "backend"
        if not (backend / lock_name).read_text():
            (backend / lock_name).unlink()
        with session.chdir(backend):
            if package_manager == "uv":
                # uv locks with an interpreter that the project's requires-python allows.
                options = ["--python", locks.interpreter(python), *(["--upgrade"] if upgrade else [])]
                session.run("uv", "lock", *options, env={**SERVICE_ENV, "UV_PYTHON_DOWNLOADS": "never"})
            else:
                session.run("poetry", *(["update", "--lock"] if upgrade else ["lock"]), env=SERVICE_ENV)
        target.write_text(locks.as_template(package_manager, (backend / lock_name).read_text()))
        session.log(f"{target.relative_to(ROOT)} written")
    for package_manager in managers:
        service = render(session, scratch(session, f"relock-{package_manager}"), {"package_manager": package_manager})
        install(session, service)
        with session.chdir(service):
            make(session, "lint", "test")


@nox.session(default=False)
def bench(session: nox.Session) -> None:
    """Figures, not a test: every figure group of harness/figures/, written to BENCHMARKS.md."""
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
