"""What ``make resource`` was asked for: NAME, FIELDS and PLURAL, read and checked.

Everything here is checked from the arguments alone; what depends on the service's
files (names its modules and tables already use) is checked in ``plan.py``.
"""

import keyword
import re
from dataclasses import dataclass

USAGE = 'usage: make resource NAME=agent FIELDS="name:str:unique description:text? max_sessions:int" [PLURAL=agents]'
TYPES = ("str", "str(N)", "text", "int", "float", "bool", "date", "datetime", "uuid")
ACCEPTED_FIELD = "name:type, with ? after the type for an optional field and :unique for a unique one"
SNAKE_CASE = re.compile(r"[a-z][a-z0-9]*(?:_[a-z0-9]+)*\Z")
FIELD = re.compile(r"(?P<type>[a-z]+)(?:\((?P<length>[0-9]+)\))?(?P<optional>\?)?\Z")
# PostgreSQL's longest varchar(N), and its longest name (table, column, constraint, index).
MAX_LENGTH = 10485760
MAX_IDENTIFIER = 63
# Columns every resource has (UUIDPrimaryKeyMixin, TimestampMixin).
COMMON_COLUMNS = ("id", "created_at", "updated_at")


class Refusal(Exception):
    """Nothing was written: the message (one line) says what is accepted instead."""


class UsageRefusal(Refusal):
    """NAME or FIELDS is missing: the message is the usage line."""


@dataclass(frozen=True)
class Field:
    name: str
    type: str  # one of TYPES, with "str" for str(N)
    length: int | None = None  # of a str
    optional: bool = False  # nullable column, optional in the request
    unique: bool = False


@dataclass(frozen=True)
class Resource:
    name: str  # snake_case singular: agent_session
    plural: str  # snake_case plural: agent_sessions (the table, the routes module)
    fields: tuple[Field, ...]

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

    @property
    def index(self) -> str:
        return f"ix_{self.plural}_created_at_id"


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


def parse_field(text: str) -> Field:
    name, _, rest = text.partition(":")
    kind, _, unique = rest.partition(":")
    match = FIELD.match(kind)
    if not name or not match or unique not in ("", "unique"):
        raise Refusal(f"FIELDS: {text!r} is not {ACCEPTED_FIELD} (name:str:unique description:text?)")
    if not SNAKE_CASE.match(name) or keyword.iskeyword(name):
        raise Refusal(
            f"FIELDS: {name!r} is not a field name: snake_case (lowercase letters, digits and single "
            "underscores, starting with a letter), and not a Python keyword"
        )
    if len(name) > MAX_IDENTIFIER:
        raise Refusal(f"FIELDS: {name!r} is longer than PostgreSQL's {MAX_IDENTIFIER} characters for a column")
    if name in COMMON_COLUMNS:
        raise Refusal(f"FIELDS: {name!r} is reserved: every resource has {', '.join(COMMON_COLUMNS)}")
    type_, length = match["type"], match["length"]
    if type_ not in TYPES or (length is not None and type_ != "str"):
        raise Refusal(f"FIELDS: {text!r} has an unknown type; the types are {', '.join(TYPES)}")
    if length is not None and not 1 <= int(length) <= MAX_LENGTH:
        raise Refusal(f"FIELDS: {text!r}: N in str(N) is 1 to {MAX_LENGTH}")
    if type_ == "bool" and unique:
        raise Refusal(f"FIELDS: {text!r}: a bool cannot be unique (two rows would use up its values); drop :unique")
    size = (int(length) if length else 255) if type_ == "str" else None
    return Field(name, type_, size, bool(match["optional"]), bool(unique))


def parse(name: str, fields: str, plural: str = "") -> Resource:
    """The resource NAME with FIELDS (space-separated), or a Refusal."""
    if not name.strip() or not fields.strip():
        raise UsageRefusal(USAGE)
    check_name("NAME", name)
    plural = plural or "_".join([*name.split("_")[:-1], pluralize(name.split("_")[-1])])
    check_name("PLURAL", plural)
    if plural == name:
        raise Refusal(f"PLURAL={plural} is NAME itself; the plural names the table and the routes module")
    parsed = [parse_field(text) for text in fields.split()]
    seen: set[str] = set()
    for field in parsed:
        if field.name in seen:
            raise Refusal(f"FIELDS: {field.name!r} appears twice; name each field once")
        seen.add(field.name)
    resource = Resource(name, plural, tuple(parsed))
    names = [resource.index, *(f"uq_{plural}_{field.name}" for field in parsed if field.unique)]
    if too_long := [name for name in names if len(name) > MAX_IDENTIFIER]:
        raise Refusal(
            f"{too_long[0]} is longer than PostgreSQL's {MAX_IDENTIFIER} characters; use a shorter "
            f"{'PLURAL' if too_long[0] == resource.index else 'PLURAL or field name'}"
        )
    return resource
