"""`make resource`, as a team runs it in a rendered service, end to end on real servers.

The agent example of the service's README, a PLURAL= override and a compound name are
generated with `make resource`; each refusal leaves the tree as it was (`git status
--porcelain`); the result passes `make lint`, migrates up and down, passes `make test` with the generated
tests, and serves every route, its errors and a 503 with PostgreSQL stopped. The time
of `make resource` is a figure.

Runs with the rendered service's Python, at the end of the `generated` sessions. The
service is committed to git first (a repository of its own if it has none) and put
back as it was afterwards. Checks depend on the ones before them: run the module whole.
"""

import http.client
import json
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from support import Servers, commit, committed, completed, env_from_example, git, run, table_names

EXAMPLE = ["NAME=agent", "FIELDS=name:str:unique description:text? max_sessions:int enabled:bool"]
PLURAL = ["NAME=person", "FIELDS=name:str(80) born_on:date?", "PLURAL=people"]
COMPOUND = ["NAME=agent_session", "FIELDS=title:str started_at:datetime? agent_id:uuid"]


@pytest.fixture(scope="module")
def repo(service_dir: Path) -> Iterator[Path]:
    """The service with everything committed; afterwards, back as it was."""
    with committed(service_dir) as repo:
        yield repo


@pytest.fixture(scope="module")
def env(backend: Path, servers: Servers) -> dict[str, str]:
    """A developer's environment: .env.example's settings, pointed at the checks' PostgreSQL and Redis."""
    return {**env_from_example(backend), "DATABASE_URL": servers.postgres.url, "REDIS_URL": servers.redis.url}


def changes(repo: Path) -> set[str]:
    return {line[3:] for line in git(repo, "status", "--porcelain", "--untracked-files=all").splitlines()}


def test_make_resource_writes_the_example_and_registers_it(
    repo: Path, env: dict[str, str], figure: Callable[[str], None]
) -> None:
    started = time.monotonic()
    output = run(["make", "resource", *EXAMPLE], repo, 600, env)
    figure(f"resource: make resource (the agent example, migration included): {time.monotonic() - started:.2f} s")
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


def test_plural_and_compound_names(repo: Path, env: dict[str, str]) -> None:
    for arguments, routes in ((PLURAL, "people.py"), (COMPOUND, "agent_sessions.py")):
        run(["make", "resource", *arguments], repo, 600, env)
        assert f"backend/app/api/v1/{routes}" in changes(repo)
        commit(repo, f"make resource {arguments[0]}")
    models = repo / "backend" / "app" / "models"
    assert '__tablename__ = "people"' in (models / "person.py").read_text()
    assert 'prefix="/agent-sessions"' in (repo / "backend/app/api/v1/agent_sessions.py").read_text()


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
        (["NAME=widget", "FIELDS=name:blob"], "has an unknown type; the types are str, str(N), text, int"),
        (["NAME=widget", "FIELDS=name:str name:text"], "'name' appears twice"),
        (["NAME=widget", "FIELDS=id:uuid"], "'id' is reserved: every resource has id, created_at, updated_at"),
        (["NAME=widget", "FIELDS=created_at:datetime"], "'created_at' is reserved"),
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
    repo: Path, env: dict[str, str], servers: Servers
) -> None:
    run(["make", "migrate"], repo, 600, env)
    assert {"agents", "people", "agent_sessions"} <= table_names(servers.postgres.url)
    run([sys.executable, "-m", "alembic", "downgrade", "-1"], repo / "backend", 600, env)
    assert "agent_sessions" not in table_names(servers.postgres.url)
    run(["make", "migrate"], repo, 600, env)
    assert "agent_sessions" in table_names(servers.postgres.url)


def test_make_test_passes_with_the_generated_tests(repo: Path, env: dict[str, str]) -> None:
    output = run(["make", "test", "ARGS=-v"], repo, 600, env)
    for plural, name in (("agents", "agent"), ("people", "person"), ("agent_sessions", "agent_session")):
        assert f"tests/api/v1/test_{plural}.py::test_create_{name} PASSED" in output, output[-3000:]


def call(port: int, method: str, path: str, body: Any = None) -> tuple[int, dict[str, str], Any]:
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        payload = None if body is None else json.dumps(body)
        connection.request(method, path, body=payload, headers={"Content-Type": "application/json"})
        response = connection.getresponse()
        raw = response.read()
        headers = {name.lower(): value for name, value in response.getheaders()}
        return response.status, headers, json.loads(raw) if raw else None
    finally:
        connection.close()


def test_every_route_over_http_on_real_servers(repo: Path, launch: Any, servers: Servers) -> None:
    port = launch("resource").port
    url = "/api/v1/agents"
    body = {"name": "first", "description": None, "max_sessions": 3, "enabled": True}
    status, headers, created = call(port, "POST", url, body)
    assert status == 201 and headers["location"] == f"http://127.0.0.1:{port}{url}/{created['id']}", created
    assert call(port, "GET", f"{url}/{created['id']}")[2] == created
    assert call(port, "POST", url, body)[0] == 409
    assert call(port, "POST", url, {**body, "name": "x" * 256})[0] == 422
    assert call(port, "POST", url, {**body, "name": "big", "max_sessions": 2**63})[0] == 422
    assert call(port, "GET", f"{url}/not-a-uuid")[0] == 422
    status, _, page = call(port, "GET", f"{url}?page=1&page_size=1")
    assert status == 200 and (page["total"], len(page["items"])) == (1, 1), page
    status, _, updated = call(port, "PATCH", f"{url}/{created['id']}", {"max_sessions": 4})
    assert status == 200 and updated == {**created, "max_sessions": 4, "updated_at": updated["updated_at"]}
    assert call(port, "PATCH", f"{url}/{created['id']}", {"name": None})[0] == 422
    assert call(port, "DELETE", f"{url}/{created['id']}")[:1] == (204,)
    assert call(port, "GET", f"{url}/{created['id']}")[0] == 404
    assert call(port, "GET", "/api/v1/agent-sessions")[0] == 200
    assert call(port, "GET", "/api/v1/people")[0] == 200
    paths = call(port, "GET", "/openapi.json")[2]["paths"]
    assert {url, f"{url}/{{agent_id}}", "/api/v1/people", "/api/v1/agent-sessions"} <= set(paths)
    servers.postgres.stop()
    try:
        status, headers, error = call(port, "GET", url)
        assert (status, headers.get("retry-after"), error["error"]["code"]) == (503, "5", "service_unavailable")
    finally:
        servers.postgres.start()
