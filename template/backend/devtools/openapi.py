"""The API contract: ``backend/openapi.json``, the app's OpenAPI document under its default settings.

    python -m devtools.openapi           write it (``make openapi``)
    python -m devtools.openapi --check   exit 1 with a diff if the app's document differs

A change of the file is a change of the contract that clients are generated from.
"""

import argparse
import difflib
import json
import sys
from pathlib import Path
from typing import Any

BACKEND = Path(__file__).resolve().parents[1]
SNAPSHOT = BACKEND / "openapi.json"


def document() -> dict[str, Any]:
    """The app's OpenAPI document, from the settings' defaults: neither the environment nor .env changes it."""
    from app.core.config import Settings
    from app.main import create_app

    # Defaults only, unvalidated; the settings without a default (the database and Redis URLs,
    # the token issuer) get a placeholder: the document depends on none of them.
    required = [name for name, field in Settings.model_fields.items() if field.is_required()]
    placeholders: dict[str, Any] = dict.fromkeys(required, "unused")
    return create_app(Settings.model_construct(**placeholders)).openapi()


def dump(spec: dict[str, Any]) -> str:
    return json.dumps(spec, indent=2, ensure_ascii=False) + "\n"


def difference(spec: dict[str, Any]) -> str:
    """A unified diff from the committed snapshot to SPEC; empty when they agree."""
    try:
        committed: Any = json.loads(SNAPSHOT.read_text(encoding="utf-8"))
    except FileNotFoundError:
        committed = {}
    if committed == spec:
        return ""
    lines = difflib.unified_diff(
        dump(committed).splitlines(keepends=True),
        dump(spec).splitlines(keepends=True),
        fromfile="openapi.json (committed)",
        tofile="openapi.json (the app)",
    )
    return "".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.openapi", description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only compare; exit 1 with a diff if they differ")
    args = parser.parse_args(argv)
    sys.path.insert(0, str(BACKEND))  # the service's app package, from any working directory
    spec = document()
    if args.check:
        diff = difference(spec)
        print(diff or "backend/openapi.json matches the app", file=sys.stderr if diff else sys.stdout)
        return 1 if diff else 0
    SNAPSHOT.write_text(dump(spec), encoding="utf-8")
    print("wrote backend/openapi.json")
    return 0


if __name__ == "__main__":
    sys.exit(main())
