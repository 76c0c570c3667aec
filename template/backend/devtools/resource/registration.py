"""Registering a routes module in app/api/v1/router.py, with the two lines a person would write.

The module's name joins the ``from app.api.v1 import ...`` line, and
``api_router.include_router(<module>.router)`` follows the last such call. The result
is parsed and compared with the original before anything is written: a router.py of
another shape is refused, not guessed at.
"""

import ast

from devtools.resource.spec import Refusal

PACKAGE = "app.api.v1"
SHAPE = (
    "app/api/v1/router.py must have a `from app.api.v1 import ...` line and an `api_router` "
    "on which routers are included; register the router there by hand"
)


def imports_line(tree: ast.Module) -> ast.ImportFrom:
    found = [node for node in tree.body if isinstance(node, ast.ImportFrom) and node.module == PACKAGE]
    if len(found) != 1:
        raise Refusal(SHAPE)
    return found[0]


def includes(tree: ast.Module) -> list[ast.Expr]:
    """The module-level ``api_router.include_router(...)`` calls."""
    return [
        node
        for node in tree.body
        if isinstance(node, ast.Expr)
        and isinstance(node.value, ast.Call)
        and isinstance(node.value.func, ast.Attribute)
        and node.value.func.attr == "include_router"
        and isinstance(node.value.func.value, ast.Name)
        and node.value.func.value.id == "api_router"
    ]


def bound_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
    return names


def register(source: str, module: str) -> str:
    """SOURCE (router.py) with MODULE's router registered; a Refusal when its shape is unknown."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        raise Refusal(SHAPE) from None
    line = imports_line(tree)
    assigned = [node for node in tree.body if isinstance(node, ast.Assign | ast.AnnAssign)]
    if "api_router" not in bound_names(ast.Module(list(assigned), [])):
        raise Refusal(SHAPE)
    if module in bound_names(tree):
        raise Refusal(f"app/api/v1/router.py already uses the name {module}; choose another PLURAL")
    lines = source.splitlines(keepends=True)
    # The edit further down first: the line numbers of the one above stay valid.
    calls = includes(tree)
    after = (calls[-1].end_lineno or calls[-1].lineno) if calls else len(lines)
    if lines and not lines[-1].endswith("\n"):
        lines[-1] += "\n"
    lines.insert(after, f"api_router.include_router({module}.router)\n")
    names = sorted([*(f"{a.name} as {a.asname}" if a.asname else a.name for a in line.names), module])
    first, last = line.lineno - 1, (line.end_lineno or line.lineno) - 1
    if first == last:
        comment = lines[first].partition("#")[2].rstrip("\n")
        lines[first] = f"from {PACKAGE} import {', '.join(names)}" + (f"  #{comment}\n" if comment else "\n")
    else:
        # A parenthesized list, perhaps with comments: a line of its own, before the next name in order.
        following = [alias for alias in line.names if alias.name > module]
        at = (following[0].lineno if following else line.end_lineno or line.lineno) - 1
        lines.insert(at, f"    {module},\n")
    result = "".join(lines)
    check(source, result, module)
    return result


def check(before: str, after: str, module: str) -> None:
    """AFTER is BEFORE with MODULE imported from app.api.v1 and its router included: nothing else."""
    try:
        old, new = ast.parse(before), ast.parse(after)
    except SyntaxError:
        raise Refusal(SHAPE) from None
    imported = imports_line(new)
    if module not in [alias.name for alias in imported.names]:
        raise Refusal(SHAPE)
    imported.names = [alias for alias in imported.names if alias.name != module]
    added = [node for node in includes(new) if ast.unparse(node) == f"api_router.include_router({module}.router)"]
    if len(added) != 1:
        raise Refusal(SHAPE)
    new.body.remove(added[0])
    if ast.dump(old) != ast.dump(new):
        raise Refusal(SHAPE)
