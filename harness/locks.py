"""The lock files a render ships: where they live in this repository, and how a service's
lock becomes one (the `relock` session).

A render's `backend/uv.lock` / `backend/poetry.lock` is `locks/<manager>/<python>/<auth>/<file>.jinja`
included by the template: one lock for each answer that changes the dependencies.
poetry.lock names no project, so its template is the lock itself.
uv.lock records the project's name and version in a package entry that uv keeps in name
order among the others: its template puts that entry where the answers sort it.

Loaded by the noxfile by path; needs nothing but the standard library.
"""

import os
import re
import shutil
import tomllib
from pathlib import Path

MANAGERS = {"uv": "uv.lock", "poetry": "poetry.lock"}
PYTHONS = ("3.11", "3.12", "3.13", "3.14")
AUTHS = ("none", "bearer")  # bearer adds pyjwt[crypto]
# The answers the locks are made with (copier.yml's defaults): they become placeholders.
SLUG, VERSION = "live-interactive-agent", "0.1.0"

PACKAGE = "\n[[package]]\n"
NAME = re.compile(r'name = "([^"]+)"\n')


def template_path(root: Path, manager: str, python: str, auth: str) -> Path:
    return root / "locks" / manager / python / auth / f"{MANAGERS[manager]}.jinja"


def raw(text: str) -> str:
    if "{% endraw" in text or "{%- endraw" in text:
        raise ValueError("a lock that contains Jinja's endraw cannot be shipped as a template")
    return "{% raw %}" + text + "{% endraw %}" if text else ""


def uv_template(lock: str) -> str:
    """uv.lock of a render with SLUG and VERSION, as a template for any project name and version."""
    head, *packages = lock.split(PACKAGE)
    projects = [p for p in packages if 'source = { virtual = "." }' in p.split("\n[", 1)[0]]
    if len(projects) != 1:
        raise ValueError(f"expected the project's entry once in uv.lock, found {len(projects)}")
    project = projects[0]
    entry = f'name = "{SLUG}"\nversion = "{VERSION}"\n'
    if not project.startswith(entry):
        raise ValueError(f"the project's entry in uv.lock does not start with {entry!r}")
    placed = "{% set ns.placed = true %}"
    parts = [
        "{% set ns = namespace(placed=false) %}",
        # The project's entry, once: its name and version are the answers.
        "{% set project %}" + PACKAGE + 'name = "{{ project_slug }}"\nversion = "{{ version }}"\n',
        raw(project.removeprefix(entry)),
        "{% endset %}",
        raw(head),
    ]
    for package in packages:
        if package is project:
            continue
        name = NAME.match(package)
        if name is None:
            raise ValueError(f"a package entry in uv.lock without a name first: {package[:80]!r}")
        parts.append(f'{{% if not ns.placed and project_slug < "{name[1]}" %}}{{{{ project }}}}{placed}{{% endif %}}')
        parts.append(raw(PACKAGE + package))
    parts.append("{% if not ns.placed %}{{ project }}{% endif %}")
    return "".join(parts)


def as_template(manager: str, lock: str) -> str:
    return uv_template(lock) if manager == "uv" else raw(lock)


def versions(lock: str) -> dict[str, str]:
    """The version of every package a uv.lock or poetry.lock pins (the project itself left out)."""
    packages = tomllib.loads(lock).get("package", [])
    return {p["name"]: p["version"] for p in packages if p.get("source", {}).get("virtual") != "."}


def changes(before: dict[str, str], after: dict[str, str]) -> list[str]:
    """What moved from BEFORE to AFTER, one line a package: "redis 8.1.0 -> 8.2.0"."""
    names = sorted(before.keys() | after.keys())
    moved = [n for n in names if before.get(n) != after.get(n)]
    return [f"{n} {before.get(n, '(none)')} -> {after.get(n, '(none)')}" for n in moved]


def interpreter(python: str) -> str:
    """A Python PYTHON to lock with: RELOCK_PYTHON_<X_Y>, else pyenv's, else python<X.Y> on PATH."""
    variable = "RELOCK_PYTHON_" + python.replace(".", "_")
    pyenv = sorted(Path.home().glob(f".pyenv/versions/{python}.*/bin/python{python}"))
    found = os.environ.get(variable) or (str(pyenv[-1]) if pyenv else shutil.which(f"python{python}"))
    if found is None:
        raise SystemExit(f"relock: no Python {python} here: put python{python} on PATH or set {variable}")
    return found
