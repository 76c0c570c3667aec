"""Every file of a resource worked out, and every check made, before anything is written."""

import builtins
from dataclasses import dataclass
from pathlib import Path

from devtools.resource import files, migration, registration, render
from devtools.resource.parents import Parent, parents
from devtools.resource.spec import Refusal, Resource

ROUTER = Path("app/api/v1/router.py")
# Names of the service's layout: a resource named so would be confused with it.
LAYOUT = {"app", "api", "v1", "core", "db", "models", "schemas", "tests", "devtools", "alembic", "health"}
PACKAGES = ("app/api", "app/api/v1", "app/models", "app/schemas")


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


# Names the model and schemas import (a plain list: keep it in step with templates/). A
# field is a class attribute there: it must not hide one.
CLASS_BODY_NAMES = {
    *("Annotated", "Any", "Base", "BaseSchema", "BigInt", "BigInteger", "DateTime", "Double", "Field", "FiniteFloat"),
    *("ForeignKey", "Index", "JSONB", "JsonObject", "Mapped", "Omittable", "PageParams", "SortKeys", "StoredJson"),
    *("StoredStr", "StrEnum", "String", "Text", "TimestampMixin", "TimestampSchema", "UUID", "UUIDPrimaryKeyMixin"),
    *("UtcDatetime", "checked_enum", "date", "datetime", "mapped_column"),
}
# With what the routes and tests import or define: no class of the resource may take one.
IMPORTED = CLASS_BODY_NAMES | {
    *("APIRouter", "AsyncClient", "AsyncSession", "Callable", "ConflictException", "DATABASE_ERRORS", "DbSession"),
    *("IntegrityError", "MAX_JSON_BYTES", "NOT_FOUND", "NewBody", "NotFoundException", "PaginatedResponse", "Query"),
    *("Request", "Response", "URL", "UTC", "delete", "error_responses", "order_by", "paginate", "pytest", "router"),
    *("ReadSession", "select", "status", "uuid"),
}
# Local names of the routes and tests that NAME, a local name there too, would take.
LOCALS = {
    *("body", "changes", "created", "detail", "document", "error", "expected", "field", "first", "key", "matching"),
    *("message", "method", "new", "number", "page", "query", "params", "request", "response", "row", "rows"),
    *("second", "stored", "table", "updated", "url", "value", "values", "wanted"),
}


def check_names(resource: Resource, parents: dict[str, Parent]) -> None:
    """No name made from NAME or a field is one the generated code already uses for something else."""
    from app.db import Base
    from app.schemas.base import BaseSchema

    if resource.name in LOCALS or resource.name in IMPORTED or resource.name in dir(builtins):
        raise Refusal(
            f"NAME={resource.name}: the generated code uses {resource.name} for something else; choose another"
        )
    classes = [resource.model + suffix for suffix in ("", "Create", "Update", "Read", "ListParams")]
    if clash := [name for name in classes if name in IMPORTED]:
        raise Refusal(f"NAME={resource.name}: the generated code would use {clash[0]} for two things; choose another")
    for parent in parents.values():
        if parent.model in IMPORTED or parent.model in classes:
            raise Refusal(f"ref({parent.table}): its model's name, {parent.model}, is one the generated code uses")
    for field in resource.fields:
        enum = resource.enum_class(field)
        if field.kind == "enum" and (enum in IMPORTED or enum in classes):
            raise Refusal(f"FIELDS: {field.name!r}: its enum would be {enum}, a name the generated code uses already")
        if field.name in CLASS_BODY_NAMES:
            raise Refusal(f"FIELDS: {field.name!r} is a name the model or schemas import; choose another field name")
        if field.name in dir(Base):
            raise Refusal(f"FIELDS: {field.name!r} is an attribute of SQLAlchemy's declarative models; choose another")
        if field.name in dir(BaseSchema) or field.name.startswith("model_"):
            raise Refusal(f"FIELDS: {field.name!r} is an attribute of pydantic's models; choose another field name")


def plan(backend: Path, resource: Resource) -> Plan:
    check_tree(backend, resource)
    check_metadata(resource)
    referred, rows = parents(resource)
    check_names(resource, referred)
    sources = render.modules(resource, referred, rows)
    router_before = (backend / ROUTER).read_text(encoding="utf-8")
    router_after = registration.register(router_before, resource.plural)
    alembic = migration.config(backend)
    path, revision = migration.revision(alembic, migration.head(alembic), resource)
    targets = paths(resource)
    unformatted = {targets[kind]: source for kind, source in sources.items()}
    unformatted[path.relative_to(backend)] = revision
    unformatted[ROUTER] = router_after
    done = files.formatted(backend, unformatted)
    router_after = done.pop(ROUTER)
    registration.check(router_before, router_after, resource.plural)
    return Plan(done, router_before, router_after)
