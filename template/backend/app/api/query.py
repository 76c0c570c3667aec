"""Query parameter types that take exactly what OpenAPI documents for them.

Query values arrive as strings. pydantic's lax mode reads more than an OpenAPI
integer or boolean: "1.0", " 1" and "1_000" as 1, "yes", "on" and "t" as true.
"""

import re
from typing import Annotated, Any

from pydantic import BeforeValidator, Field

_INTEGER = re.compile(r"-?[0-9]+")
_BOOLEANS = {"true": True, "false": False}


def _integer(value: Any) -> Any:
    if isinstance(value, str) and not _INTEGER.fullmatch(value):
        raise ValueError("must be a whole number written in decimal digits")
    return value


def _boolean(value: Any) -> Any:
    if isinstance(value, str):
        if value not in _BOOLEANS:
            raise ValueError("must be true or false")
        return _BOOLEANS[value]
    return value


# ?page=2; not 2.0 or 2_0.
QueryInt = Annotated[int, BeforeValidator(_integer)]
# A bigint column's filter, within what a JSON client holds exactly (app.schemas.fields.BigInt).
QueryBigInt = Annotated[int, Field(ge=-(2**53 - 1), le=2**53 - 1), BeforeValidator(_integer)]
# ?enabled=true or ?enabled=false; not 1, yes or on.
QueryBool = Annotated[bool, BeforeValidator(_boolean)]
