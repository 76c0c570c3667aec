"""The Python modules of a resource: model, schemas and routes, in the style the README shows.

Import lines come out unsorted: ruff sorts them, with the service's own settings, before
anything is written (see ``files.py``).
"""

from dataclasses import dataclass
from string import Template

from devtools.resource.spec import Field, Resource


@dataclass(frozen=True)
class Kind:
    python: str  # the value's type: the Mapped[...] and the response's annotation
    column: str | None  # the column type, where the annotation alone would give another
    request: str  # the type of the field in request bodies
    imports: tuple[str, ...]  # what the three need


KINDS = {
    "str": Kind("str", "String({length})", "StoredStr", ("from sqlalchemy import String",)),
    "text": Kind("str", "Text", "StoredStr", ("from sqlalchemy import Text",)),
    "int": Kind("int", "BigInteger", "BigInt", ("from sqlalchemy import BigInteger",)),
    "float": Kind(
        "float", "Double", "FiniteFloat", ("from sqlalchemy import Double", "from pydantic import FiniteFloat")
    ),
    "bool": Kind("bool", None, "bool", ()),
    "date": Kind("date", None, "date", ("from datetime import date",)),
    "datetime": Kind(
        "datetime",
        "DateTime(timezone=True)",
        "UtcDatetime",
        ("from sqlalchemy import DateTime", "from datetime import datetime"),
    ),
    "uuid": Kind("UUID", None, "UUID", ("from uuid import UUID",)),
}
FIELD_TYPES = {"StoredStr", "BigInt", "UtcDatetime", "Omittable"}

MODEL = Template('''"""$label_plural: the ``$plural`` table."""

$imports


class $Model(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    __tablename__ = "$plural"
    # Lists are ordered by creation, then id: this index serves a page without sorting the table.
    __table_args__ = (Index("$index", "created_at", "id"),)

$columns
''')

SCHEMAS = Template('''"""Bodies of /api/v1/$path: what requests send and responses hold."""

$imports


class ${Model}Create(BaseSchema):
$create


class ${Model}Update(BaseSchema):
    """Every field may be left out: a PATCH changes only the fields it sends."""

$update


class ${Model}Read(TimestampSchema):
    id: UUID
$read
''')

ROUTES = Template('''"""$label_plural: create, list, read, update and delete."""

from uuid import UUID

from fastapi import APIRouter, Request, Response, status
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from app.api.deps import DbSession, Pagination, ReadSession
from app.api.pagination import paginate
from app.exceptions import DATABASE_ERRORS, NotFoundException, error_responses
from app.models.$name import $Model
from app.schemas.base import PaginatedResponse
from app.schemas.$name import ${Model}Create, ${Model}Read, ${Model}Update

router = APIRouter(prefix="/$path", tags=["$path"], responses=DATABASE_ERRORS)
# The routes for one $human answer 404 when there is none with the id.
NOT_FOUND = error_responses(NotFoundException)


async def find_$name($db: AsyncSession, ${name}_id: UUID) -> $Model:
    $name = await $db.get($Model, ${name}_id)
    if $name is None:
        raise NotFoundException("$label not found")
    return $name


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_$name(body: ${Model}Create, $db: DbSession, request: Request, response: Response) -> ${Model}Read:
    $name = $Model(**body.model_dump())
    $db.add($name)
    # Reads back what the database sets (the timestamps); a duplicate fails here, as a 409.
    await $db.flush()
    response.headers["Location"] = str(request.url_for("get_$name", ${name}_id=$name.id))
    return ${Model}Read.model_validate($name)


@router.get("")
async def list_$plural($db: ReadSession, pagination: Pagination) -> PaginatedResponse[${Model}Read]:
    # Oldest first; the id orders rows that one transaction created.
    query = select($Model).order_by($Model.created_at, $Model.id)
    return await paginate($db, query, pagination, ${Model}Read)


@router.get("/{${name}_id}", responses=NOT_FOUND)
async def get_$name(${name}_id: UUID, $db: ReadSession) -> ${Model}Read:
    return ${Model}Read.model_validate(await find_$name($db, ${name}_id))


@router.patch("/{${name}_id}", responses=NOT_FOUND)
async def update_$name(${name}_id: UUID, changes: ${Model}Update, $db: DbSession) -> ${Model}Read:
    $name = await find_$name($db, ${name}_id)
    for field, value in changes.model_dump(exclude_unset=True).items():
        setattr($name, field, value)
    # Reads back updated_at; a duplicate fails here, as a 409.
    await $db.flush()
    return ${Model}Read.model_validate($name)


@router.delete("/{${name}_id}", status_code=status.HTTP_204_NO_CONTENT, responses=NOT_FOUND)
async def delete_$name(${name}_id: UUID, $db: DbSession) -> None:
    await $db.delete(await find_$name($db, ${name}_id))
''')


def words(resource: Resource) -> dict[str, str]:
    """What the templates fill in, besides the fields."""
    return {
        "name": resource.name,
        "plural": resource.plural,
        "Model": resource.model,
        "path": resource.path,
        "index": resource.index,
        "label": resource.label,
        "label_plural": resource.plural.replace("_", " ").capitalize(),
        "human": resource.name.replace("_", " "),
        # The route's session is `session`, as everywhere, unless the resource has that name.
        "db": "db_session" if resource.name == "session" else "session",
    }


def import_lines(lines: list[str]) -> str:
    return "\n".join(dict.fromkeys(lines))


def column(field: Field) -> str:
    kind = KINDS[field.type]
    annotation = f"Mapped[{kind.python} | None]" if field.optional else f"Mapped[{kind.python}]"
    arguments = [kind.column.format(length=field.length)] if kind.column else []
    arguments += ["unique=True"] if field.unique else []
    if not arguments:
        return f"    {field.name}: {annotation}"
    return f"    {field.name}: {annotation} = mapped_column({', '.join(arguments)})"


def model(resource: Resource) -> str:
    imports = [
        "from sqlalchemy import Index",
        "from sqlalchemy.orm import Mapped, mapped_column",
        "from app.db import Base, TimestampMixin, UUIDPrimaryKeyMixin",
    ]
    for field in resource.fields:
        imports += [line for line in KINDS[field.type].imports if "pydantic" not in line]
    columns = "\n".join(column(field) for field in resource.fields)
    return MODEL.substitute(words(resource), imports=import_lines(imports), columns=columns)


def request_field(field: Field, *, patch: bool) -> str:
    kind = KINDS[field.type]
    length = f"max_length={field.length}" if field.length else ""
    if field.optional:
        annotation, default = f"{kind.request} | None", "None"
    elif patch:
        annotation, default = f"Omittable[{kind.request}]", "None"
    else:
        annotation, default = kind.request, ""
    if length:
        default = f"Field(default=None, {length})" if default else f"Field({length})"
    return f"    {field.name}: {annotation}" + (f" = {default}" if default else "")


def schemas(resource: Resource) -> str:
    imports = [
        "from uuid import UUID",
        "from app.schemas.base import BaseSchema, TimestampSchema",
    ]
    create = [request_field(field, patch=False) for field in resource.fields]
    update = [request_field(field, patch=True) for field in resource.fields]
    read = [
        f"    {field.name}: {KINDS[field.type].python}" + (" | None" if field.optional else "")
        for field in resource.fields
    ]
    for field in resource.fields:
        imports += [line for line in KINDS[field.type].imports if "sqlalchemy" not in line]
    used = " ".join(create + update)
    imports += [f"from app.schemas.fields import {name}" for name in sorted(FIELD_TYPES) if name in used]
    if "Field(" in used:
        imports.append("from pydantic import Field")
    return SCHEMAS.substitute(
        words(resource),
        imports=import_lines(imports),
        create="\n".join(create),
        update="\n".join(update),
        read="\n".join(read),
    )


def routes(resource: Resource) -> str:
    return ROUTES.substitute(words(resource))
