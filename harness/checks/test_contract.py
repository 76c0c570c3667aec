"""The API contract of a service with a generated resource, as a team uses it.

`make resource` writes the resource into backend/openapi.json with operation ids named by
the rule (the route functions' names); a changed field fails the service's suite until
`make openapi`; `make client` generates the TypeScript client, a usage file of list,
create, get and the 404's error envelope compiles with `tsc --noEmit` and a misuse does
not (skipped, with a note, where npm is missing); schemathesis, every check and phase,
finds nothing on the resource served on real servers.

Runs with the rendered service's Python, at the end of the `generated` sessions; the
service is put back as it was afterwards. Checks depend on the ones before them: run the
module whole.
"""

import json
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import Launcher, clean_env, committed, completed, run, schemathesis_run, schemathesis_summary

# Every kind of field, with each flag: the resource that schemathesis checks takes exactly what it documents.
MAKER_FIELDS = "title:str(3..80):unique:sort"
FIELDS = (
    "name:str(80):unique:sort note:text? count:int:filter:sort size:int(1..100)=5 ratio:float(0..2)=0.5 "
    "weight:float? enabled:bool=true:filter born:date?:filter at:datetime?:sort token:uuid?:filter "
    "config:json={} kind:enum(small,large)=small:filter maker_id:ref(makers)?:filter"
)

# list, create and get; the 404's envelope. MISUSES each turn it into code that must not compile.
USAGE = """\
import { createApiClient, type ErrorResponse } from "./index";

const api = createApiClient("http://127.0.0.1:8000");

export async function roundTrip(): Promise<string> {
  const created = await api.POST("/api/v1/gadgets", {
    body: { name: "first", count: 3, at: "2024-05-01T12:30:00Z" },
  });
  if (created.error) return created.error.error.code;
  const gadget = created.data;
  const page = await api.GET("/api/v1/gadgets", { params: { query: { page: 1, page_size: 20 } } });
  const names: string[] = page.data ? page.data.items.map((item) => item.name) : [];
  const found = await api.GET("/api/v1/gadgets/{gadget_id}", { params: { path: { gadget_id: gadget.id } } });
  if (found.error) {
    const envelope: ErrorResponse = found.error;
    return found.response.status === 404 ? envelope.error.code : envelope.error.message;
  }
  const count: number = found.data.count;
  return `${gadget.name} ${names.length} ${count}`;
}
"""
MISUSES = {
    "a field the response lacks": ("${gadget.name}", "${gadget.nmae}"),
    "a field the body lacks": ('body: { name: "first",', 'body: { nmae: "first",'),
    "a string for an integer": ("count: 3,", 'count: "3",'),
}


@pytest.fixture(scope="module")
def gadgets(service_dir: Path) -> Iterator[Path]:
    """The service with the resource generated (and committed to nothing); afterwards, as it was."""
    with committed(service_dir) as repo:
        run(["make", "resource", "NAME=maker", f"FIELDS={MAKER_FIELDS}"], repo, 600, clean_env())
        run(["make", "resource", "NAME=gadget", f"FIELDS={FIELDS}"], repo, 600, clean_env())
        yield repo
        for generated in ("client/node_modules", "client/src/schema.d.ts"):  # ignored by git: not reset
            path = repo / generated
            if path.is_dir():
                shutil.rmtree(path)
            else:
                path.unlink(missing_ok=True)


def operation_ids(spec: dict[str, object]) -> dict[str, dict[str, str]]:
    paths = spec["paths"]
    assert isinstance(paths, dict)
    return {path: {method: op["operationId"] for method, op in item.items()} for path, item in paths.items()}


def test_make_resource_writes_the_contract_with_readable_operation_ids(gadgets: Path, backend: Path) -> None:
    spec = json.loads((backend / "openapi.json").read_text())
    assert operation_ids(spec) == {
        "/api/v1/health": {"get": "health"},
        "/api/v1/health/ready": {"get": "readiness"},
        "/api/v1/makers": {"post": "create_maker", "get": "list_makers"},
        "/api/v1/makers/{maker_id}": {"get": "get_maker", "patch": "update_maker", "delete": "delete_maker"},
        "/api/v1/gadgets": {"post": "create_gadget", "get": "list_gadgets"},
        "/api/v1/gadgets/{gadget_id}": {"get": "get_gadget", "patch": "update_gadget", "delete": "delete_gadget"},
    }
    run([sys.executable, "-m", "devtools.openapi", "--check"], backend, 120, clean_env())


def test_a_changed_field_fails_the_suite_until_make_openapi(gadgets: Path, backend: Path) -> None:
    schemas = backend / "app" / "schemas" / "gadget.py"
    text = schemas.read_text()
    changed = text.replace("max_length=80", "max_length=60")
    assert changed != text, f"no max_length=80 in {schemas}:\n{text}"
    snapshot = ["tests/test_contract.py::test_openapi_json_is_the_apps_document", "-q"]
    schemas.write_text(changed)
    try:
        before = completed([sys.executable, "-m", "pytest", *snapshot], backend, 300, clean_env())
        assert before.returncode == 1, before.stdout[-3000:]
        assert "make openapi" in before.stdout and '"maxLength": 60' in before.stdout, before.stdout[-3000:]
        run(["make", "openapi"], gadgets, 300, clean_env())
        run([sys.executable, "-m", "pytest", *snapshot], backend, 300, clean_env())
    finally:
        schemas.write_text(text)
        run(["make", "openapi"], gadgets, 300, clean_env())


def test_the_typescript_client_compiles_and_a_misuse_does_not(
    gadgets: Path, say: Callable[[str], None], figure: Callable[[str], None]
) -> None:
    if shutil.which("npm") is None:
        say("npm is not installed here: make client and the tsc checks of the TypeScript client were skipped")
        pytest.skip("npm is not installed")
    run(["make", "client"], gadgets, 900, clean_env())
    client = gadgets / "client"
    usage = client / "src" / "usage.ts"
    check = ["npm", "run", "--silent", "check"]
    try:
        usage.write_text(USAGE)
        run(check, client, 300, clean_env())
        for what, (right, wrong) in MISUSES.items():
            assert right in USAGE, right
            usage.write_text(USAGE.replace(right, wrong))
            done = completed(check, client, 300, clean_env())
            assert done.returncode != 0 and "error TS" in done.stdout + done.stderr, f"{what} compiled"
    finally:
        usage.unlink(missing_ok=True)
    figure(f"contract: the usage file compiles; {len(MISUSES)} misuses refused by tsc")


def test_schemathesis_finds_nothing(
    gadgets: Path,
    backend: Path,
    service_env: dict[str, str],
    database_url: str,
    launch: Launcher,
    schemathesis: Path,
    pytestconfig: pytest.Config,
    tmp_path: Path,
    figure: Callable[[str], None],
) -> None:
    """Every check and phase on the health routes and the resource, on real PostgreSQL and Redis."""
    migrate = [sys.executable, "-m", "alembic", "upgrade", "head"]
    run(migrate, backend, 300, {**service_env, "DATABASE_URL": database_url})
    service = launch("contract", DATABASE_URL=database_url)
    examples, seconds = pytestconfig.getoption("fuzz_examples"), pytestconfig.getoption("fuzz_seconds")
    try:
        # PostgreSQL stores no NUL character: one in a JSON document's text is a 422 (the generated
        # tests check it), which the JSON Schema of a document of any shape cannot say.
        done, summary = schemathesis_run(schemathesis, service.base, tmp_path, examples, seconds, nul=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"schemathesis did not finish within {seconds + 240} s")
    figure(f"contract: {schemathesis_summary(summary)}")
    assert done.returncode == 0 and summary.get("failures") == [] and summary.get("errors") == [], (
        f"exit {done.returncode}\n{done.stdout[-8000:]}{done.stderr[-3000:]}"
    )
