"""The Alembic revision that creates a resource's table, written without a database.

The bodies of upgrade() and downgrade() come from ``templates/upgrade.py.j2`` and
``downgrade.py.j2``; Alembic names the file and writes it with the service's
``script.py.mako``, so the revision reads like one from ``make migration``. The
migration tests of the suite check that the models equal what the migrations build.
"""

import os
import tempfile
import uuid
from argparse import Namespace
from pathlib import Path

from alembic.config import Config
from alembic.script import ScriptDirectory

from devtools.resource import render
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


def config(backend: Path) -> Config:
    return Config(str(backend / "alembic.ini"), cmd_opts=Namespace(quiet=True))


def revision(config: Config, down: str | None, resource: Resource) -> tuple[Path, str]:
    """The revision that creates RESOURCE's table after DOWN: where it belongs, and its text (unformatted)."""
    scripts = script_directory(config)
    # Where Alembic would put it: beside the head, else in the (first) version location.
    locations = scripts.version_locations or [str(Path(scripts.dir) / "versions")]
    target = Path(scripts.get_revision(down).path).parent if down is not None else Path(locations[0])
    upgrade, downgrade, imports = render.migration(resource)
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
            upgrades=upgrade,
            downgrades=downgrade,
            imports=imports,
        )
        if script is None:
            raise Refusal("Alembic wrote no revision; check alembic.ini's script_location")
        written = Path(script.path)
        return target / written.name, written.read_text()
