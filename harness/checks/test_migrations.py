"""A team's first table, through the service's own commands, on a throwaway PostgreSQL.

`make migrate` on an empty database; a model in app/models/ and `make migration`
write a revision that creates its table and passes `make lint` as written; `make
migrate` applies it, `alembic downgrade -1` reverts it; the service's migration tests
(`make test ARGS=tests/migrations`) pass with it, and fail once the model changes
without a migration.

Runs on the rendered service's Python (for its devtools.servers and SQLAlchemy), at
the end of the `generated` sessions.
"""

import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import clean_env, completed, run, table_names

MODEL = '''"""Widgets: the team's first table."""

from sqlalchemy import String
from sqlalchemy.orm import Mapped, mapped_column

from app.db import Base, TimestampMixin, UUIDPrimaryKeyMixin


class Widget(UUIDPrimaryKeyMixin, TimestampMixin, Base):
    __tablename__ = "widgets"

    name: Mapped[str] = mapped_column(String(100), unique=True)
'''
# The same model with one more column, and no migration for it.
DRIFTED = MODEL + "    size: Mapped[int]\n"


@pytest.fixture(scope="module")
def env(service_dir: Path, database_url: str) -> Iterator[dict[str, str]]:
    """The environment of a developer whose backend/.env comes from .env.example, pointed at the throwaway database."""
    dot_env, example = service_dir / "backend" / ".env", service_dir / "backend" / ".env.example"
    created = not dot_env.exists()
    if created:
        shutil.copy(example, dot_env)
    yield {**clean_env(), "DATABASE_URL": database_url}
    if created:
        dot_env.unlink()


@pytest.fixture(scope="module")
def revisions(service_dir: Path) -> Iterator[set[Path]]:
    """The revisions the service shipped with; any written by the checks is removed afterwards."""
    versions = service_dir / "backend" / "alembic" / "versions"
    shipped = set(versions.glob("*.py"))
    yield shipped
    for written in set(versions.glob("*.py")) - shipped:
        written.unlink()


@pytest.fixture(scope="module")
def model(service_dir: Path) -> Iterator[Path]:
    path = service_dir / "backend" / "app" / "models" / "widget.py"
    yield path
    path.unlink(missing_ok=True)


def test_make_migrate_on_an_empty_database(service_dir: Path, env: dict[str, str], database_url: str) -> None:
    run(["make", "migrate"], service_dir, 600, env)
    assert table_names(database_url) <= {"alembic_version"}


def test_a_model_and_make_migration_give_a_revision_that_creates_its_table(
    service_dir: Path, env: dict[str, str], model: Path, revisions: set[Path]
) -> None:
    model.write_text(MODEL)
    run(["make", "migration", "m=add widgets"], service_dir, 600, env)
    written = set(model.parents[2].joinpath("alembic", "versions").glob("*.py")) - revisions
    assert len(written) == 1, f"expected one new revision, got {sorted(p.name for p in written)}"
    (revision,) = written
    text = revision.read_text()
    assert 'op.create_table(\n        "widgets",' in text, text
    assert 'op.drop_table("widgets")' in text, text
    before = text
    run(["make", "lint"], service_dir, 600, env)
    assert revision.read_text() == before


def test_make_migrate_applies_it_and_downgrade_reverts_it(
    service_dir: Path, env: dict[str, str], database_url: str
) -> None:
    run(["make", "migrate"], service_dir, 600, env)
    assert "widgets" in table_names(database_url)
    run([sys.executable, "-m", "alembic", "downgrade", "-1"], service_dir / "backend", 600, env)
    assert "widgets" not in table_names(database_url)
    run(["make", "migrate"], service_dir, 600, env)


def test_make_test_passes_with_the_model_and_its_migration(
    service_dir: Path, env: dict[str, str], database_url: str
) -> None:
    # The service's migration checks with the team's revision; the whole suite runs with
    # generated models and revisions in test_resource.py. DATABASE_URL is set: the suite
    # builds its own database on that server and leaves this one alone.
    run(["make", "test", "ARGS=tests/migrations"], service_dir, 600, env)
    assert "widgets" in table_names(database_url), "make test changed the database DATABASE_URL names"


def test_make_test_fails_once_the_model_drifts_from_its_migrations(
    service_dir: Path, env: dict[str, str], model: Path
) -> None:
    model.write_text(DRIFTED)
    try:
        # The same migration checks as above, now with a model its revisions do not match.
        result = completed(["make", "test", "ARGS=tests/migrations"], service_dir, 600, env)
    finally:
        model.write_text(MODEL)
    output = result.stdout + result.stderr
    assert result.returncode != 0, output[-3000:]
    assert "FAILED tests/migrations/test_migrations.py::test_models_match_the_migrations" in output, output[-3000:]
    assert "'add_column', None, 'widgets', Column('size'" in output, output[-3000:]
