"""Every file of a resource worked out, and every check made, before anything is written."""

import ast
import sys
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import Table

from devtools.resource import files, migration, registration
from devtools.resource.sources import model, routes, schemas
from devtools.resource.spec import Field, Refusal, Resource
from devtools.resource.suite import suite

ROUTER = Path("app/api/v1/router.py")
# Names of the service's layout: a resource named so would be confused with it.
LAYOUT = {"app", "api", "v1", "core", "db", "models", "schemas", "tests", "devtools", "alembic", "health"}
PACKAGES = ("app/api", "app/api/v1", "app/models", "app/schemas")
PLACEHOLDER = "qqqq"


@dataclass(frozen=True)
class Plan:
    new: dict[Path, str]  # backend-relative path -> text
    router_before: str
    router_after: str


def paths(resource: Resource) -> dict[str, Path]:
    return {
        "model": Path("app/models") / f"{resource.name}.py",
        "schemas": Path("app/schemas") / f"{resource.name}.py",
        "routes": Path("app/api/v1") / f"{resource.plural}.py",
        "tests": Path("tests/api/v1") / f"test_{resource.plural}.py",
    }


def modules(backend: Path) -> dict[str, Path]:
    """Names of the modules and packages in the service's app packages, with where each is."""
    found: dict[str, Path] = {}
    for package in PACKAGES:
        if not (backend / package).is_dir():
            raise Refusal(f"{package}/ is missing: the resource's files go there")
        for path in sorted((backend / package).iterdir()):
            if path.suffix == ".py" or (path / "__init__.py").exists():
                found.setdefault(path.stem, path.relative_to(backend))
    return found


def check_tree(backend: Path, resource: Resource) -> None:
    targets = paths(resource)
    if (backend / targets["model"]).exists() or (backend / targets["routes"]).exists():
        raise Refusal(f"NAME={resource.name}: the resource exists already ({targets['model']}, {targets['routes']})")
    existing = modules(backend)
    for variable, value in (("NAME", resource.name), ("PLURAL", resource.plural)):
        if value in LAYOUT or value in existing:
            where = existing.get(value, "the service's layout")
            raise Refusal(f"{variable}={value} is reserved: the service has {where}; choose another name")
    for relative in targets.values():
        if (backend / relative).exists():
            raise Refusal(f"{relative} exists already; choose another NAME or PLURAL")
        if not (backend / relative).parent.is_dir():
            raise Refusal(f"{relative.parent}/ is missing: the resource's files go there")


def check_metadata(resource: Resource) -> None:
    try:
        import app.models  # noqa: F401  (every model: the tables and classes the service has)
    except Exception as exc:  # any error of the team's models, in one line
        raise Refusal(f"app.models does not import ({type(exc).__name__}: {exc}); fix it first") from None
    from app.db import Base

    if (table := Base.metadata.tables.get(resource.plural)) is not None:
        raise Refusal(f"the table {table.name} exists already in app/models; choose another PLURAL")
    for mapper in Base.registry.mappers:
        if mapper.class_.__name__ == resource.model:
            raise Refusal(f"a model named {resource.model} exists already ({mapper.class_.__module__})")


def identifiers(tree: ast.AST) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name):
            names.add(node.id)
        elif isinstance(node, ast.arg):
            names.add(node.arg)
        elif isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names.update((alias.asname or alias.name).split(".")[0] for alias in node.names)
    return names


def top_level(source: str) -> set[str]:
    """The names a module binds outside its classes and functions."""
    tree = ast.parse(source)
    return identifiers(ast.Module([node for node in tree.body if not isinstance(node, ast.ClassDef)], [])) | {
        node.name for node in tree.body if isinstance(node, ast.ClassDef)
    }


# What the generator writes for a resource, by kind.
GENERATORS: dict[str, Callable[[Resource], str]] = {
    "model": model,
    "schemas": schemas,
    "routes": routes,
    "tests": suite,
}


def generated_sources(resource: Resource) -> dict[str, str]:
    return {kind: make(resource) for kind, make in GENERATORS.items()}


def check_names(resource: Resource, sources: dict[str, str]) -> None:
    """No name made from NAME or a field is one the generated code already uses for something else."""
    from app.db import Base
    from app.schemas.base import BaseSchema

    # The same modules for a resource named PLACEHOLDER: what they use besides the resource's own names.
    stand_in = Resource(PLACEHOLDER, PLACEHOLDER + "s", resource.fields)
    used: set[str] = set()
    derived: set[str] = set()
    for make in GENERATORS.values():
        names = identifiers(ast.parse(make(stand_in)))
        used |= {name for name in names if PLACEHOLDER not in name.lower()}
        derived |= {
            name.replace(PLACEHOLDER.capitalize(), resource.model)
            .replace(PLACEHOLDER + "s", resource.plural)
            .replace(PLACEHOLDER, resource.name)
            for name in names
            if PLACEHOLDER in name.lower()
        }
    # The route's session is renamed for a resource called session (see sources.words).
    if clash := sorted(derived & (used - {"session"})):
        raise Refusal(f"NAME={resource.name}: the generated code would use {clash[0]} for two things; choose another")
    for field in resource.fields:
        check_field(field, top_level(sources["model"]) | top_level(sources["schemas"]), Base, BaseSchema)


def check_field(field: Field, module_names: set[str], base: type, schema: type) -> None:
    if field.name in module_names:
        raise Refusal(f"FIELDS: {field.name!r} is a name the model or schemas import; choose another field name")
    if field.name in dir(base):
        raise Refusal(f"FIELDS: {field.name!r} is an attribute of SQLAlchemy's declarative models; choose another")
    if field.name in dir(schema) or field.name.startswith("model_"):
        raise Refusal(f"FIELDS: {field.name!r} is an attribute of pydantic's models; choose another field name")


def load_table(source: str, resource: Resource) -> Table:
    """The table the generated model declares, from running it beside the service's models."""
    from app.db import Base

    name = f"app.models.{resource.name}"
    module = types.ModuleType(name)
    module.__file__ = f"app/models/{resource.name}.py"
    sys.modules[name] = module
    try:
        exec(compile(source, module.__file__, "exec"), module.__dict__)  # noqa: S102  (the model just generated)
    finally:
        del sys.modules[name]
    return Base.metadata.tables[resource.plural]


def plan(backend: Path, resource: Resource) -> Plan:
    check_tree(backend, resource)
    check_metadata(resource)
    sources = generated_sources(resource)
    check_names(resource, sources)
    router_before = (backend / ROUTER).read_text(encoding="utf-8")
    router_after = registration.register(router_before, resource.plural)
    alembic = migration.config(backend)
    down = migration.head(alembic)
    path, revision = migration.revision(alembic, down, resource, load_table(sources["model"], resource))
    targets = paths(resource)
    unformatted = {targets[kind]: sources[kind] for kind in ("model", "schemas", "routes")}
    unformatted[path.relative_to(backend)] = revision
    unformatted[targets["tests"]] = sources["tests"]
    unformatted[ROUTER] = router_after
    done = files.formatted(backend, unformatted)
    router_after = done.pop(ROUTER)
    registration.check(router_before, router_after, resource.plural)
    return Plan(done, router_before, router_after)
