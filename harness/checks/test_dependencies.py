"""What `make install` did to a freshly generated service (run by the `generated` sessions,
after `make install`, `make lint` and `make test`): it installed exactly the versions of the
lock the render shipped, changed no file, and a stale lock stops it; a warning fails the suite.

The session commits the service to git before `make install`, so that `git status` shows
what the commands changed since.
"""

import importlib.metadata
import re
import tomllib
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import clean_env, completed, run


def lock_of(backend: Path) -> Path:
    return next(p for p in (backend / "uv.lock", backend / "poetry.lock") if p.exists())


def git_status(service_dir: Path) -> str:
    return run(["git", "status", "--porcelain", "--untracked-files=all"], service_dir, 60)


@pytest.fixture
def restored(service_dir: Path) -> Iterator[None]:
    """The files a check changes come back as they were committed, whatever it did."""
    assert not git_status(service_dir), "the service must be committed before this check"
    yield
    run(["git", "checkout", "--", "."], service_dir, 60)
    run(["git", "clean", "-fdq"], service_dir, 60)


def test_the_render_ships_a_lock_and_make_install_changed_no_file(service_dir: Path, backend: Path) -> None:
    assert lock_of(backend).stat().st_size > 0
    tracked = run(["git", "ls-files", str(lock_of(backend).relative_to(service_dir))], service_dir, 60)
    assert tracked.strip(), "the lock is part of the generated service"
    assert git_status(service_dir) == "", "make install (and lint, test) changed the service's files"


def test_the_installed_versions_are_the_locked_ones(backend: Path) -> None:
    # The checks run with the service's own Python: its distributions are what make install put there.
    packages = tomllib.loads(lock_of(backend).read_text())["package"]
    locked = {re.sub(r"[-_.]+", "-", p["name"]).lower(): p["version"] for p in packages if "virtual" not in p["source"]}
    installed = {
        re.sub(r"[-_.]+", "-", d.metadata["Name"]).lower(): d.version for d in importlib.metadata.distributions()
    }
    # Every installed distribution is in the lock at its version (the venv's own pip aside).
    seeded = {"pip", "setuptools", "wheel"} - locked.keys()
    differing = {n: (v, locked.get(n)) for n, v in installed.items() if locked.get(n) != v and n not in seeded}
    assert not differing, f"installed (version, locked version) differ: {differing}"
    pyproject = tomllib.loads((backend / "pyproject.toml").read_text())
    direct = [re.split(r"[\[<>=!~; ]", d, maxsplit=1)[0] for d in pyproject["project"]["dependencies"]]
    assert not [d for d in direct if re.sub(r"[-_.]+", "-", d).lower() not in installed]


def test_a_stale_lock_stops_make_install_and_says_make_lock(service_dir: Path, backend: Path, restored: None) -> None:
    pyproject = backend / "pyproject.toml"
    lock = lock_of(backend).read_bytes()
    # A dependency added by hand, without `make lock`.
    pyproject.write_text(pyproject.read_text().replace("dependencies = [\n", 'dependencies = [\n    "six>=1.16",\n', 1))
    done = completed(["make", "install"], service_dir, timeout=300, env=clean_env())
    output = done.stdout + done.stderr
    assert done.returncode != 0, f"make install accepted a lock that misses a dependency:\n{output[-3000:]}"
    assert "make lock" in output, output[-3000:]
    assert lock_of(backend).read_bytes() == lock, "make install rewrote the lock"
    assert not any(d.metadata["Name"].lower() == "six" for d in importlib.metadata.distributions())


WARNING_TEST = """import warnings

from fastapi import FastAPI
from fastapi.testclient import TestClient


def test_a_route_that_warns() -> None:
    app = FastAPI()

    @app.get("/old")
    def old() -> dict[str, str]:
        warnings.warn("this route is deprecated", DeprecationWarning, stacklevel=1)
        return {"status": "ok"}

    with TestClient(app) as client:
        assert client.get("/old").status_code == 200
"""


def test_a_warning_fails_the_service_suite_naming_it(service_dir: Path, backend: Path, restored: None) -> None:
    (backend / "tests" / "test_warns.py").write_text(WARNING_TEST)
    done = completed(["make", "test", "ARGS=tests/test_warns.py"], service_dir, timeout=300, env=clean_env())
    output = done.stdout + done.stderr
    assert done.returncode != 0, f"a warning passed the suite:\n{output[-3000:]}"
    assert "DeprecationWarning: this route is deprecated" in output, output[-3000:]
