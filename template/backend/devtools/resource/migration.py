"""The Alembic revision that creates a resource's table, written without a database.

The operations come from the model's own ``Table`` (the ones autogenerate would compare
against an empty database); Alembic renders them and the service's ``script.py.mako``,
so the revision reads like one from ``make migration``. The migration tests of the
suite then check that the models equal what the migrations build.
"""

import os
import tempfile
import uuid
from argparse import Namespace
from pathlib import Path

from alembic.autogenerate import render_python_code
from alembic.config import Config
from alembic.operations import ops
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy import Table

from devtools.resource.spec import Refusal, Resource

SEPARATORS = {"os": os.pathsep, ":": ":", ";": ";", "space": " ", "newline": "\n"}


def script_directory(config: Config) -> ScriptDirectory:
    return ScriptDirectory.from_config(config)


def head(config: Config) -> str | None:
    """The revision a new one follows; a Refusal when the history has several heads."""
    heads = script_directory(config).get_heads()
    if len(heads) > 1:
        raise Refusal(
            f"the migrations have {len(heads)} heads ({', '.join(heads)}): join them first with "
            '`alembic merge heads -m "merge heads"` in backend/'
        )
    return heads[0] if heads else None


def render(operations: ops.UpgradeOps | ops.DowngradeOps) -> str:
    context = MigrationContext.configure(dialect_name="postgresql")
    code = render_python_code(operations, migration_context=context)
    # Alembic's banner lines say "auto generated"; these commands were not.
    return "\n".join(line for line in code.splitlines() if not line.strip().startswith("# ###")).strip()


def config(backend: Path) -> Config:
    return Config(str(backend / "alembic.ini"), cmd_opts=Namespace(quiet=True))


def revision(config: Config, down: str | None, resource: Resource, table: Table) -> tuple[Path, str]:
    """The revision that creates TABLE after DOWN: the path it belongs at and its text (not yet formatted)."""
    scripts = script_directory(config)
    # Where Alembic would put it: beside the head, else in the (first) version location.
    locations = scripts.version_locations or [str(Path(scripts.dir) / "versions")]
    target = Path(scripts.get_revision(down).path).parent if down is not None else Path(locations[0])
    upgrade = ops.UpgradeOps(
        ops=[ops.CreateTableOp.from_table(table), *(ops.CreateIndexOp.from_index(index) for index in table.indexes)]
    )
    with tempfile.TemporaryDirectory(prefix="resource-revision-") as scratch:
        # Alembic writes the file (named by alembic.ini's file_template) in a version
        # location of its own, with no post-write hook: ruff runs later, on every new file.
        separator = SEPARATORS.get(config.get_main_option("path_separator") or "space", " ")
        config.set_main_option("version_locations", separator.join([*locations, scratch]).replace("%", "%%"))
        config.set_section_option("post_write_hooks", "hooks", "")
        script = script_directory(config).generate_revision(
            uuid.uuid4().hex[-12:],
            f"create {resource.plural}",
            head="head",
            version_path=scratch,
            upgrades=render(upgrade),
            downgrades=render(upgrade.reverse()),
            imports="",
        )
        if script is None:
            raise Refusal("Alembic wrote no revision; check alembic.ini's script_location")
        written = Path(script.path)
        return target / written.name, written.read_text()
