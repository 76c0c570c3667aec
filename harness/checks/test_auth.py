"""Bearer tokens on a served render (auth=bearer): `make token` as the service's README says,
a protected example route over HTTP and fuzzed by schemathesis with a valid token, and what
the log holds. Skipped for a render without them (auth=none).

The service runs with .env.example's settings, whose development secret `make token` signs with.
"""

import json
import re
import subprocess
from collections.abc import Callable
from pathlib import Path

import pytest
from support import Service, completed, log_records

# Routes the rendered service lacks (it protects none by itself): the caller, and a write
# that needs a scope, with a strict body so that the schema says exactly what it accepts.
AUTH_APP = """
from typing import Annotated

from fastapi import Depends, FastAPI
from pydantic import BaseModel, ConfigDict, Field

from app.api.deps import CurrentUser, RequireScopes
from app.core.security import Principal
from app.main import create_app


class Note(BaseModel):
    model_config = ConfigDict(strict=True)
    text: str = Field(max_length=1000)


class Caller(BaseModel):
    subject: str
    scopes: list[str]


def create_auth_app() -> FastAPI:
    app = create_app()

    @app.get("/api/v1/me")
    async def me(user: CurrentUser) -> Caller:
        return Caller(subject=user.subject, scopes=sorted(user.scopes))

    @app.post("/api/v1/notes", status_code=201)
    async def add_note(note: Note, user: Annotated[Principal, Depends(RequireScopes("notes:write"))]) -> Note:
        return note

    return app
"""
TOKEN = re.compile(r"[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+")


@pytest.fixture(scope="module", autouse=True)
def _bearer_render(backend: Path) -> None:
    if not (backend / "app" / "core" / "security.py").exists():
        pytest.skip("this render has no bearer tokens (auth=none)")


def make_token(service_dir: Path, env: dict[str, str], *arguments: str) -> subprocess.CompletedProcess[str]:
    return completed(["make", "--no-print-directory", "token", *arguments], cwd=service_dir, env=env, timeout=60)


@pytest.fixture(scope="module")
def token(service_dir: Path, service_env: dict[str, str]) -> str:
    """`make token SUB=alice SCOPES=notes:write`: what it prints is the token, nothing else."""
    done = make_token(service_dir, service_env, "SUB=alice", "SCOPES=notes:write")
    assert done.returncode == 0, done.stdout + done.stderr
    assert TOKEN.fullmatch(done.stdout.strip()), f"make token printed more than a token: {done.stdout!r}"
    return done.stdout.strip()


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("auth")
    (path / "auth_app.py").write_text(AUTH_APP)
    return path


@pytest.fixture(scope="module")
def served(module_launcher: Callable[..., Service], backend: Path, workdir: Path) -> Service:
    return module_launcher("auth", app="auth_app:create_auth_app", PYTHONPATH=f"{backend}:{workdir}")


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_make_token_refuses_without_the_development_secret(service_dir: Path, service_env: dict[str, str]) -> None:
    env = {**service_env, "AUTH_SECRET": "", "AUTH_JWKS_URL": "https://login.example.com/jwks.json"}
    done = make_token(service_dir, env, "SUB=alice")
    assert done.returncode != 0 and done.stdout == "", done.stdout
    assert "AUTH_SECRET, the development secret, which is not set" in done.stderr


def test_the_token_opens_the_protected_route(served: Service, token: str) -> None:
    response = served.get("/api/v1/me", headers=bearer(token))
    assert (response.status, response.json()) == (200, {"subject": "alice", "scopes": ["notes:write"]}), response


def test_no_token_or_a_bad_one_answers_401(served: Service, token: str) -> None:
    missing = served.get("/api/v1/me")
    assert (missing.status, missing.headers.get("www-authenticate")) == (401, "Bearer"), missing
    forged = token[:-4] + ("AAAA" if not token.endswith("AAAA") else "BBBB")
    refused = served.get("/api/v1/me", headers=bearer(forged))
    assert (refused.status, refused.headers.get("www-authenticate")) == (401, 'Bearer error="invalid_token"')
    assert refused.json()["error"]["code"] == "unauthorized" and forged not in refused.body.decode()


def test_the_access_line_names_the_subject_and_no_line_holds_a_token(served: Service, token: str) -> None:
    served.get("/api/v1/me", headers={**bearer(token), "X-Request-ID": "auth-check-subject"})
    served.get("/api/v1/me", headers={**bearer(token[:-2]), "X-Request-ID": "auth-check-refused"})
    records = log_records(served.log)
    access = {r["request_id"]: r for r in records if r.get("logger") == "app.access" and "request_id" in r}
    assert access["auth-check-subject"].get("subject") == "alice"
    assert "subject" not in access["auth-check-refused"]
    text = served.log.read_text()
    assert token not in text and token.rsplit(".", 1)[1] not in text and token[:-2] not in text


def test_fuzz_with_a_token(
    served: Service,
    token: str,
    schemathesis: Path,
    workdir: Path,
    pytestconfig: pytest.Config,
    figure: Callable[[str], None],
) -> None:
    """schemathesis with a valid token, every check (ignored_auth among them): no 5xx, every
    response as documented."""
    examples, seconds = pytestconfig.getoption("fuzz_examples"), pytestconfig.getoption("fuzz_seconds")
    report = workdir / "schemathesis.json"
    command = [str(schemathesis), "run", f"{served.base}/openapi.json", "--checks=all", f"--max-examples={examples}"]
    command += [f"--header=Authorization: Bearer {token}", f"--max-time={seconds}", "--generation-database=none"]
    command += ["--no-color", "--report=json", f"--report-json-path={report}"]
    try:
        done = subprocess.run(command, cwd=workdir, capture_output=True, text=True, timeout=seconds + 120, check=False)
    except subprocess.TimeoutExpired:
        pytest.fail(f"schemathesis did not finish within {seconds + 120} s")
    summary = json.loads(report.read_text()) if report.exists() else {}
    cases, operations = summary.get("test_cases", {}), summary.get("operations", {})
    figure(f"auth fuzz: {cases.get('generated')} cases on {operations.get('tested')} operations, with a valid token")
    assert done.returncode == 0 and summary.get("failures") == [] and summary.get("errors") == [], (
        f"exit {done.returncode}, failures {summary.get('failures')}\n{done.stdout[-6000:]}{done.stderr[-3000:]}"
    )
    # The token opened the protected routes (writes succeeded), and is in no line of the log.
    access = [r for r in log_records(served.log) if r.get("logger") == "app.access"]
    assert any(r["path"] == "/api/v1/notes" and r["status"] == 201 and r.get("subject") == "alice" for r in access)
    assert token not in served.log.read_text()
