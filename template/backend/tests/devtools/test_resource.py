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

from devtools.resource import render
from devtools.resource.parents import parents
from devtools.resource.plan import ROUTER, check_names
from devtools.resource.registration import check, register
from devtools.resource.spec import Field, Refusal, UsageRefusal, parse, pluralize
from tests.conftest import BACKEND_DIR

COPIED = ("app", "alembic", "devtools", "alembic.ini", "pyproject.toml", "tests/__init__.py", "tests/api")
# Names a service is unlikely to have already: the copy holds the resources the team made.
SPECIMEN = (
    "specimen",
    "name:str(3..80):unique:sort description:text? weight:int(1..1000)=10:sort enabled:bool=true:filter "
    "kind:enum(plain,rare)=plain:filter traits:json={} found_on:date? keeper_id:uuid:filter",
)
PART = (
    "specimen_part",
    "specimen_id:ref(specimens):cascade label:str(80) spare_id:ref(specimens)?",
    "--plural",
    "parts",
)


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
        Field("title", "str", unique=True, high=80),
        Field("note", "text", optional=True),
        Field("size", "int"),
        Field("started_at", "datetime", optional=True),
    )
    assert parse("person", "name:str", "people").plural == "people"
    assert parse("tag", "label:str").fields[0].high == 255


def test_enums_json_defaults_bounds_refs_and_flags_are_read() -> None:
    fields = parse(
        "agent",
        "name:str(3..80):unique:sort voice:enum(alloy,echo,verse)=echo:filter config:json={} meta:json(4096)? "
        "temperature:float(0..2)=0.7 max_sessions:int(1..)=10:sort enabled:bool=false:filter "
        "workspace_id:ref(workspaces):cascade:filter owner_id:ref(users) note:text(..500)?=none",
    ).fields
    assert fields == (
        Field("name", "str", unique=True, sort=True, low=3, high=80),
        Field("voice", "enum", filter=True, default="echo", values=("alloy", "echo", "verse")),
        Field("config", "json", default="{}"),
        Field("meta", "json", optional=True, high=4096),
        Field("temperature", "float", low=0.0, high=2.0, default=0.7),
        Field("max_sessions", "int", sort=True, low=1, default=10),
        Field("enabled", "bool", filter=True, default=False),
        Field("workspace_id", "ref", filter=True, target="workspaces", on_delete="CASCADE"),
        Field("owner_id", "ref", target="users", on_delete="RESTRICT"),
        Field("note", "text", optional=True, high=500, default="none"),
    )


def test_indexes_serve_the_order_the_filters_the_sorts_and_the_refs() -> None:
    resource = parse("agent", "name:str:unique:sort rank:int:sort enabled:bool:filter team_id:ref(teams)")
    assert [(index.name, index.columns) for index in resource.indexes] == [
        ("ix_agents_created_at_id", ("created_at", "id")),
        ("ix_agents_rank_id", ("rank", "id")),  # name is unique: its constraint's index serves the sort
        ("ix_agents_enabled_created_at_id", ("enabled", "created_at", "id")),
        ("ix_agents_team_id_created_at_id", ("team_id", "created_at", "id")),
    ]
    assert resource.sorts == ("created_at", "name", "rank")


@pytest.mark.parametrize(
    ("name", "fields", "plural", "message"),
    [
        ("Agent", "name:str", "", "NAME=Agent is not snake_case"),
        ("agent-session", "name:str", "", "NAME=agent-session is not snake_case"),
        ("class", "name:str", "", "NAME=class is a Python keyword"),
        ("agent", "name:str", "Agents", "PLURAL=Agents is not snake_case"),
        ("sheep", "name:str", "sheep", "PLURAL=sheep is NAME itself"),
        ("agent", "name:blob", "", "'name:blob' has an unknown type; the types are str, str(N), str(M..N), text"),
        ("agent", "name", "", "'name' is not name:type"),
        ("agent", "name:str:primary", "", "'primary' is not a flag; the flags: :unique a unique constraint"),
        ("agent", "owner_id:uuid:fk(users)", "", "(a reference to another resource is name:ref(table))"),
        ("agent", "voice:enum", "", "enum needs its values: enum(...)"),
        ("agent", "voice:enum(Alloy,echo)", "", "'Alloy' is not an enum value"),
        ("agent", "voice:enum(echo,echo)", "", "a value appears twice"),
        ("agent", "voice:enum(alloy,echo)=verse", "", "the default 'verse' is not one of alloy, echo"),
        ("agent", "owner_id:ref", "", "ref needs its table: ref(...)"),
        ("agent", "owner_id:ref(Users)", "", "ref(table) names a table, snake_case"),
        ("agent", "owner_id:ref(users)=x", "", "date, datetime, uuid, ref fields take no default"),
        ("agent", "name:str:cascade", "", ":restrict and :cascade are for ref(table) fields"),
        ("agent", "owner_id:ref(users):cascade:restrict", "", "a ref is :restrict or :cascade, not both"),
        ("agent", "name:str:unique:unique", "", ":unique appears twice"),
        ("agent", "temperature:float(2..0)", "", "the lower bound is above the upper one"),
        ("agent", "temperature:float(..)", "", "give at least one bound"),
        ("agent", "temperature:float(2)", "", "bounds are written float(M..N), float(M..) or float(..N)"),
        ("agent", "temperature:float(0..x)", "", "'x' is not a decimal number"),
        ("agent", "temperature:float(0..2)=3", "", "the default 3 is outside the bounds"),
        ("agent", "size:int(1..10)=1.5", "", "'1.5' is not a 64-bit integer"),
        ("agent", f"size:int(..{2**63})", "", "is not a 64-bit integer"),
        ("agent", "enabled:bool=yes", "", "the default of a bool is true or false"),
        ("agent", "enabled:bool(1..2)", "", "a bool takes no (...)"),
        ("agent", "config:json=[]", "", "the default of a json field is {}, the empty object"),
        ("agent", "config:json(10)", "", "json(N) takes the most bytes of the document, 64 or more"),
        ("agent", "name:str(3..5)=ab", "", "the default 'ab' is not within the bounds of the length"),
        ("agent", "config:json:filter", "", ":filter is for bool, enum, ref, uuid, int, str, date fields"),
        ("agent", "page:int:filter", "", "?page= is a parameter of every list"),
        ("agent", "config:json:sort", "", ":sort is for str, int, float, bool, date, datetime, enum fields"),
        ("agent", "note:text:unique", "", "an index entry holds about 600 characters"),
        ("agent", "note:str(1000):filter", "", "take str(N) with N up to 600, not text"),
        ("agent", "name:str name:text", "", "'name' appears twice"),
        ("agent", "id:uuid", "", "'id' is reserved: every resource has id, created_at, updated_at"),
        ("agent", "created_at:datetime", "", "'created_at' is reserved"),
        ("agent", "import:str", "", "'import' is not a field name"),
        ("agent", "name:str(0)", "", "N in str(N) is 1 to 10485760"),
        ("agent", "name:text(10)", "", "bounds are written text(M..N), text(M..) or text(..N)"),
        ("agent", "enabled:bool:unique", "", ":unique is not for bool, enum or json fields"),
        ("agent", "voice:enum(a,b):unique", "", ":unique is not for bool, enum or json fields"),
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


def test_a_second_resource_refers_to_the_first_and_the_first_cannot_be_made_again(backend: Path) -> None:
    assert generate(backend, *SPECIMEN).returncode == 0
    done = generate(backend, *PART)
    assert done.returncode == 0, done.stderr
    scripts = ScriptDirectory.from_config(Config(backend / "alembic.ini"))
    (head,) = scripts.get_heads()
    docs = [script.doc for script in scripts.walk_revisions("base", head)]
    assert docs[:2] == ["create parts", "create specimens"]
    router = (backend / ROUTER).read_text()
    assert router.endswith("include_router(specimens.router)\napi_router.include_router(parts.router)\n")
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
        ("widget", "create:enum(a,b)", "FIELDS: 'create': its enum would be WidgetCreate, a name the generated"),
        ("widget", "metadata:str", "'metadata' is an attribute of SQLAlchemy's declarative models"),
        ("widget", "json:str", "'json' is an attribute of pydantic's models"),
        ("widget", "model_name:str", "'model_name' is an attribute of pydantic's models"),
        ("status", "name:str", "NAME=status: the generated code uses status for something else"),
        ("request", "name:str", "NAME=request: the generated code uses request for something else"),
        ("str", "name:str", "NAME=str: the generated code uses str for something else"),
        ("response", "name:str", "NAME=response: the generated code uses response for something else"),
        ("big", "integer:enum(a,b)", "FIELDS: 'integer': its enum would be BigInteger"),
        ("index", "name:str", "NAME=index: the generated code would use Index for two things"),
        ("read_session", "name:str", "NAME=read_session: the generated code would use ReadSession for two things"),
    ],
)
def test_names_the_generated_code_uses_for_something_else_are_refused(name: str, fields: str, message: str) -> None:
    with pytest.raises(Refusal, match=re.escape(message)):
        check_names(parse(name, fields), {})


def test_a_resource_called_session_takes_its_database_session_under_another_name() -> None:
    resource = parse("session", "room:str")
    check_names(resource, {})
    routes = render.modules(resource, {}, [])["routes"]
    assert "async def get_session(session_id: UUID, db_session: ReadSession)" in routes
    assert "async def update_session(session_id: UUID, changes: SessionUpdate, db_session: DbSession)" in routes


def test_a_ref_names_a_table_of_the_service() -> None:
    with pytest.raises(Refusal, match=re.escape("ref(nowhere): app/models has no table nowhere")):
        parents(parse("widget", "place_id:ref(nowhere)"))
    with pytest.raises(Refusal, match=re.escape("a resource cannot refer to its own table (widgets)")):
        parents(parse("widget", "parent_id:ref(widgets)"))


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
        (None, ("specimen_part", "specimen_id:ref(specimens)"), "ref(specimens): app/models has no table specimens"),
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
    # The model, the schemas and the revision fit; the routes module does not: the files written are removed.
    done = generate(backend, "specimen", "name:str", limit_file_size=1500)
    assert done.returncode == 1, done.stdout + done.stderr
    assert "File too large; nothing was written" in done.stderr, done.stderr
    assert tree(backend) == before
