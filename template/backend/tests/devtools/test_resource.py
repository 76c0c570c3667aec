"""`make resource` (devtools/resource): what it accepts, what it writes, and that a refusal writes nothing.

The generator runs as `make resource` runs it (python -m devtools.resource), in a copy of
backend/, so that nothing it writes reaches this service. The suite of a generated
resource, on the real database, is what the resource's own test module checks.
"""

import hashlib
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from devtools.resource.plan import ROUTER, check_names, generated_sources
from devtools.resource.registration import check, register
from devtools.resource.spec import Field, Refusal, UsageRefusal, parse, pluralize
from tests.conftest import BACKEND_DIR

COPIED = ("app", "alembic", "devtools", "alembic.ini", "pyproject.toml", "tests/__init__.py", "tests/api")
# Names a service is unlikely to have already: the copy holds the resources the team made.
SPECIMEN = ("specimen", "name:str:unique description:text? weight:int enabled:bool")


@pytest.fixture
def backend(tmp_path: Path) -> Path:
    """A copy of backend/ with what the generator reads and writes."""
    copy = tmp_path / "backend"
    ignore = shutil.ignore_patterns("__pycache__", ".mypy_cache", ".ruff_cache")
    for name in COPIED:
        source, target = BACKEND_DIR / name, copy / name
        if source.is_dir():
            shutil.copytree(source, target, ignore=ignore)
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
    return copy


def generate(backend: Path, *args: str, limit_file_size: int | None = None) -> subprocess.CompletedProcess[str]:
    def limited() -> None:  # a file larger than this fails to be written, with EFBIG
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit_file_size or 0, limit_file_size or 0))

    return subprocess.run(
        [sys.executable, "-m", "devtools.resource", *args],
        cwd=backend,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
        preexec_fn=limited if limit_file_size else None,
    )


def tree(backend: Path) -> dict[str, str]:
    """Every file under BACKEND and a digest of its bytes."""
    return {
        str(path.relative_to(backend)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(backend.rglob("*"))
        if path.is_file() and "__pycache__" not in path.parts
    }


@pytest.mark.parametrize(
    ("word", "plural"),
    [("agent", "agents"), ("box", "boxes"), ("category", "categories"), ("day", "days"), ("status", "statuses")],
)
def test_plurals_follow_english_rules(word: str, plural: str) -> None:
    assert pluralize(word) == plural


def test_names_fields_and_plural_are_read() -> None:
    resource = parse("agent_session", "title:str(80):unique note:text? size:int started_at:datetime?")
    assert (resource.plural, resource.path, resource.model) == ("agent_sessions", "agent-sessions", "AgentSession")
    assert resource.fields == (
        Field("title", "str", 80, unique=True),
        Field("note", "text", optional=True),
        Field("size", "int"),
        Field("started_at", "datetime", optional=True),
    )
    assert parse("person", "name:str", "people").plural == "people"
    assert parse("tag", "label:str").fields[0].length == 255


@pytest.mark.parametrize(
    ("name", "fields", "plural", "message"),
    [
        ("Agent", "name:str", "", "NAME=Agent is not snake_case"),
        ("agent-session", "name:str", "", "NAME=agent-session is not snake_case"),
        ("class", "name:str", "", "NAME=class is a Python keyword"),
        ("agent", "name:str", "Agents", "PLURAL=Agents is not snake_case"),
        ("sheep", "name:str", "sheep", "PLURAL=sheep is NAME itself"),
        ("agent", "name:blob", "", "'name:blob' has an unknown type; the types are str, str(N), text"),
        ("agent", "name", "", "'name' is not name:type"),
        ("agent", "name:str:primary", "", "'name:str:primary' is not name:type"),
        ("agent", "name:str name:text", "", "'name' appears twice"),
        ("agent", "id:uuid", "", "'id' is reserved: every resource has id, created_at, updated_at"),
        ("agent", "created_at:datetime", "", "'created_at' is reserved"),
        ("agent", "import:str", "", "'import' is not a field name"),
        ("agent", "name:str(0)", "", "N in str(N) is 1 to 10485760"),
        ("agent", "name:text(10)", "", "has an unknown type"),
        ("agent", "enabled:bool:unique", "", "a bool cannot be unique"),
        ("agent", "name:str", "a" * 60, "is longer than PostgreSQL's 63 characters"),
    ],
)
def test_bad_arguments_are_refused_with_what_is_accepted(name: str, fields: str, plural: str, message: str) -> None:
    with pytest.raises(Refusal) as refused:
        parse(name, fields, plural)
    assert message in str(refused.value)
    assert "\n" not in str(refused.value)


@pytest.mark.parametrize(("name", "fields"), [("", "name:str"), ("agent", ""), ("agent", "  ")])
def test_a_missing_name_or_fields_is_answered_with_the_usage(name: str, fields: str) -> None:
    with pytest.raises(UsageRefusal, match=r"^usage: make resource NAME=agent FIELDS="):
        parse(name, fields)


def test_a_resource_is_written_registered_and_formatted(backend: Path) -> None:
    before = tree(backend)
    router_before = (backend / ROUTER).read_text()
    done = generate(backend, *SPECIMEN)
    assert done.returncode == 0, done.stderr
    written = set(tree(backend)) - set(before)
    (revision,) = (path for path in written if path.startswith("alembic/versions/"))
    assert written == {
        "app/models/specimen.py",
        "app/schemas/specimen.py",
        "app/api/v1/specimens.py",
        "tests/api/v1/test_specimens.py",
        revision,
    }
    assert revision.endswith("_create_specimens.py")
    # The router: the module imported with the others, its router included after theirs; nothing else.
    router = (backend / ROUTER).read_text()
    check(router_before, router, "specimens")
    assert router.endswith("\napi_router.include_router(specimens.router)\n")
    new = [str(backend / path) for path in written]
    ruff = [sys.executable, "-m", "ruff"]
    for command in ([*ruff, "check", "--no-cache", *new], [*ruff, "format", "--check", "--no-cache", *new]):
        checked = subprocess.run(command, cwd=backend, capture_output=True, text=True, timeout=60, check=False)
        assert checked.returncode == 0, checked.stdout + checked.stderr


def test_a_second_resource_follows_the_first_and_the_first_cannot_be_made_again(backend: Path) -> None:
    assert generate(backend, *SPECIMEN).returncode == 0
    done = generate(backend, "specimen_part", "label:str(80)", "--plural", "specimen_parts")
    assert done.returncode == 0, done.stderr
    scripts = ScriptDirectory.from_config(Config(backend / "alembic.ini"))
    (head,) = scripts.get_heads()
    docs = [script.doc for script in scripts.walk_revisions("base", head)]
    assert docs[:2] == ["create specimen_parts", "create specimens"]
    router = (backend / ROUTER).read_text()
    assert router.endswith("include_router(specimens.router)\napi_router.include_router(specimen_parts.router)\n")
    # Once more: it exists.
    before = tree(backend)
    again = generate(backend, *SPECIMEN)
    assert again.returncode == 2
    assert again.stderr == (
        "error: NAME=specimen: the resource exists already (app/models/specimen.py, app/api/v1/specimens.py)\n"
    )
    assert tree(backend) == before


@pytest.mark.parametrize(
    ("name", "fields", "message"),
    [
        ("widget", "date:date", "FIELDS: 'date' is a name the model or schemas import"),
        ("widget", "mapped_column:int", "FIELDS: 'mapped_column' is a name the model or schemas import"),
        ("widget", "metadata:str", "'metadata' is an attribute of SQLAlchemy's declarative models"),
        ("widget", "json:str", "'json' is an attribute of pydantic's models"),
        ("widget", "model_name:str", "'model_name' is an attribute of pydantic's models"),
        ("status", "name:str", "NAME=status: the generated code would use status for two things"),
        ("response", "name:str", "NAME=response: the generated code would use Response for two things"),
    ],
)
def test_names_the_generated_code_uses_for_something_else_are_refused(name: str, fields: str, message: str) -> None:
    resource = parse(name, fields)
    sources = generated_sources(resource)
    with pytest.raises(Refusal, match=re.escape(message)):
        check_names(resource, sources)


def test_a_resource_called_session_takes_its_database_session_under_another_name() -> None:
    resource = parse("session", "room:str")
    sources = generated_sources(resource)
    check_names(resource, sources)
    routes = sources["routes"]
    assert "async def get_session(session_id: UUID, db_session: ReadSession)" in routes
    assert "async def update_session(session_id: UUID, changes: SessionUpdate, db_session: DbSession)" in routes


ROUTER_HEAD = "from fastapi import APIRouter\n\n"
ROUTER_TAIL = "\napi_router = APIRouter()\napi_router.include_router(health.router)\n"


@pytest.mark.parametrize(
    ("imports", "expected"),
    [
        ("from app.api.v1 import health\n", "from app.api.v1 import health, specimens\n"),
        ("from app.api.v1 import health  # probes\n", "from app.api.v1 import health, specimens  # probes\n"),
        (
            "from app.api.v1 import (\n    health,  # probes\n    zebras,\n)\n",
            "from app.api.v1 import (\n    health,  # probes\n    specimens,\n    zebras,\n)\n",
        ),
    ],
)
def test_registration_adds_the_two_lines_a_person_would_write(imports: str, expected: str) -> None:
    registered = register(ROUTER_HEAD + imports + ROUTER_TAIL, "specimens")
    assert registered == ROUTER_HEAD + expected + ROUTER_TAIL + "api_router.include_router(specimens.router)\n"


@pytest.mark.parametrize(
    "router",
    [
        ROUTER_HEAD + "from app.api.v1.health import router as health\n" + ROUTER_TAIL,  # no import line to extend
        ROUTER_HEAD + "from app.api.v1 import health\nfrom app.api.v1 import items\n" + ROUTER_TAIL,  # two
        ROUTER_HEAD + "from app.api.v1 import health\nrouter = APIRouter()\n",  # no api_router
        ROUTER_HEAD + "from app.api.v1 import health\nspecimens = 1\n" + ROUTER_TAIL,  # the name is taken
        "from app.api.v1 import health\napi_router = (\n",  # not Python
    ],
)
def test_a_router_of_another_shape_is_refused(router: str) -> None:
    with pytest.raises(Refusal, match=r"router\.py"):
        register(router, "specimens")


def add_heads(backend: Path) -> None:
    """Two revisions that both follow the present head: two heads."""
    (head,) = ScriptDirectory.from_config(Config(backend / "alembic.ini")).get_heads() or (None,)
    for revision in ("aaaaaaaaaaaa", "bbbbbbbbbbbb"):
        (backend / "alembic" / "versions" / f"{revision}_branch.py").write_text(
            f'"""branch"""\nrevision = "{revision}"\ndown_revision = {head!r}\n'
            "branch_labels = None\ndepends_on = None\n"
            "def upgrade() -> None: ...\ndef downgrade() -> None: ...\n"
        )


def add_table(backend: Path) -> None:
    (backend / "app" / "models" / "specimen_things.py").write_text(
        "from sqlalchemy.orm import Mapped, mapped_column\n\nfrom app.db import Base\n\n\n"
        "class SpecimenThing(Base):\n"
        '    __tablename__ = "specimens"\n'
        "    id: Mapped[int] = mapped_column(primary_key=True)\n"
    )


def unusual_router(backend: Path) -> None:
    (backend / ROUTER).write_text(
        "from fastapi import APIRouter\n\nfrom app.api.v1.health import router as health\n\n"
        "api_router = APIRouter()\napi_router.include_router(health)\n"
    )


@pytest.mark.parametrize(
    ("arrange", "args", "message"),
    [
        (None, ("health", "name:str"), "NAME=health is reserved"),
        (None, ("base", "name:str"), "NAME=base is reserved: the service has app/schemas/base.py"),
        (add_heads, ("specimen", "name:str"), "the migrations have 2 heads"),
        (add_table, ("specimen", "name:str"), "the table specimens exists already"),
        (unusual_router, ("specimen", "name:str"), "app/api/v1/router.py must have a `from app.api.v1 import ...`"),
    ],
)
def test_a_refusal_writes_nothing(arrange: object, args: tuple[str, ...], message: str, backend: Path) -> None:
    if callable(arrange):
        arrange(backend)
    before = tree(backend)
    done = generate(backend, *args)
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.startswith("error: ") and message in done.stderr, done.stderr
    assert len(done.stderr.splitlines()) == 1 and done.stdout == ""
    assert tree(backend) == before


@pytest.mark.skipif(os.name != "posix", reason="needs RLIMIT_FSIZE")
def test_a_write_that_fails_halfway_leaves_the_service_as_it_was(backend: Path) -> None:
    before = tree(backend)
    # The model and the schemas fit; the routes module does not: the files written are removed.
    done = generate(backend, *SPECIMEN, limit_file_size=1500)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "File too large; nothing was written" in done.stderr, done.stderr
    assert tree(backend) == before
