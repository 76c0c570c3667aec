"""Formatting with the service's own ruff, and writing every file or none."""

import ast
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from pathlib import Path

from devtools.resource.spec import Refusal

# Where ruff may find the service's settings, in backend/.
SETTINGS = ("pyproject.toml", "ruff.toml", ".ruff.toml")
STEPS = (
    ["check", "--fix", "--exit-zero"],  # import order, and other fixes
    ["format"],  # line lengths too
    ["check"],  # what `make lint` will say about them: nothing
)


def formatted(backend: Path, sources: Mapping[Path, str]) -> dict[Path, str]:
    """SOURCES (backend-relative paths) fixed and formatted as `make format` would do them, unwritten.

    Ruff runs once a step on copies at the same paths in a scratch folder that has the
    service's settings: each file gets the rules that apply at its path.
    """
    with tempfile.TemporaryDirectory(prefix="resource-format-") as scratch:
        root = Path(scratch)
        for name in SETTINGS:
            if (backend / name).is_file():
                shutil.copyfile(backend / name, root / name)
        for relative, source in sources.items():
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).write_text(source, encoding="utf-8")
        for relative in imported_modules(backend, sources) - sources.keys():
            # Empty: ruff sorts `from tests.x import ...` as the service's own when it finds tests/x.py.
            (root / relative).parent.mkdir(parents=True, exist_ok=True)
            (root / relative).touch()
        paths = [str(relative) for relative in sources]
        for step in STEPS:
            command = [sys.executable, "-m", "ruff", *step, "--quiet", "--no-cache", *paths]
            done = subprocess.run(command, cwd=root, capture_output=True, text=True, check=False)
            if done.returncode != 0:
                problems = " ".join((done.stdout + done.stderr).split())[:300]
                raise Refusal(f"ruff refuses the generated files: {problems}")
        return {relative: (root / relative).read_text(encoding="utf-8") for relative in sources}


def imported_modules(backend: Path, sources: Mapping[Path, str]) -> set[Path]:
    """The service's modules (backend-relative .py files) that SOURCES import from."""
    found: set[Path] = set()
    for source in sources.values():
        try:
            tree = ast.parse(source)
        except SyntaxError:
            continue  # ruff says what is wrong with it
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and node.module and not node.level:
                relative = Path(*node.module.split(".")).with_suffix(".py")
                if (backend / relative).is_file():
                    found.add(relative)
    return found


def write(backend: Path, new: Mapping[Path, str], changed: Path, before: str, after: str) -> None:
    """The NEW files, then CHANGED (BEFORE -> AFTER); on any failure, the tree as it was."""
    created: list[Path] = []
    changing = False
    try:
        for relative, text in new.items():
            # "x": a file that appeared since the checks is never overwritten.
            with (backend / relative).open("x", encoding="utf-8") as out:
                created.append(backend / relative)
                out.write(text)
        changing = True
        (backend / changed).write_text(after, encoding="utf-8")
    except BaseException:
        for path in created:
            path.unlink(missing_ok=True)
        if changing:
            (backend / changed).write_text(before, encoding="utf-8")
        raise
