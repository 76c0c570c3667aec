"""Each kind of field in each file: its column, its migration, its schema types, its test values.

The templates (``templates/*.j2``) lay the files out; the expressions they put in come
from here, one table or function per place, so a kind reads the same in every file.
"""

from dataclasses import dataclass

from devtools.resource.spec import SAFE_INTEGER, Field, Resource

# What the model's Mapped[...] and the responses hold (enum: its StrEnum class).
PYTHON = {
    "str": "str",
    "text": "str",
    "int": "int",
    "float": "float",
    "bool": "bool",
    "date": "date",
    "datetime": "datetime",
    "uuid": "UUID",
    "ref": "UUID",
    "json": "dict[str, Any]",
}
# The column type, where the annotation alone would give another (bool, date, uuid: none needed).
COLUMN = {
    "str": "String({high})",
    "text": "Text",
    "int": "BigInteger",
    "float": "Double",
    "datetime": "DateTime(timezone=True)",
    "json": "JSONB(none_as_null=True)",
}
# The same column in the migration, as Alembic writes it.
MIGRATION = {
    "str": "sa.String(length={high})",
    "text": "sa.Text()",
    "int": "sa.BigInteger()",
    "float": "sa.Double()",
    "bool": "sa.Boolean()",
    "date": "sa.Date()",
    "datetime": "sa.DateTime(timezone=True)",
    "uuid": "sa.Uuid()",
    "ref": "sa.Uuid()",
    "json": "postgresql.JSONB()",
    "enum": "sa.String(length=63)",
}
# The type of the field in request bodies and filters (app/schemas/fields.py refuses what the column would,
# and takes exactly the JSON that OpenAPI documents).
REQUEST = {
    "str": "StoredStr",
    "text": "StoredStr",
    "int": "BigInt",
    "float": "StoredFloat",
    "bool": "StoredBool",
    "date": "StoredDate",
    "datetime": "UtcDatetime",
    "uuid": "StoredUUID",
    "ref": "StoredUUID",
    "json": "JsonObject",
}
# A value for the body NUMBER (1, 2, 3), distinct for each number; str, int, float and enum depend on the field.
VALUES = {
    "bool": "number % 2 == 1",
    "date": 'f"2024-01-{number:02d}"',
    "datetime": 'f"2024-01-{number:02d}T12:00:00Z"',
    "uuid": 'f"00000000-0000-4000-8000-{number:012d}"',
    "json": '{"number": number}',
}
# JSON that pydantic's lax mode would read as the field's type and its documented type refuses.
LAX = {
    "str": ["5"],
    "text": ["5"],
    "int": ['"5"', "True"],
    "float": ['"0.5"'],
    "bool": ["1", '"true"'],
    "date": ["0"],
    "datetime": ["0"],
    "uuid": ['"00000000000040008000000000000001"'],
    "ref": ['"00000000000040008000000000000001"'],
}
# A query-string value that the filter's type refuses (a str filter takes any string).
BAD_FILTER = {
    "bool": "maybe",
    "enum": "not-a-value",
    "ref": "not-a-uuid",
    "uuid": "not-a-uuid",
    "int": "x",
    "date": "x",
}


@dataclass(frozen=True)
class View:
    """A field as the templates use it."""

    field: Field
    resource: Resource

    def __getattr__(self, name: str) -> object:
        return getattr(self.field, name)

    @property
    def enum_class(self) -> str:
        return self.resource.enum_class(self.field)

    @property
    def python(self) -> str:
        return self.enum_class if self.field.kind == "enum" else PYTHON[self.field.kind]

    @property
    def nullable(self) -> str:
        return f"{self.python} | None" if self.field.optional else self.python

    @property
    def members(self) -> list[tuple[str, str]]:
        """The enum's (member, value) pairs: ALLOY, "alloy"."""
        return [(value.upper(), value) for value in self.field.values]

    # The model.

    @property
    def column(self) -> str:
        """mapped_column(...)'s arguments, or "" where the annotation says it all."""
        field = self.field
        arguments = []
        if field.kind == "enum":
            arguments.append(f'checked_enum({self.enum_class}, "{field.name}")')
        elif field.kind in COLUMN:
            arguments.append(COLUMN[field.kind].format(high=field.high))
        # An owned resource's: constraints of the table, with owner_id (model.py.j2).
        if field.kind == "ref" and field.name not in self.resource.scoped:
            arguments.append(f'ForeignKey("{field.target}.id", ondelete="{field.on_delete}")')
        if field.unique and not self.resource.owned:
            arguments.append("unique=True")
        if field.default is not None:
            arguments.append(f"server_default={self.server_default}")
        return ", ".join(arguments)

    @property
    def server_default(self) -> str:
        """The column's default: a literal that PostgreSQL reads as the column's type ('true', '0.7', '{}')."""
        default = self.field.default
        if isinstance(default, bool):
            return f'"{str(default).lower()}"'
        return f'"{default!r}"' if isinstance(default, int | float) else repr(default)

    # The migration.

    @property
    def migration(self) -> str:
        field = self.field
        arguments = [f'"{field.name}"', MIGRATION[field.kind].format(high=field.high)]
        if field.default is not None:
            arguments.append(f"server_default={self.server_default}")
        arguments.append(f"nullable={field.optional}")
        return f"sa.Column({', '.join(arguments)})"

    @property
    def check(self) -> str:
        """An enum's CHECK constraint: voice IN ('alloy', 'echo')."""
        return f"{self.field.name} IN ({', '.join(repr(value) for value in self.field.values)})"

    # The schemas.

    @property
    def request(self) -> str:
        field = self.field
        if field.kind == "enum":
            return self.enum_class
        if field.kind == "json" and field.high is not None:
            return f"Annotated[dict[str, Any], StoredJson(max_bytes={field.high})]"
        if field.kind == "int" and (field.low is not None or field.high is not None):
            low = "-(2**53 - 1)" if field.low is None else repr(field.low)
            high = "2**53 - 1" if field.high is None else repr(field.high)
            return f"Annotated[int, Field(ge={low}, le={high}), JsonInteger]"  # its bounds replace BigInt's
        return REQUEST[field.kind]

    @property
    def constraints(self) -> list[str]:
        """Field(...)'s bounds: lengths of strings, values of floats (an int's are in its type, see request)."""
        field = self.field
        if field.kind in ("str", "text"):
            low = [f"min_length={field.low}"] if field.low is not None else []
            return low + ([f"max_length={field.high}"] if field.high is not None else [])
        if field.kind == "float":
            low = [f"ge={field.low!r}"] if field.low is not None else []
            return low + ([f"le={field.high!r}"] if field.high is not None else [])
        return []

    @property
    def python_default(self) -> str:
        default = self.field.default
        if self.field.kind == "enum":
            return f"{self.enum_class}.{str(default).upper()}"
        return repr(default)

    def declaration(self, annotation: str, default: str | None) -> str:
        """name: ANNOTATION = DEFAULT, in Field(...) with the bounds where there are any."""
        if default is None:
            arguments = []
        elif default == "{}":
            arguments = ["default_factory=dict"]
        else:
            arguments = [f"default={default}"]
        arguments += self.constraints
        if not arguments:
            return f"{self.field.name}: {annotation}"
        if arguments == [f"default={default}"]:
            return f"{self.field.name}: {annotation} = {default}"
        return f"{self.field.name}: {annotation} = Field({', '.join(arguments)})"

    @property
    def create(self) -> str:
        field = self.field
        annotation = f"{self.request} | None" if field.optional else self.request
        if field.default is not None:
            default: str | None = "{}" if field.kind == "json" else self.python_default
        else:
            default = "None" if field.optional else None
        return self.declaration(annotation, default)

    @property
    def update(self) -> str:
        annotation = f"{self.request} | None" if self.field.optional else f"Omittable[{self.request}]"
        return self.declaration(annotation, "None")

    @property
    def read(self) -> str:
        return f"{self.field.name}: {self.nullable}"

    @property
    def filter_parameter(self) -> str:
        # A query value is a string: QueryBigInt and QueryBool read the decimal digits or true/false in it.
        if self.field.kind == "int":
            return f"{self.field.name}: Omittable[QueryBigInt] = None"
        if self.field.kind == "bool":
            return f"{self.field.name}: Omittable[QueryBool] = None"
        return f"{self.field.name}: Omittable[{self.request}] = None"

    # The tests.

    @property
    def value(self) -> str:
        """A value for the body NUMBER, within the field's bounds."""
        field = self.field
        if field.kind == "enum":
            return f"{tuple(field.values)!r}[number % {len(field.values)}]"
        if field.kind == "ref":
            # Rows 1 and 3 refer to the same row (a filter finds two), unless the field is unique.
            return f'str(rows["{field.name}"][number % {3 if field.unique else 2}])'
        if field.kind in ("str", "text"):
            return text_value(field.name, field.low, field.high)
        if field.kind == "int":
            low, high = field.low, field.high
            if low is not None:
                return f"min({low} + number, {high})" if high is not None else f"{low} + number"
            return f"{high} - number" if high is not None else "number"
        if field.kind == "float":
            low, high = field.low, field.high
            if low is not None and high is not None:
                return f"{low!r} + {(high - low) / 4!r} * number"
            if low is not None:
                return f"{low!r} + number + 0.5"
            return f"{high!r} - number - 0.5" if high is not None else "number + 0.5"
        return VALUES[field.kind]

    @property
    def beyond(self) -> list[str]:
        """Values just outside the bounds (a 422), as Python expressions."""
        field = self.field
        if field.kind in ("str", "text"):
            short = [f'"x" * {int(field.low) - 1}' if field.low > 1 else '""'] if field.low else []
            return short + ([f'"x" * {int(field.high) + 1}'] if field.high is not None else [])
        if field.kind == "int":
            low = SAFE_INTEGER[0] if field.low is None else field.low
            high = SAFE_INTEGER[1] if field.high is None else field.high
            return [int_literal(low - 1), int_literal(high + 1)]
        if field.kind == "float":
            below = [] if field.low is None else [repr(field.low - 1)]
            return below + ([] if field.high is None else [repr(field.high + 1)])
        if field.kind == "json":
            size = field.high if field.high is not None else "MAX_JSON_BYTES"
            return [f'dict(text="x" * {size})']
        return []

    @property
    def within(self) -> list[str]:
        """The bounds themselves (accepted)."""
        field = self.field
        if field.kind in ("str", "text"):
            return [f'"x" * {int(bound)}' for bound in (field.low, field.high) if bound]
        if field.kind in ("int", "float"):
            return [repr(bound) for bound in (field.low, field.high) if bound is not None]
        return []

    @property
    def lax(self) -> list[str]:
        """Values of another JSON type that the field refuses (a 422), as Python expressions."""
        return LAX.get(self.field.kind, [])

    @property
    def bad_filter(self) -> str | None:
        return BAD_FILTER.get(self.field.kind)


def text_value(name: str, low: float | None, high: float | None) -> str:
    """The field's name and the number (name-1) where that fits the bounds, else the number padded to the shortest."""
    if (low or 0) <= len(name) + 2 <= (high if high is not None else len(name) + 2):
        return 'f"' + name + '-{number}"'
    return f"str(number).zfill({max(int(low or 1), 1)})"


def int_literal(value: float) -> str:
    """-(2**53 - 1) - 1 for -9007199254740992: the safe integers' limits read as such."""
    for limit, text in ((SAFE_INTEGER[0] - 1, "-(2**53 - 1) - 1"), (SAFE_INTEGER[1] + 1, "2**53")):
        if value == limit:
            return text
    return repr(value)
