"""The command line of ``make resource``: python -m devtools.resource NAME FIELDS [--plural PLURAL] [--owned yes]."""

import argparse
import sys
from pathlib import Path

BACKEND = Path(__file__).resolve().parents[2]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.resource", description=__doc__)
    parser.add_argument("name", nargs="?", default="", help="snake_case, singular: agent, agent_session")
    parser.add_argument(
        "fields", nargs="?", default="", help='space-separated name:type[?][=default][:flags]: "name:str(3..80):unique"'
    )
    parser.add_argument("--plural", default="", help="the plural, where English rules get it wrong")
    parser.add_argument(
        "--owned", default="", help="yes: each row belongs to the caller who created it (a service with bearer auth)"
    )
    args = parser.parse_args(argv)
    sys.path.insert(0, str(BACKEND))  # the service's app package, from any working directory

    from devtools.resource.spec import Refusal, UsageRefusal, parse

    try:
        resource = parse(args.name, args.fields, args.plural, args.owned)
        # Imported only now: a mistyped command is answered before SQLAlchemy and Alembic load.
        from devtools.resource import files
        from devtools.resource.plan import ROUTER, plan

        planned = plan(BACKEND, resource)
    except UsageRefusal as refusal:
        print(refusal, file=sys.stderr)
        return 2
    except Refusal as refusal:
        print(f"error: {refusal}", file=sys.stderr)
        return 2
    except OSError as exc:  # Alembic writes the revision in a scratch folder first
        return failed(exc)
    try:
        files.write(BACKEND, planned.new, ROUTER, planned.router_before, planned.router_after)
    except OSError as exc:
        return failed(exc)
    owned = ", each row its creator's alone" if resource.owned else ""
    print(f"{resource.label} resource at /api/v1/{resource.path}{owned}; written in backend/:")
    for path in planned.new:
        print(f"  {path}")
    print(f"  {ROUTER} (registers {resource.plural}.router)")
    print("Next: make migrate, then make test. The files are yours to change from here on.")
    return 0


def failed(exc: OSError) -> int:
    print(f"error: {exc.filename or 'a file'}: {exc.strerror or exc}; nothing was written", file=sys.stderr)
    return 1


if __name__ == "__main__":
    sys.exit(main())
