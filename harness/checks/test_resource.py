"""`make resource`, as a team runs it in a rendered service, end to end on real servers.

The Agent of the service's README (an enum, a JSON document, defaults, bounds, filters
and sorts), an agent_session that refers to it (restrict) and a person that refers to
it too (cascade, with a PLURAL= override and 0.5.0's forms) are generated with `make
resource`; each refusal leaves the tree as it was (`git status --porcelain`); the result
passes `make lint`, migrates up and down, passes `make test` with the generated tests,
serves what the README promises over HTTP (defaults, bounds, filters and sorts, the 409s
of references, a 503 with PostgreSQL stopped), passes schemathesis, and takes a new enum
value by the README's recipe. The time of each `make resource` is a figure. In a render
with bearer tokens (auth=bearer), owned resources too (OWNED=yes: a folder, and notes in
it with a unique slug), whose rows another user cannot see, list or change, over HTTP as
in their generated tests; without them, OWNED=yes is refused.

Runs with the rendered service's Python, at the end of the `generated` sessions. The
service is committed to git first (a repository of its own if it has none) and put
back as it was afterwards. Checks depend on the ones before them: run the module whole.
"""

import http.client
import json
import re
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import Servers, commit, committed, completed, env_from_example, git, run, table_names

EXAMPLE = [
    "NAME=agent",
    "FIELDS=name:str(3..80):unique:sort voice:enum(alloy,echo,verse)=alloy:filter config:json={} "
    "temperature:float(0..2)=0.7 max_sessions:int(1..100)=10 enabled:bool=true:filter owner_id:uuid:filter",
]
# A resource that refers to the first (ON DELETE RESTRICT, the default).
COMPOUND = [
    "NAME=agent_session",
    "FIELDS=agent_id:ref(agents):filter title:str(1..200) status:enum(active,ended)=active:filter "
    "started_at:datetime?:sort transcript:json?",
]
# 0.5.0's forms, a PLURAL= override, and a reference that cascades.
PLURAL = ["NAME=person", "FIELDS=name:str(80) born_on:date? agent_id:ref(agents)?:cascade", "PLURAL=people"]
# Owned resources (auth=bearer): each user's folders, and notes that refer to a folder of
# the same user's (and, optionally, to an agent: a public table, a plain reference).
OWNED = [
    ["NAME=folder", "OWNED=yes", "FIELDS=title:str(1..80):unique:sort color:enum(red,blue)=red:filter"],
    [
        "NAME=note",
        "OWNED=yes",
        "FIELDS=folder_id:ref(folders):filter:cascade agent_id:ref(agents)? body:text(1..2000) "
        "slug:str(1..40):unique:filter pinned:bool=false:filter",
    ],
]
# The command of the issue that asked for the new grammar: refused at its foreign key, with the form to use.
FIRST_TRY = (
    "FIELDS=name:str:unique voice:enum(alloy,echo,verse) config:json temperature:float=0.7 enabled:bool=true "
    "owner_id:uuid:fk(users)"
)


@pytest.fixture(scope="module")
def repo(service_dir: Path) -> Iterator[Path]:
    """The service with everything committed; afterwards, back as it was."""
    with committed(service_dir) as repo:
        yield repo


@pytest.fixture(scope="module")
def env(backend: Path, servers: Servers) -> dict[str, str]:
    """A developer's environment: .env.example's settings, pointed at the checks' PostgreSQL and Redis."""
    return {**env_from_example(backend), "DATABASE_URL": servers.postgres.url, "REDIS_URL": servers.redis.url}


def bearer(backend: Path) -> bool:
    """Whether the render verifies bearer tokens (auth=bearer)."""
    return (backend / "app" / "core" / "security.py").exists()


def changes(repo: Path) -> set[str]:
    return {line[3:] for line in git(repo, "status", "--porcelain", "--untracked-files=all").splitlines()}


def make_resource(repo: Path, env: dict[str, str], arguments: list[str], figure: Callable[[str], None]) -> str:
    started = time.monotonic()
    output = run(["make", "resource", *arguments], repo, 600, env)
    figure(f"resource: make resource {arguments[0]} (migration included): {time.monotonic() - started:.2f} s")
    return output


def test_make_resource_writes_the_example_and_registers_it(
    repo: Path, env: dict[str, str], figure: Callable[[str], None]
) -> None:
    output = make_resource(repo, env, EXAMPLE, figure)
    written = changes(repo)
    revisions = {path for path in written if path.startswith("backend/alembic/versions/")}
    assert len(revisions) == 1 and next(iter(revisions)).endswith("_create_agents.py"), written
    assert written == {
        "backend/app/models/agent.py",
        "backend/app/schemas/agent.py",
        "backend/app/api/v1/agents.py",
        "backend/tests/api/v1/test_agents.py",
        "backend/app/api/v1/router.py",
        "backend/openapi.json",
        *revisions,
    }, written
    diff = git(repo, "diff", "-U0", "--", "backend/app/api/v1/router.py").splitlines()
    edits = [line for line in diff if line[:1] in "+-" and not line.startswith(("+++", "---"))]
    assert edits == [
        "-from app.api.v1 import health",
        "+from app.api.v1 import agents, health",
        "+api_router.include_router(agents.router)",
    ], edits
    assert "/api/v1/agents" in output
    commit(repo, "make resource NAME=agent")


def test_resources_that_refer_to_the_first(repo: Path, env: dict[str, str], figure: Callable[[str], None]) -> None:
    for arguments, routes in ((COMPOUND, "agent_sessions.py"), (PLURAL, "people.py")):
        make_resource(repo, env, arguments, figure)
        assert f"backend/app/api/v1/{routes}" in changes(repo)
        commit(repo, f"make resource {arguments[0]}")
    models = repo / "backend" / "app" / "models"
    assert '__tablename__ = "people"' in (models / "person.py").read_text()
    assert 'prefix="/agent-sessions"' in (repo / "backend/app/api/v1/agent_sessions.py").read_text()


def test_owned_resources_with_bearer_tokens(
    repo: Path, backend: Path, env: dict[str, str], figure: Callable[[str], None]
) -> None:
    if not bearer(backend):
        pytest.skip("this render has no bearer tokens (auth=none): OWNED=yes is refused, as the next check shows")
    for arguments in OWNED:
        output = make_resource(repo, env, arguments, figure)
        assert "each row its creator's alone" in output, output
        commit(repo, f"make resource {arguments[0]} OWNED=yes")
    # A public resource cannot refer to an owned table: its rows would name other users' rows.
    result = completed(["make", "resource", "NAME=comment", "FIELDS=note_id:ref(notes)"], repo, 600, env)
    own = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert result.returncode == 2 and len(own) == 1 and "make this resource owned too (OWNED=yes)" in own[0]
    assert changes(repo) == set(), "a refusal changed the service"


def test_owned_yes_is_refused_without_bearer_tokens(repo: Path, backend: Path, env: dict[str, str]) -> None:
    if bearer(backend):
        pytest.skip("this render has bearer tokens (auth=bearer): the check before makes owned resources")
    result = completed(["make", "resource", "NAME=note", "OWNED=yes", "FIELDS=body:text"], repo, 600, env)
    assert result.returncode == 2, result.stdout + result.stderr
    own = [line for line in result.stderr.splitlines() if line.startswith("error:")]
    assert len(own) == 1 and "OWNED=yes: app/api/deps.py has no CurrentUser" in own[0], result.stderr
    assert result.stdout == ""
    assert changes(repo) == set(), "a refusal changed the service"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "usage: make resource NAME=agent FIELDS="),
        (["NAME=agent"], "usage: make resource"),
        (["NAME=Agent", "FIELDS=name:str"], "error: NAME=Agent is not snake_case"),
        (["NAME=class", "FIELDS=name:str"], "error: NAME=class is a Python keyword"),
        (["NAME=health", "FIELDS=name:str"], "error: NAME=health is reserved"),
        (["NAME=router", "FIELDS=name:str"], "error: NAME=router is reserved"),
        (["NAME=agent", "FIELDS=title:str"], "error: NAME=agent: the resource exists already"),
        (["NAME=widget", "FIELDS=name:blob"], "has an unknown type; the types are str, str(N), str(M..N), text"),
        (["NAME=widget", "FIELDS=name:str name:text"], "'name' appears twice"),
        (["NAME=widget", "FIELDS=id:uuid"], "'id' is reserved: every resource has id, created_at, updated_at"),
        (["NAME=widget", "FIELDS=created_at:datetime"], "'created_at' is reserved"),
        (["NAME=widget", FIRST_TRY], "'fk(users)' is not a flag (a reference to another resource is name:ref(table))"),
        (["NAME=widget", "FIELDS=place_id:ref(places)"], "ref(places): app/models has no table places"),
        (["NAME=widget", "FIELDS=voice:enum(alloy,echo)=verse"], "the default 'verse' is not one of alloy, echo"),
        (["NAME=widget", "FIELDS=temperature:float(0..2)=3"], "the default 3 is outside the bounds"),
        (["NAME=widget", "FIELDS=size:int(10..1)"], "the lower bound is above the upper one"),
        (["NAME=widget", "FIELDS=config:json:filter"], ":filter is for bool, enum, ref, uuid, int, str, date fields"),
        (["NAME=widget", "FIELDS=agent_id:ref(agents):cascade:restrict"], "a ref is :restrict or :cascade"),
    ],
)
def test_a_refusal_says_what_is_accepted_and_writes_nothing(
    arguments: list[str], message: str, repo: Path, env: dict[str, str]
) -> None:
    result = completed(["make", "resource", *arguments], repo, 600, env)
    assert result.returncode == 2, result.stdout + result.stderr
    # One line from the generator (make adds its own, and uv may say it compiled bytecode).
    own = [line for line in result.stderr.splitlines() if line.startswith(("error:", "usage:"))]
    assert len(own) == 1 and message in own[0], result.stderr
    assert result.stdout == ""
    assert changes(repo) == set(), "a refusal changed the service"


def test_make_lint_passes_with_the_resources(repo: Path, env: dict[str, str]) -> None:
    run(["make", "lint"], repo, 600, env)
    assert changes(repo) == set(), "make lint changed files"


def test_make_migrate_creates_the_tables_and_downgrade_removes_the_last(
    repo: Path, backend: Path, env: dict[str, str], servers: Servers
) -> None:
    run(["make", "migrate"], repo, 600, env)
    owned = {"folders", "notes"} if bearer(backend) else set()
    assert {"agents", "agent_sessions", "people", *owned} <= table_names(servers.postgres.url)
    last = "notes" if owned else "people"
    run([sys.executable, "-m", "alembic", "downgrade", "-1"], repo / "backend", 600, env)
    assert last not in table_names(servers.postgres.url)
    run(["make", "migrate"], repo, 600, env)
    assert last in table_names(servers.postgres.url)


def test_make_test_passes_with_the_generated_tests(repo: Path, backend: Path, env: dict[str, str]) -> None:
    output = run(["make", "test", "ARGS=-v"], repo, 900, env)
    if bearer(backend):
        owned = [
            "test_notes.py::test_another_users_note_is_a_404_as_an_unknown_one[DELETE] PASSED",
            "test_notes.py::test_the_list_holds_the_callers_notes_only PASSED",
            "test_notes.py::test_a_filter_finds_the_callers_notes_only[slug] PASSED",
            "test_notes.py::test_a_reference_to_another_users_row_is_a_409_as_to_no_row[folder_id-PATCH] PASSED",
            "test_notes.py::test_the_database_refuses_a_reference_to_another_users_row[folder_id] PASSED",
            "test_folders.py::test_a_request_without_a_token_is_a_401[GET-] PASSED",
            "test_folders.py::test_the_owner_is_the_caller_whatever_the_body_says PASSED",
        ]
        assert all(line in output for line in owned), output[-3000:]
    for plural, name in (("agents", "agent"), ("people", "person"), ("agent_sessions", "agent_session")):
        assert f"tests/api/v1/test_{plural}.py::test_create_{name} PASSED" in output, output[-3000:]
    expected = [
        "test_agents.py::test_create_agent_fills_in_the_defaults PASSED",
        "test_agents.py::test_list_agents_filtered_by_a_field[voice] PASSED",
        "test_agent_sessions.py::test_the_row_agent_id_refers_to_cannot_be_deleted PASSED",
        "test_people.py::test_deleting_the_row_agent_id_refers_to_deletes_the_person PASSED",
    ]
    assert all(line in output for line in expected), output[-3000:]


def call(
    port: int, method: str, path: str, body: Any = None, token: str | None = None
) -> tuple[int, dict[str, str], Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        payload = None if body is None else json.dumps(body)
        headers = {"Content-Type": "application/json"}
        headers.update({"Authorization": f"Bearer {token}"} if token else {})
        connection.request(method, path, body=payload, headers=headers)
        response = connection.getresponse()
        raw = response.read()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, json.loads(raw) if raw else None
    finally:
        connection.close()


def refused_field(answer: tuple[int, dict[str, str], Any]) -> tuple[int, list[list[str]]]:
    """The status and the fields an error names (the locations of its details)."""
    status, _, body = answer
    return status, [detail["loc"] for detail in body["error"]["details"] or []]


def test_the_agent_example_over_http_on_real_servers(repo: Path, launch: Any, servers: Servers) -> None:
    port = launch("resource").port
    url, owner, other_owner = "/api/v1/agents", str(uuid.uuid4()), str(uuid.uuid4())
    # Created with the defaults left out.
    status, headers, first = call(port, "POST", url, {"name": "first", "owner_id": owner})
    assert status == 201 and headers["location"] == f"http://127.0.0.1:{port}{url}/{first['id']}", first
    defaults = {"voice": "alloy", "config": {}, "temperature": 0.7, "max_sessions": 10, "enabled": True}
    assert defaults.items() <= first.items(), first
    assert call(port, "GET", f"{url}/{first['id']}")[2] == first
    # Bounds and enum values, each a 422 that names its field; a duplicate name, a 409.
    assert refused_field(call(port, "POST", url, {"name": "x", "owner_id": owner, "voice": "nova"})) == (
        422,
        [["body", "name"], ["body", "voice"]],
    )
    assert refused_field(call(port, "POST", url, {"name": "hot", "owner_id": owner, "temperature": 3})) == (
        422,
        [["body", "temperature"]],
    )
    assert call(port, "POST", url, {"name": "first", "owner_id": owner})[0] == 409
    # Filters and sorts: "my enabled echo agents, newest first", and a count of the matching rows only.
    made = [
        call(port, "POST", url, {"name": name, "owner_id": who, "voice": voice, "enabled": enabled})[2]
        for name, who, voice, enabled in [
            ("b-echo", owner, "echo", True),
            ("a-echo", owner, "echo", True),
            ("c-echo-off", owner, "echo", False),
            ("d-echo-other", other_owner, "echo", True),
        ]
    ]
    status, _, page = call(port, "GET", f"{url}?owner_id={owner}&enabled=true&voice=echo&sort=-created_at,name")
    assert status == 200 and [agent["name"] for agent in page["items"]] == ["a-echo", "b-echo"], page
    status, _, page = call(port, "GET", f"{url}?voice=echo&enabled=true&sort=name&page_size=1&page=2")
    assert (page["total"], [agent["name"] for agent in page["items"]]) == (3, ["b-echo"]), page
    status, _, error = call(port, "GET", f"{url}?sort=-owner_id")
    assert status == 422 and "the fields are created_at, name" in error["error"]["details"][0]["message"], error
    # A PATCH replaces a JSON document whole.
    call(port, "PATCH", f"{url}/{first['id']}", {"config": {"a": 1, "b": {"c": 2}}})
    assert call(port, "PATCH", f"{url}/{first['id']}", {"config": {"b": 3}})[2]["config"] == {"b": 3}
    # References: to a row that does not exist, a 409 that names the field; restrict and cascade on delete.
    sessions, people = "/api/v1/agent-sessions", "/api/v1/people"
    body = {"agent_id": str(uuid.uuid4()), "title": "call"}
    assert refused_field(call(port, "POST", sessions, body)) == (409, [["body", "agent_id"]])
    status, _, session = call(port, "POST", sessions, {**body, "agent_id": first["id"]})
    assert status == 201 and session["status"] == "active", session
    assert refused_field(call(port, "PATCH", f"{sessions}/{session['id']}", body)) == (409, [["body", "agent_id"]])
    status, _, error = call(port, "DELETE", f"{url}/{first['id']}")
    assert (status, error["error"]["code"]) == (409, "conflict"), error
    assert call(port, "GET", f"{url}/{first['id']}")[0] == 200
    status, _, person = call(port, "POST", people, {"name": "Ada", "agent_id": made[0]["id"]})
    assert status == 201, person
    assert call(port, "DELETE", f"{url}/{made[0]['id']}")[0] == 204
    assert call(port, "GET", f"{people}/{person['id']}")[0] == 404  # went with its agent
    assert call(port, "DELETE", f"{sessions}/{session['id']}")[0] == 204
    assert call(port, "DELETE", f"{url}/{first['id']}")[0] == 204
    # OpenAPI documents the enum's values, the bounds and the list's parameters with their types.
    schema = call(port, "GET", "/openapi.json")[2]
    components = schema["components"]["schemas"]
    assert components["AgentVoice"]["enum"] == ["alloy", "echo", "verse"]
    temperature = components["AgentCreate"]["properties"]["temperature"]
    assert (temperature["minimum"], temperature["maximum"], temperature["default"]) == (0, 2, 0.7)
    parameters = {item["name"]: item["schema"] for item in schema["paths"][url]["get"]["parameters"]}
    assert parameters["enabled"]["type"] == "boolean" and parameters["owner_id"]["format"] == "uuid"
    assert parameters["voice"] == {"$ref": "#/components/schemas/AgentVoice"}
    assert parameters["sort"]["pattern"] == "^-?(created_at|name)(,-?(created_at|name))*$"
    assert parameters["page_size"]["maximum"] == 100
    servers.postgres.stop()
    try:
        status, headers, error = call(port, "GET", url)
        assert (status, headers.get("retry-after"), error["error"]["code"]) == (503, "5", "service_unavailable")
    finally:
        servers.postgres.start()


def make_token(repo: Path, env: dict[str, str], subject: str) -> str:
    """`make token SUB=...`: signed with .env.example's development secret, as the launched service trusts."""
    done = completed(["make", "--no-print-directory", "token", f"SUB={subject}"], repo, 60, env)
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout.strip()


def test_owned_resources_over_http_on_real_servers(repo: Path, backend: Path, env: dict[str, str], launch: Any) -> None:
    if not bearer(backend):
        pytest.skip("this render has no bearer tokens (auth=none)")
    port = launch("owned").port
    alice, bob = make_token(repo, env, "alice"), make_token(repo, env, "bob")
    folders, notes = "/api/v1/folders", "/api/v1/notes"
    status, _, folder = call(port, "POST", folders, {"title": "Inbox", "owner_id": "bob"}, alice)
    assert (status, folder["owner_id"]) == (201, "alice"), folder
    status, _, note = call(port, "POST", notes, {"folder_id": folder["id"], "body": "Call back", "slug": "cb"}, alice)
    assert status == 201, note
    assert call(port, "POST", notes, {"folder_id": folder["id"], "body": "Again", "slug": "cb"}, alice)[0] == 409
    # Bob: alice's rows answer as rows that do not exist; his lists are empty.
    for url, row in ((folders, folder), (notes, note)):
        for method, body in (("GET", None), ("PATCH", {"body": "Mine now"} if url == notes else {}), ("DELETE", None)):
            status, _, answer = call(port, method, f"{url}/{row['id']}", body, bob)
            assert (status, answer) == (404, call(port, method, f"{url}/{uuid.uuid4()}", body, bob)[2]), answer
        status, _, page = call(port, "GET", url, None, bob)
        assert (status, page["items"], page["total"]) == (200, [], 0), page
        assert call(port, "GET", url)[0] == 401
    # Bob's own folder with alice's title and a note with her slug; a note in her folder is a 409 as in none.
    status, _, his = call(port, "POST", folders, {"title": "Inbox"}, bob)
    assert status == 201, his
    body = {"folder_id": his["id"], "body": "Hello", "slug": "cb"}
    assert call(port, "POST", notes, body, bob)[0] == 201
    into_hers = call(port, "POST", notes, {**body, "slug": "x", "folder_id": folder["id"]}, bob)
    into_none = call(port, "POST", notes, {**body, "slug": "x", "folder_id": str(uuid.uuid4())}, bob)
    assert (into_hers[0], into_hers[2]) == (409, into_none[2]), into_hers
    # Alice still has hers alone, filters and sorts within them.
    status, _, page = call(port, "GET", f"{notes}?slug=cb&sort=-created_at", None, alice)
    assert (page["total"], [row["id"] for row in page["items"]]) == (1, [note["id"]]), page
    assert call(port, "GET", f"{notes}/{note['id']}", None, alice)[2] == note
    assert call(port, "DELETE", f"{folders}/{folder['id']}", None, alice)[0] == 204
    assert call(port, "GET", f"{notes}/{note['id']}", None, alice)[0] == 404  # went with its folder (cascade)


def test_schemathesis_finds_no_server_error_and_every_response_as_documented(
    repo: Path, launch: Any, schemathesis: Path, tmp_path: Path, figure: Callable[[str], None]
) -> None:
    service = launch("fuzzed")
    report = tmp_path / "schemathesis.json"
    command = [str(schemathesis), "run", f"{service.base}/openapi.json", "--checks=all", "--max-examples=50"]
    command += ["--include-path-regex", "^/api/v1/(agents|agent-sessions)"]
    # PostgreSQL stores no NUL character: a string with one is a 422 (the generated tests check
    # it), which the JSON Schema of a JSON document cannot say.
    command += ["--generation-allow-x00=false", "--generation-database=none", "--no-color"]
    command += ["--report=json", f"--report-json-path={report}"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    summary = json.loads(report.read_text()) if report.exists() else {}
    cases, operations = summary.get("test_cases", {}), summary.get("operations", {})
    figure(
        f"resource: schemathesis {summary.get('schemathesis_version')} on agents and agent sessions: "
        f"{cases.get('generated')} cases, {operations.get('tested')} operations"
    )
    assert operations.get("tested") == 10, operations
    assert done.returncode == 0 and summary.get("failures") == [] and summary.get("errors") == [], (
        f"exit {done.returncode}, failures {summary.get('failures')}\n{done.stdout[-6000:]}{done.stderr[-3000:]}"
    )


def test_schemathesis_on_the_owned_resources_with_a_token(
    repo: Path,
    backend: Path,
    env: dict[str, str],
    launch: Any,
    schemathesis: Path,
    tmp_path: Path,
    figure: Callable[[str], None],
) -> None:
    """As the check before, on folders and notes with alice's token (and, for ignored_auth, without one)."""
    if not bearer(backend):
        pytest.skip("this render has no bearer tokens (auth=none)")
    service = launch("owned-fuzzed")
    report = tmp_path / "schemathesis.json"
    command = [str(schemathesis), "run", f"{service.base}/openapi.json", "--checks=all", "--max-examples=50"]
    command += [f"--header=Authorization: Bearer {make_token(repo, env, 'alice')}"]
    command += ["--include-path-regex", "^/api/v1/(folders|notes)"]
    command += ["--exclude-checks=allow_header_conformance,negative_data_rejection"]  # as in the check before
    command += ["--generation-allow-x00=false", "--generation-database=none", "--no-color"]
    command += ["--report=json", f"--report-json-path={report}"]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=600, check=False)
    summary = json.loads(report.read_text()) if report.exists() else {}
    cases, operations = summary.get("test_cases", {}), summary.get("operations", {})
    figure(f"resource: schemathesis on owned folders and notes, with a token: {cases.get('generated')} cases")
    assert operations.get("tested") == 10, operations
    assert done.returncode == 0 and summary.get("failures") == [] and summary.get("errors") == [], (
        f"exit {done.returncode}, failures {summary.get('failures')}\n{done.stdout[-6000:]}{done.stderr[-3000:]}"
    )


def readme_recipe(repo: Path) -> str:
    """The revision's functions of the README's recipe for a new enum value (its python block that has them)."""
    readme = (repo / "backend" / "README.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", readme, flags=re.DOTALL)
    (recipe,) = [block for block in blocks if 'op.drop_constraint(op.f("ck_agents_voice")' in block]
    return recipe


def test_a_new_enum_value_takes_the_readme_recipe(repo: Path, env: dict[str, str]) -> None:
    model = repo / "backend" / "app" / "models" / "agent.py"
    verse = '    VERSE = "verse"\n'
    model.write_text(model.read_text().replace(verse, f'{verse}    SHIMMER = "shimmer"\n'))
    run(["make", "migration", "m=agents.voice: shimmer"], repo, 600, env)
    (revision,) = (repo / "backend" / "alembic" / "versions").glob("*_agents_voice_shimmer.py")
    head, _, _ = revision.read_text().partition("\n\ndef upgrade()")
    imports, _, functions = readme_recipe(repo).partition("\n\n\n")
    revision.write_text(head.replace("\nrevision:", f"{imports}\n\nrevision:", 1) + "\n\n" + functions)
    run(["make", "format"], repo, 600, env)
    run(["make", "lint"], repo, 600, env)
    run(["make", "migrate"], repo, 600, env)
    run([sys.executable, "-m", "alembic", "downgrade", "-1"], repo / "backend", 600, env)
    run(["make", "migrate"], repo, 600, env)
    # The generated tests store every value of AgentVoice; the migration tests run the recipe up, down and up.
    output = run(["make", "test", "ARGS=-v tests/api/v1/test_agents.py tests/migrations"], repo, 600, env)
    assert "test_every_value_of_an_enum_is_stored[voice-shimmer] PASSED" in output, output[-3000:]
