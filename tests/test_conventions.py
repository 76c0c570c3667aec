"""A fresh render uses public APIs on its request path and carries no build history.

What a team owns for years must not lean on library internals or change process-wide
state (a hand-built ``LogRecord``, edits of a router's route list, garbage-collector
calls, logging's ``logThreads``-style switches, a custom router class, an app built by
a module ``__getattr__``), nor mention how the template was built (task numbers, the
seed, benchmark figures, this repository's BENCHMARKS.md).
"""

import ast
import re
from pathlib import Path
from typing import Any

import pytest

from tests.answers import NON_DEFAULT_ANSWERS
from tests.helpers import render

VARIANTS: dict[str, dict[str, Any]] = {"defaults": {}, "everything-changed": NON_DEFAULT_ANSWERS}

# Build history: the task breakdown the skeleton was written from, and benchmark figures.
HISTORY = re.compile(r"Task \d|Tasks \d|task breakdown|\bseed|µs|BENCHMARKS", re.IGNORECASE)
MUTATING_METHODS = {"append", "extend", "insert", "remove", "pop", "clear", "sort", "reverse"}
LOGGING_SWITCHES = {"logThreads", "logProcesses", "logMultiprocessing", "logAsyncioTasks"}


def _dotted(node: ast.expr) -> str:
    if isinstance(node, ast.Attribute):
        return f"{_dotted(node.value)}.{node.attr}"
    return node.id if isinstance(node, ast.Name) else ""


def _edits_routes(node: ast.AST) -> bool:
    """`x.routes[...] = ...`, `del x.routes[...]`, `x.routes.insert(...)` and the like."""
    if isinstance(node, ast.Subscript) and isinstance(node.ctx, ast.Store | ast.Del):
        return isinstance(node.value, ast.Attribute) and node.value.attr == "routes"
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in MUTATING_METHODS:
        target = node.func.value
        return isinstance(target, ast.Attribute) and target.attr == "routes"
    return False


def construct_problems(path: Path, relative: str) -> list[str]:
    """The constructs that reach into library or process state, in one Python file of a render."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=relative)
    problems = []
    for node in ast.walk(tree):
        where = f"{relative}:{getattr(node, 'lineno', 0)}"
        if isinstance(node, ast.ClassDef) and any(_dotted(base).split(".")[-1] == "LogRecord" for base in node.bases):
            problems.append(f"{where}: a LogRecord subclass ({node.name}); log with Logger.info(..., extra=...)")
        elif isinstance(node, ast.Import) and any(alias.name == "gc" for alias in node.names):
            problems.append(f"{where}: imports gc; the app leaves the garbage collector alone")
        elif isinstance(node, ast.ImportFrom) and node.module == "gc":
            problems.append(f"{where}: imports from gc; the app leaves the garbage collector alone")
        elif _edits_routes(node):
            problems.append(f"{where}: edits a router's routes list; register routes with include_router")
        elif isinstance(node, ast.Assign) and any(
            _dotted(target) in {f"logging.{name}" for name in LOGGING_SWITCHES} for target in node.targets
        ):
            problems.append(f"{where}: sets logging's process-wide switches; configure handlers instead")
    for node in tree.body:
        if isinstance(node, ast.FunctionDef) and node.name == "__getattr__":
            problems.append(f"{relative}:{node.lineno}: a module __getattr__; servers call the factory (--factory)")
    return problems


def problems_in(service: Path) -> list[str]:
    """Every such construct, any mention of RouterGroup, and every piece of build history in the render at SERVICE."""
    problems = []
    files = [p for p in service.rglob("*") if p.is_file() and not {".git", ".venv"} & set(p.parts)]
    for path in sorted(files):
        relative = str(path.relative_to(service))
        text = path.read_text(encoding="utf-8")
        for number, line in enumerate(text.splitlines(), start=1):
            if match := HISTORY.search(line):
                problems.append(f"{relative}:{number}: build history {match.group(0)!r}: {line.strip()}")
            elif "RouterGroup" in line:
                problems.append(f"{relative}:{number}: mentions RouterGroup: {line.strip()}")
        if path.suffix == ".py":
            problems += construct_problems(path, relative)
    return problems


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_render_has_no_internals_and_no_build_history(variant: str, tmp_path: Path) -> None:
    service = render(tmp_path / "service", **VARIANTS[variant])
    assert problems_in(service) == []
