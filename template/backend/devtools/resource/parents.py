"""The tables a resource's refs name: their models, checked, and a row of each for its tests.

A ref must name a table of app/models with a UUID ``id`` and a model class. The tests
need a row to refer to: ``add_<model>(session)`` inserts one with a value for every
column that has no default and may not be null, worked out from the columns as they
are now (and, for a column that refers further, a row of that table first). A row of an
owned table (see ``owned``) belongs to the owner its helper is given:
``add_<model>(session, owner)``.
"""

from dataclasses import dataclass
from typing import Any

from sqlalchemy import Column, Table, UniqueConstraint
from sqlalchemy import types as sa

from devtools.resource.spec import OWNER, Refusal, Resource


@dataclass(frozen=True)
class Parent:
    table: str
    model: str  # the class: Agent
    module: str  # where it is: app.models.agent
    values: tuple[tuple[str, str], ...]  # (attribute, Python expression) for a new row
    imports: tuple[str, ...]  # what the expressions need, besides uuid and the helpers
    owned: bool = False  # its rows belong to an owner (see owned())
    needs_owner: bool = False  # its helper takes the owner: its rows, or rows it refers to, have one

    @property
    def helper(self) -> str:
        """add_agent: the test module's function that inserts a row."""
        snake = "".join(f"_{c.lower()}" if c.isupper() else c for c in self.model).lstrip("_")
        return f"add_{snake}"


def owned(table: Table) -> bool:
    """Whether TABLE's rows each belong to an owner, as `make resource OWNED=yes` writes it: an owner_id
    column, and a unique constraint on (id, owner_id) that other owned tables' foreign keys refer to."""
    return OWNER in table.c and any(
        isinstance(constraint, UniqueConstraint) and {column.name for column in constraint.columns} == {"id", OWNER}
        for constraint in table.constraints
    )


def value(column: Column[Any], table: str, rows: dict[str, Parent], path: tuple[str, ...]) -> tuple[str, str]:
    """A Python expression for COLUMN of a new row (an awaited add_... for a column that refers further),
    and the import it needs ("" for none)."""
    if column.name == OWNER and isinstance(column.table, Table) and owned(column.table):
        return "owner", ""  # the helper's argument (its foreign keys are the other columns')
    if column.foreign_keys:
        (key,) = column.foreign_keys
        parent = add(key.column.table.name, rows, (*path, table))
        return f"await {parent.helper}(session{', owner' if parent.needs_owner else ''})", ""
    type_ = column.type
    if isinstance(type_, sa.DateTime):
        moment = "datetime(2024, 1, 1, 12, tzinfo=UTC)" if type_.timezone else "datetime(2024, 1, 1, 12)"
        return moment, "from datetime import UTC, datetime"
    if isinstance(type_, sa.Date):
        return "date(2024, 1, 1)", "from datetime import date"
    return plain(column, table, path), ""


def plain(column: Column[Any], table: str, path: tuple[str, ...]) -> str:
    """The expression for a column of any other type: a literal, or uuid's."""
    type_ = column.type
    # Random where a unique constraint may apply: rows made here never collide.
    if isinstance(type_, sa.Enum):
        return repr(type_.enums[0])
    if isinstance(type_, sa.String):
        return f"uuid.uuid4().hex[:{type_.length}]" if type_.length and type_.length < 32 else "uuid.uuid4().hex"
    if isinstance(type_, sa.Integer):
        return "uuid.uuid4().int % 2**31"
    if isinstance(type_, sa.Numeric):  # Float and Double too
        return "0.5"
    if isinstance(type_, sa.Boolean):
        return "True"
    if isinstance(type_, sa.Uuid):
        return "uuid.uuid4()"
    if isinstance(type_, sa.JSON):
        return "{}"
    raise Refusal(
        f"ref({path[0] if path else table}): the tests cannot make a row of {table}: its column {column.name} "
        f"({type_}) has no default; give it a server_default, or write the resource's tests by hand"
    )


def add(table_name: str, rows: dict[str, Parent], path: tuple[str, ...] = ()) -> Parent:
    """The Parent for TABLE_NAME, added to ROWS after the ones its own rows need."""
    from app.db import Base

    if table_name in path:
        raise Refusal(f"ref({path[0]}): a row of {table_name} needs a row of {table_name} first; it cannot be made")
    if table_name in rows:
        return rows[table_name]
    table = Base.metadata.tables.get(table_name)
    if not isinstance(table, Table):
        raise Refusal(f"ref({table_name}): app/models has no table {table_name}; generate that resource first")
    mapper = next((mapper for mapper in Base.registry.mappers if mapper.local_table is table), None)
    primary = [column.name for column in table.primary_key]
    if mapper is None or primary != ["id"] or not isinstance(table.c.id.type, sa.Uuid):
        raise Refusal(f"ref({table_name}): {table_name} must have a model with a UUID primary key named id")
    needed = [
        column
        for column in table.columns
        if not column.primary_key and not column.nullable and column.default is None and column.server_default is None
    ]
    worked_out = {mapper.get_property_by_column(column).key: value(column, table_name, rows, path) for column in needed}
    values = tuple((attribute, code) for attribute, (code, _) in worked_out.items())
    imports = tuple(sorted({line for _, line in worked_out.values() if line}))
    # Rows it refers to were made first: whether their helpers take the owner is known.
    needs_owner = owned(table) or any(
        rows[key.column.table.name].needs_owner for column in needed for key in column.foreign_keys
    )
    rows[table_name] = Parent(
        table_name, mapper.class_.__name__, mapper.class_.__module__, values, imports, owned(table), needs_owner
    )
    return rows[table_name]


def parents(resource: Resource) -> tuple[dict[str, Parent], list[Parent]]:
    """The models the resource's refs name, by table; and every Parent its tests insert rows of, in order."""
    rows: dict[str, Parent] = {}
    direct = {}
    for field in resource.fields:
        if field.target is not None:
            if field.target == resource.plural:
                raise Refusal(f"FIELDS: {field.name!r}: a resource cannot refer to its own table ({field.target})")
            direct[field.target] = add(field.target, rows, ())
    return direct, list(rows.values())
