"""The files of a resource, from the Jinja templates in ``templates/``.

Import lines come out unsorted: ruff sorts them, with the service's own settings, before
anything is written (see ``files.py``). The templates end in ``.j2``, not ``.jinja``:
Copier copies them into the service as they are.
"""

from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from devtools.resource.kinds import View
from devtools.resource.parents import Parent
from devtools.resource.spec import Resource

TEMPLATES = Path(__file__).parent / "templates"
ENVIRONMENT = Environment(
    loader=FileSystemLoader(TEMPLATES),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    autoescape=False,  # noqa: S701  (Python source, not HTML: nothing to escape)
)
ENVIRONMENT.filters["quoted"] = lambda names: ", ".join(f'"{name}"' for name in names)
# The modules a resource is made of, each from its template.
MODULES = {"model": "model.py.j2", "schemas": "schemas.py.j2", "routes": "routes.py.j2", "tests": "test.py.j2"}


def constants(resource: Resource, views: list[View]) -> list[tuple[str, str]]:
    """The test module's constants: the fields of each kind of test, as Python literals."""

    def names(selected: list[View]) -> str:
        return repr(tuple(view.field.name for view in selected))

    defaults = {view.field.name: view.field.default for view in views if view.field.default is not None}
    found = [
        ("REQUIRED", names([v for v in views if not v.field.optional and v.field.default is None])),
        ("NOT_NULL", names([v for v in views if not v.field.optional])),
        ("NULLABLE", names([v for v in views if v.field.optional])),
        ("UNIQUE", names([v for v in views if v.field.unique])),
        ("DOCUMENTS", names([v for v in views if v.field.kind == "json"])),
        ("REFERENCES", names([v for v in views if v.field.kind == "ref"])),
        ("OWNED_REFERENCES", names([v for v in views if v.field.name in resource.scoped])),
        ("FILTERS", names([v for v in views if v.field.filter])),
        ("SORTS", repr(resource.sorts)),
        ("ENUMS", "{" + ", ".join(f'"{v.field.name}": {v.enum_class}' for v in views if v.field.kind == "enum") + "}"),
        ("BEYOND", "[" + ", ".join(f'("{v.field.name}", {value})' for v in views for value in v.beyond) + "]"),
        ("WITHIN", "[" + ", ".join(f'("{v.field.name}", {value})' for v in views for value in v.within) + "]"),
        ("OTHER_TYPES", "[" + ", ".join(f'("{v.field.name}", {value})' for v in views for value in v.lax) + "]"),
        ("BAD_FILTERS", repr([(v.field.name, v.bad_filter) for v in views if v.field.filter and v.bad_filter])),
    ]
    # Only the ones some test uses; the JSON value of each default.
    used = [(name, value) for name, value in found if value not in ("()", "{}", "[]")]
    json_defaults: dict[str, object] = {name: {} if value == "{}" else value for name, value in defaults.items()}
    # DEFAULTS: also the value an optional field left out gets (None without one).
    needed = defaults or any(view.field.optional for view in views)
    return [*used, *([("DEFAULTS: dict[str, Any]", repr(json_defaults))] if needed else [])]


def context(resource: Resource, parents: dict[str, Parent], rows: list[Parent]) -> dict[str, Any]:
    views = [View(field, resource) for field in resource.fields]
    return {
        "resource": resource,
        "name": resource.name,
        "plural": resource.plural,
        "M": resource.model,
        "label_plural": resource.plural.replace("_", " ").capitalize(),
        "human": resource.name.replace("_", " "),
        "id_path": "/{" + resource.name + "_id}",  # the item routes' path: /{agent_id}
        # The routes' database session is `session`, as everywhere, unless the resource has that name.
        "db": "db_session" if resource.name == "session" else "session",
        "fields": views,
        "kinds": {field.kind for field in resource.fields},
        "enums": [view for view in views if view.field.kind == "enum"],
        "refs": [view for view in views if view.field.kind == "ref"],
        # OWNED=yes: owner_id from the caller; refs to owned tables name the same owner's rows.
        "owned": resource.owned,
        "scoped": [view for view in views if view.field.name in resource.scoped],
        "plain_refs": [view for view in views if view.field.kind == "ref" and view.field.name not in resource.scoped],
        "restricted": [view for view in views if view.field.on_delete == "RESTRICT" and view.field.kind == "ref"],
        "filters": [view for view in views if view.field.filter],
        "bad_filters": [view for view in views if view.field.filter and view.bad_filter],
        "other_types": [view for view in views if view.lax],
        "documents": [view for view in views if view.field.kind == "json"],
        "required": [view for view in views if not view.field.optional and view.field.default is None],
        "not_null": [view for view in views if not view.field.optional],
        "nullable": [view for view in views if view.field.optional],
        "unique": [view for view in views if view.field.unique],
        "defaults": [view for view in views if view.field.default is not None],
        "beyond": [view for view in views if view.beyond],
        "within": [view for view in views if view.within],
        "field_types": field_types(views),
        "query_types": query_types(views),
        "first": resource.fields[0].name,
        "parents": parents,
        "rows": rows,
        "parent_imports": sorted({line for parent in rows for line in parent.imports}),
        "constants": constants(resource, views),
    }


def field_types(views: list[View]) -> list[str]:
    """What the schemas import from app.schemas.fields: Omittable, and the request types of the fields."""
    names = {"Omittable"}
    for view in views:
        if view.field.kind == "json":
            names.add("StoredJson" if view.field.high is not None else "JsonObject")
        elif view.field.kind == "int":
            names.add("JsonInteger" if view.field.low is not None or view.field.high is not None else "BigInt")
        elif view.field.kind != "enum":
            names.add(view.request)
    return sorted(names)


def query_types(views: list[View]) -> list[str]:
    """What the schemas import from app.api.query: the types of the int and bool filters."""
    kinds = {view.field.kind for view in views if view.field.filter}
    return sorted(name for kind, name in (("int", "QueryBigInt"), ("bool", "QueryBool")) if kind in kinds)


def modules(resource: Resource, parents: dict[str, Parent], rows: list[Parent]) -> dict[str, str]:
    """The model, schemas, routes and tests of RESOURCE, unformatted."""
    values = context(resource, parents, rows)
    return {kind: ENVIRONMENT.get_template(template).render(values) for kind, template in MODULES.items()}


def migration(resource: Resource) -> tuple[str, str, str]:
    """The bodies of the revision's upgrade() and downgrade(), and the imports they need besides sa and op."""
    values = context(resource, {}, [])
    upgrade, downgrade = (
        ENVIRONMENT.get_template(name).render(values) for name in ("upgrade.py.j2", "downgrade.py.j2")
    )
    imports = "from sqlalchemy.dialects import postgresql" if "json" in values["kinds"] else ""
    return indented(upgrade), indented(downgrade), imports


def indented(body: str) -> str:
    """BODY as the lines of a function, the first one's indentation left to the revision's template."""
    return "\n".join(f"    {line}" if line else line for line in body.splitlines()).strip()
