"""What ``make resource`` was asked for: NAME, FIELDS and PLURAL, read and checked.

FIELDS is space-separated; each field is ``name:type[?][=default][:flag...]``:

    name:str(3..80):unique:sort voice:enum(alloy,echo,verse)=alloy:filter config:json={}
    temperature:float(0..2)=0.7 enabled:bool=true:filter agent_id:ref(agents):cascade

Everything here is checked from the arguments alone; what depends on the service's
files (the tables a ref names, the modules it has) is checked in ``plan.py``.
"""

import keyword
import math
import re
from dataclasses import dataclass, replace

USAGE = (
    'usage: make resource NAME=agent FIELDS="name:str(3..80):unique voice:enum(alloy,echo)=alloy:filter '
    'enabled:bool=true:filter" [PLURAL=agents] [OWNED=yes]  (the grammar: backend/README.md, "Add a resource")'
)
TYPES = (
    "str, str(N), str(M..N), text, text(M..N), int, int(M..N), float, float(M..N), bool, date, datetime, uuid, "
    "json, json(N bytes), enum(a,b,...), ref(table)"
)
SHAPE = "name:type, then ? for an optional field, =value for a default and :flags (name:str(3..80):unique)"
FLAGS = {
    "unique": "a unique constraint",
    "filter": "an equality filter of the list",
    "sort": "a key of the list's ?sort=",
    "restrict": "a ref whose row cannot be deleted while this one refers to it (the default)",
    "cascade": "a ref whose row takes this one with it when deleted",
}
SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*\Z")
TYPE = re.compile(r"(?P<kind>[a-z]+)(?:\((?P<arguments>[^()]*)\))?(?P<optional>\?)?(?:=(?P<default>.*))?\Z", re.DOTALL)
INTEGER = re.compile(r"-?[0-9]+\Z")
DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?\Z")
ENUM_VALUE = re.compile(r"[a-z][a-z0-9_]*\Z")
# PostgreSQL's longest varchar(N), and its longest name (table, column, constraint, index, enum label).
MAX_LENGTH = 10485760
MAX_IDENTIFIER = 63
# A varchar longer than this may not fit a b-tree index entry (about 2700 bytes, 4 per character).
MAX_INDEXED_LENGTH = 600
STR_LENGTH = 255  # str without a bound
MIN_JSON_BYTES = 64  # json(N): a smaller document has no room for a real one
# An int's bounds and default: JSON's safe integers, which every client reads exactly (the column is a bigint).
SAFE_INTEGER = (-(2**53 - 1), 2**53 - 1)
# Columns every resource has (UUIDPrimaryKeyMixin, TimestampMixin).
COMMON_COLUMNS = ("id", "created_at", "updated_at")
# Query parameters of every list: a filter with one of these names would hide it.
LIST_PARAMETERS = ("page", "page_size", "sort")
# Kinds a flag applies to.
FILTERABLE = ("bool", "enum", "ref", "uuid", "int", "str", "date")
SORTABLE = ("str", "int", "float", "bool", "date", "datetime", "enum")
NO_DEFAULT = ("date", "datetime", "uuid", "ref")
# OWNED= : "yes" for an owned resource; "" (left out) or "no" for a public one.
OWNED = ("", "no", "yes")
OWNER = "owner_id"  # an owned resource's column: its creator's token's subject
KINDS = ("str", "text", "int", "float", "bool", "date", "datetime", "uuid", "json", "enum", "ref")


class Refusal(Exception):
    """Nothing was written: the message (one line) says what is accepted instead."""


class UsageRefusal(Refusal):
    """NAME or FIELDS is missing: the message is the usage line."""


Number = int | float


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # str text int float bool date datetime uuid json enum ref
    optional: bool = False  # nullable column, optional in the request
    unique: bool = False
    filter: bool = False
    sort: bool = False
    # str and text: the fewest and most characters (str: the most is its varchar's length);
    # int and float: the least and greatest value; json: the most bytes (high).
    low: Number | None = None
    high: Number | None = None
    default: bool | int | float | str | None = None  # json: "{}"
    values: tuple[str, ...] = ()  # enum
    target: str | None = None  # ref: the table referred to
    on_delete: str = "RESTRICT"  # ref: or CASCADE

    @property
    def pascal(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("_"))

    @property
    def indexed(self) -> bool:
        """A filter, or a ref: an index that starts with the column, in the list's default order."""
        return self.filter or self.kind == "ref"


@dataclass(frozen=True)
class Index:
    name: str
    columns: tuple[str, ...]
    why: str  # the comment above it in the model


@dataclass(frozen=True)
class Resource:
    name: str  # snake_case singular: agent_session
    plural: str  # snake_case plural: agent_sessions (the table, the routes module)
    fields: tuple[Field, ...]
    owned: bool = False  # OWNED=yes: each row belongs to the caller who created it (owner_id)
    # An owned resource's refs to owned tables (field names): a row of the same owner only.
    scoped: tuple[str, ...] = ()

    @property
    def model(self) -> str:
        return "".join(part.capitalize() for part in self.name.split("_"))

    @property
    def path(self) -> str:
        """The routes' prefix under /api/v1: agent-sessions."""
        return self.plural.replace("_", "-")

    @property
    def label(self) -> str:
        """As a sentence starts with it: Agent session."""
        return self.name.replace("_", " ").capitalize()

    def enum_class(self, field: Field) -> str:
        return self.model + field.pascal

    @property
    def sorts(self) -> tuple[str, ...]:
        """The keys of ?sort=: created_at, then the fields marked :sort."""
        return ("created_at", *(field.name for field in self.fields if field.sort))

    def per_owner(self, field: Field) -> bool:
        """Whether FIELD's index starts with owner_id: every list of an owned resource is one owner's rows.

        Not a ref to a public table: PostgreSQL's check of its foreign key looks rows up by it alone.
        """
        return self.owned and (field.kind != "ref" or field.name in self.scoped)

    @property
    def indexes(self) -> tuple[Index, ...]:
        """The model's indexes besides its unique constraints: the list's order, its filters, its sorts, its refs."""
        owner: tuple[str, ...] = ("owner_id",) if self.owned else ()
        order = (*owner, "created_at", "id")
        lists = "An owner's list is" if self.owned else "Lists are"
        found = [
            Index(
                f"ix_{self.plural}_{'_'.join(order)}",
                order,
                f"{lists} ordered by creation, then id: this index serves a page without sorting the table.",
            )
        ]
        for field in self.fields:
            owner = ("owner_id",) if self.per_owner(field) else ()
            if field.indexed:
                why = f"?{field.name}= in the list's order" if field.filter else "the rows that refer to one"
                if field.kind == "ref":
                    why += f" (and the check that a row of {field.target} deleted leaves none behind)"
                columns: tuple[str, ...] = (*owner, field.name, "created_at", "id")
                found.append(Index(f"ix_{self.plural}_{'_'.join(columns)}", columns, why))
            if field.sort and not field.unique:
                columns = (*owner, field.name, "id")
                found.append(Index(f"ix_{self.plural}_{'_'.join(columns)}", columns, f"?sort={field.name}"))
        return tuple(found)

    @property
    def identifiers(self) -> tuple[str, ...]:
        """Every name the table's migration gives PostgreSQL: indexes and constraints."""
        names = [f"pk_{self.plural}", *(index.name for index in self.indexes)]
        names += [f"uq_{self.plural}_id_owner_id"] if self.owned else []
        for field in self.fields:
            names += [f"uq_{self.plural}_{field.name}"] if field.unique else []
            names += [f"ck_{self.plural}_{field.name}"] if field.kind == "enum" else []
            names += [f"fk_{self.plural}_{field.name}_{field.target}"] if field.kind == "ref" else []
        return tuple(names)


def pluralize(word: str) -> str:
    """English rules for the last word: box -> boxes, category -> categories, day -> days."""
    if re.search(r"(s|x|z|ch|sh)\Z", word):
        return word + "es"
    if re.search(r"[^aeiou]y\Z", word):
        return word[:-1] + "ies"
    return word + "s"


def check_name(variable: str, value: str) -> None:
    if not SNAKE_CASE.match(value):
        raise Refusal(
            f"{variable}={value} is not snake_case: use lowercase letters, digits and single underscores, "
            "starting with a letter (agent, agent_session)"
        )
    if keyword.iskeyword(value):
        raise Refusal(f"{variable}={value} is a Python keyword; choose another name")


def number(text: str, kind: str, what: str) -> Number:
    """TEXT as KIND's number (int or float), or a Refusal that names WHAT it was for."""
    if kind == "int":
        if not INTEGER.match(text) or not SAFE_INTEGER[0] <= int(text) <= SAFE_INTEGER[1]:
            raise Refusal(f"{what}: {text!r} is not an integer within ±(2**53 - 1), what a JSON client reads exactly")
        return int(text)
    if not DECIMAL.match(text) or not math.isfinite(float(text)):
        raise Refusal(f"{what}: {text!r} is not a decimal number (0.7, -2, 10.5)")
    return float(text)


def bounds(token: str, kind: str, arguments: str) -> tuple[Number | None, Number | None]:
    """The M and N of (M..N), (M..), (..N); for str, (N) too."""
    low_text, dots, high_text = arguments.partition("..")
    if not dots:
        if kind != "str":
            raise Refusal(f"FIELDS: {token!r}: bounds are written {kind}(M..N), {kind}(M..) or {kind}(..N)")
        low_text, high_text = "", arguments
    if not low_text and not high_text:
        raise Refusal(f"FIELDS: {token!r}: give at least one bound, as {kind}(M..N), {kind}(M..) or {kind}(..N)")
    parse = "int" if kind in ("str", "text", "int") else "float"
    low = number(low_text, parse, f"FIELDS: {token!r}") if low_text else None
    high = number(high_text, parse, f"FIELDS: {token!r}") if high_text else None
    if low is not None and high is not None and low > high:
        raise Refusal(f"FIELDS: {token!r}: the lower bound is above the upper one")
    if kind == "str" and high is not None and not 1 <= high <= MAX_LENGTH:
        raise Refusal(f"FIELDS: {token!r}: N in str(N) is 1 to {MAX_LENGTH}")
    if kind in ("str", "text") and ((low is not None and low < 0) or (high is not None and high < 1)):
        raise Refusal(f"FIELDS: {token!r}: a length is at least 0, and the longest at least 1")
    return low, high


def enum_values(token: str, arguments: str) -> tuple[str, ...]:
    values = tuple(arguments.split(","))
    for value in values:
        if not ENUM_VALUE.match(value) or len(value) > MAX_IDENTIFIER:
            raise Refusal(
                f"FIELDS: {token!r}: {value!r} is not an enum value: lowercase letters, digits and underscores, "
                f"starting with a letter, at most {MAX_IDENTIFIER} characters (enum(alloy,echo,verse))"
            )
    if len(set(values)) != len(values):
        raise Refusal(f"FIELDS: {token!r}: a value appears twice")
    return values


def default_value(token: str, kind: str, text: str, field: Field) -> bool | int | float | str:
    what = f"FIELDS: {token!r}: the default"
    if kind in NO_DEFAULT:
        raise Refusal(f"FIELDS: {token!r}: {', '.join(NO_DEFAULT)} fields take no default")
    if kind == "bool":
        if text not in ("true", "false"):
            raise Refusal(f"{what} of a bool is true or false")
        return text == "true"
    if kind == "json":
        if text != "{}":
            raise Refusal(what + " of a json field is {}, the empty object")
        return text
    if kind == "enum":
        if text not in field.values:
            raise Refusal(f"{what} {text!r} is not one of {', '.join(field.values)}")
        return text
    if kind in ("int", "float"):
        value = number(text, kind, what)
        if (field.low is not None and value < field.low) or (field.high is not None and value > field.high):
            raise Refusal(f"{what} {text} is outside the bounds")
        return value
    if not text or (field.low is not None and len(text) < field.low) or len(text) > (field.high or MAX_LENGTH):
        raise Refusal(f"{what} {text!r} is not within the bounds of the length")
    return text


def check_flag_names(token: str, kind: str, flags: list[str]) -> None:
    for flag in flags:
        if flag not in FLAGS:
            accepted = "; ".join(f":{name} {what}" for name, what in FLAGS.items())
            hint = " (a reference to another resource is name:ref(table))" if flag.startswith("fk") else ""
            raise Refusal(f"FIELDS: {token!r}: {flag!r} is not a flag{hint}; the flags: {accepted}")
        if flags.count(flag) > 1:
            raise Refusal(f"FIELDS: {token!r}: :{flag} appears twice")
    if ("restrict" in flags or "cascade" in flags) and kind != "ref":
        raise Refusal(f"FIELDS: {token!r}: :restrict and :cascade are for ref(table) fields")
    if "restrict" in flags and "cascade" in flags:
        raise Refusal(f"FIELDS: {token!r}: a ref is :restrict or :cascade, not both")


def check_flags(token: str, field: Field) -> None:
    kind = field.kind
    if field.unique and kind in ("bool", "enum", "json"):
        raise Refusal(f"FIELDS: {token!r}: :unique is not for bool, enum or json fields; drop it")
    if field.filter and kind not in FILTERABLE:
        raise Refusal(f"FIELDS: {token!r}: :filter is for {', '.join(FILTERABLE)} fields (equality on a {kind} is not)")
    if field.filter and field.name in LIST_PARAMETERS:
        raise Refusal(f"FIELDS: {token!r}: ?{field.name}= is a parameter of every list; rename the field to filter it")
    if field.sort and kind not in SORTABLE:
        raise Refusal(f"FIELDS: {token!r}: :sort is for {', '.join(SORTABLE)} fields")
    indexed = field.unique or field.filter or field.sort
    if indexed and (kind == "text" or (kind == "str" and (field.high or 0) > MAX_INDEXED_LENGTH)):
        raise Refusal(
            f"FIELDS: {token!r}: an index entry holds about {MAX_INDEXED_LENGTH} characters: :unique, :filter "
            f"and :sort take str(N) with N up to {MAX_INDEXED_LENGTH}, not text"
        )


def parse_field(token: str) -> Field:
    name, _, rest = token.partition(":")
    spec, *flags = rest.split(":")
    match = TYPE.match(spec)
    if not name or not match:
        raise Refusal(f"FIELDS: {token!r} is not {SHAPE}")
    if not SNAKE_CASE.match(name) or keyword.iskeyword(name):
        raise Refusal(
            f"FIELDS: {name!r} is not a field name: snake_case (lowercase letters, digits and single "
            "underscores, starting with a letter), and not a Python keyword"
        )
    if len(name) > MAX_IDENTIFIER:
        raise Refusal(f"FIELDS: {name!r} is longer than PostgreSQL's {MAX_IDENTIFIER} characters for a column")
    if name in COMMON_COLUMNS:
        raise Refusal(f"FIELDS: {name!r} is reserved: every resource has {', '.join(COMMON_COLUMNS)}")
    kind, arguments = match["kind"], match["arguments"]
    if kind not in KINDS:
        raise Refusal(f"FIELDS: {token!r} has an unknown type; the types are {TYPES}")
    check_flag_names(token, kind, flags)
    marked = {flag: flag in flags for flag in ("unique", "filter", "sort")}
    field = Field(name, kind, bool(match["optional"]), marked["unique"], marked["filter"], marked["sort"])
    if kind in ("enum", "ref"):
        if not arguments:
            raise Refusal(f"FIELDS: {token!r}: {kind} needs its {'values' if kind == 'enum' else 'table'}: {kind}(...)")
        if kind == "enum":
            field = replace(field, values=enum_values(token, arguments))
        else:
            if not SNAKE_CASE.match(arguments):
                raise Refusal(f"FIELDS: {token!r}: ref(table) names a table, snake_case: ref(agents)")
            field = replace(field, target=arguments, on_delete="CASCADE" if "cascade" in flags else "RESTRICT")
    elif kind in ("str", "text", "int", "float"):
        low, high = bounds(token, kind, arguments) if arguments is not None else (None, None)
        field = replace(field, low=low, high=STR_LENGTH if kind == "str" and high is None else high)
    elif kind == "json" and arguments is not None:
        if not INTEGER.match(arguments) or int(arguments) < MIN_JSON_BYTES:
            raise Refusal(f"FIELDS: {token!r}: json(N) takes the most bytes of the document, {MIN_JSON_BYTES} or more")
        field = replace(field, high=int(arguments))
    elif arguments is not None:
        raise Refusal(f"FIELDS: {token!r}: a {kind} takes no (...); the types are {TYPES}")
    if match["default"] is not None:
        field = replace(field, default=default_value(token, kind, match["default"], field))
    check_flags(token, field)
    return field


def parse(name: str, fields: str, plural: str = "", owned: str = "") -> Resource:
    """The resource NAME with FIELDS (space-separated), owned by its creator if OWNED is yes; or a Refusal."""
    if not name.strip() or not fields.strip():
        raise UsageRefusal(USAGE)
    check_name("NAME", name)
    plural = plural or "_".join([*name.split("_")[:-1], pluralize(name.split("_")[-1])])
    check_name("PLURAL", plural)
    if plural == name:
        raise Refusal(f"PLURAL={plural} is NAME itself; the plural names the table and the routes module")
    parsed = [parse_field(token) for token in fields.split()]
    seen: set[str] = set()
    for field in parsed:
        if field.name in seen:
            raise Refusal(f"FIELDS: {field.name!r} appears twice; name each field once")
        seen.add(field.name)
    if owned not in OWNED:
        raise Refusal(f"OWNED={owned}: OWNED=yes makes a resource whose rows belong to their creator; or leave it out")
    if owned == "yes" and OWNER in seen:
        raise Refusal(f"FIELDS: {OWNER!r} is reserved: an owned resource has it, the subject of its creator's token")
    check_identifiers(resource := Resource(name, plural, tuple(parsed), owned=owned == "yes"))
    return resource


def check_identifiers(resource: Resource) -> None:
    """Every name the migration gives PostgreSQL fits, and names one thing."""
    if too_long := [name for name in resource.identifiers if len(name) > MAX_IDENTIFIER]:
        raise Refusal(
            f"{too_long[0]} is longer than PostgreSQL's {MAX_IDENTIFIER} characters; use a shorter PLURAL"
            f"{'' if too_long[0] == resource.indexes[0].name else ' or field name'}"
        )
    if twice := sorted({name for name in resource.identifiers if resource.identifiers.count(name) > 1}):
        raise Refusal(f"two indexes would be named {twice[0]}; rename one of the fields")
