"""Formatting with the service's own ruff, and writing every file or none."""

import subprocess
import sys
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from devtools.resource.spec import Refusal


def ruff(backend: Path, relative: Path, source: str) -> str:
    """SOURCE fixed and formatted as `make format` would do it at RELATIVE (in backend/), unwritten."""
    # --stdin-filename: the settings and first-party packages that apply at that path.
    where = ["--stdin-filename", str(relative), "-"]
    fix, format_, lint = (
        ["check", "--fix", "--exit-zero", "--quiet", *where],  # import order, and other fixes
        ["format", "--quiet", *where],  # line lengths too
        ["check", "--quiet", *where],  # what `make lint` will say about it: nothing
    )
    for step in (fix, format_, lint):
        done = subprocess.run(
            [sys.executable, "-m", "ruff", *step], cwd=backend, input=source, capture_output=True, text=True
        )
        if done.returncode != 0:
            problems = " ".join((done.stdout + done.stderr).split())[:300]
            raise Refusal(f"ruff refuses the generated {relative}: {problems}")
        if step is not lint:
            source = done.stdout
    return source


def formatted(backend: Path, sources: Mapping[Path, str]) -> dict[Path, str]:
    with ThreadPoolExecutor() as pool:
        results = {relative: pool.submit(ruff, backend, relative, source) for relative, source in sources.items()}
    return {relative: result.result() for relative, result in results.items()}


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
