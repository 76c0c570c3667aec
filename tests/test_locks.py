"""Every render ships the lock this release tested, and its package manager accepts it as it is."""

import importlib.util
import tomllib
from pathlib import Path

import pytest

from tests.helpers import ROOT, render, run, tool

spec = importlib.util.spec_from_file_location("locks", ROOT / "harness" / "locks.py")
assert spec and spec.loader
locks = importlib.util.module_from_spec(spec)
spec.loader.exec_module(locks)

CASES = [(m, p, a) for m in locks.MANAGERS for p in locks.PYTHONS for a in locks.AUTHS]


@pytest.mark.parametrize(("manager", "python", "auth"), CASES, ids=[f"{m}-py{p}-{a}" for m, p, a in CASES])
def test_the_render_ships_a_lock_its_manager_accepts(tmp_path: Path, manager: str, python: str, auth: str) -> None:
    # A project name that sorts among the dependencies: uv.lock keeps the project's entry in name order.
    answers = {"package_manager": manager, "python_version": python, "auth": auth}
    backend = render(tmp_path / "service", **answers, project_name="Gamma Ray", version="1.2.3") / "backend"
    lock = (backend / locks.MANAGERS[manager]).read_text()
    pinned = locks.versions(lock)
    assert {"fastapi", "sqlalchemy", "redis", "pytest"} <= pinned.keys()
    assert ("pyjwt" in pinned) is (auth == "bearer")
    if manager == "poetry":
        run([tool("poetry"), "check", "--lock"], backend)
        return
    data = tomllib.loads(lock)
    assert data["requires-python"] == f">={python}"
    project = next(p for p in data["package"] if p["source"].get("virtual") == ".")
    assert (project["name"], project["version"]) == ("gamma-ray", "1.2.3")
    names = [p["name"] for p in data["package"]]
    assert names == sorted(names), "uv.lock keeps its entries in name order"
    try:
        interpreter = locks.interpreter(python)
    except SystemExit as missing:
        pytest.skip(f"uv lock --check needs a Python {python}: {missing}")
    before = (backend / "uv.lock").read_bytes()
    run([tool("uv"), "lock", "--check", "--python", interpreter], backend, env=None)
    run([tool("uv"), "lock", "--python", interpreter], backend, env=None)
    assert (backend / "uv.lock").read_bytes() == before, "uv lock rewrote the shipped lock: it is not uv's own"
