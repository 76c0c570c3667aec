"""Column types the models share, beyond SQLAlchemy's own."""

from enum import StrEnum

from sqlalchemy import Enum

# PostgreSQL's longest name, and so the longest label its own enum types take.
ENUM_LENGTH = 63


def checked_enum(values: type[StrEnum], name: str) -> Enum:
    """A varchar(63) that holds one of VALUES' values, read back as the member.

    A CHECK constraint, named ck_<table>_<NAME>, lists the values; not a PostgreSQL enum
    type: a value is added or removed by replacing the constraint in a migration, which
    runs in a transaction and is undone the same way (backend/README.md, "Enums").
    """
    return Enum(
        values,
        name=name,
        native_enum=False,
        create_constraint=True,
        length=ENUM_LENGTH,
        # The values ("alloy") are stored, not the members' names (ALLOY).
        values_callable=lambda members: [member.value for member in members],
    )
