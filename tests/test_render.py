"""Rendering with every answer: what a user gets, and what the generated service does with it."""

import json
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.answers import NON_DEFAULT_ANSWERS
from tests.helpers import ROOT, clean_env, render, run

VARIANTS: dict[str, dict[str, Any]] = {
    "defaults": {},
    "everything-changed": NON_DEFAULT_ANSWERS,
    "poetry-py314-no-livekit-bearer": {
        "python_version": "3.14",
        "include_livekit": False,
        "project_name": "3D Render Farm",
        "auth": "bearer",
    },
    "uv-py313-livekit": {"package_manager": "uv", "python_version": "3.13", "api_port": 65535, "version": "1.0.post1"},
}
DEFAULTS = {
    "project_name": "Live Interactive Agent",
    "description": "Platform API of Live Interactive Agent.",
    "version": "0.1.0",
    "python_version": "3.11",
    "api_port": 8000,
    "cors_origins": "http://localhost:3000",
    "package_manager": "poetry",
    "include_livekit": True,
    "auth": "none",
}


@pytest.fixture(scope="module", params=list(VARIANTS), ids=list(VARIANTS))
def rendered(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    answers = VARIANTS[request.param]
    service = render(tmp_path_factory.mktemp(request.param) / "service", **answers)
    expected = {**DEFAULTS, **answers}
    if "description" not in answers and "project_name" in answers:
        expected["description"] = f"Platform API of {answers['project_name']}."
    return service, expected


def rendered_files(service: Path) -> list[Path]:
    return [p for p in service.rglob("*") if p.is_file()]


# The templates of `make resource`: Jinja that the service renders itself, which Copier must copy as they are.
RESOURCE_TEMPLATES = Path("backend/devtools/resource/templates")


def test_no_template_residue(rendered: tuple[Path, dict[str, Any]]) -> None:
    service, _ = rendered
    files = [p for p in rendered_files(service) if p.parent != service / RESOURCE_TEMPLATES]
    assert [p for p in files if p.suffix == ".jinja" or "{{" in p.name or "{%" in p.name] == []
    residue = [
        str(p.relative_to(service))
        for p in files
        if any(marker in p.read_text(encoding="utf-8") for marker in ("{{", "{%", "{#"))
    ]
    assert residue == []


def test_the_resource_templates_arrive_unrendered(rendered: tuple[Path, dict[str, Any]]) -> None:
    service, _ = rendered
    source = ROOT / "template" / RESOURCE_TEMPLATES
    names = sorted(path.name for path in source.iterdir())
    assert names and all(name.endswith(".j2") for name in names)
    assert sorted(path.name for path in (service / RESOURCE_TEMPLATES).iterdir()) == names
    for name in names:
        assert (service / RESOURCE_TEMPLATES / name).read_bytes() == (source / name).read_bytes(), name


def test_expected_tree(rendered: tuple[Path, dict[str, Any]]) -> None:
    service, expected = rendered
    for name in ("README.md", "Makefile", ".gitignore", ".copier-answers.yml"):
        assert (service / name).is_file(), name
    backend = service / "backend"
    for name in ("pyproject.toml", "README.md", ".env.example", "app/main.py", "tests/conftest.py"):
        assert (backend / name).is_file(), name
    assert (backend / "poetry.toml").exists() is (expected["package_manager"] == "poetry")
    assert not (backend / ".env").exists()
    assert ".env" in (service / ".gitignore").read_text().split()


def test_answers_file_records_every_answer(rendered: tuple[Path, dict[str, Any]]) -> None:
    service, expected = rendered
    answers = yaml.safe_load((service / ".copier-answers.yml").read_text())
    assert {k: answers[k] for k in expected} == expected
    assert answers["_src_path"]


def test_pyproject_follows_the_answers(rendered: tuple[Path, dict[str, Any]]) -> None:
    service, expected = rendered
    pyproject = tomllib.loads((service / "backend" / "pyproject.toml").read_text())
    project = pyproject["project"]
    assert project["version"] == expected["version"]
    assert project["description"] == expected["description"]
    assert project["requires-python"] == f">={expected['python_version']}"
    deps = " ".join(project["dependencies"])
    for dependency in (
        "fastapi",
        "gunicorn",
        "uvicorn-worker",
        "uvicorn[standard]",
        "pydantic-settings",
        "sqlalchemy[asyncio]",
        "asyncpg",
        "redis",
        "python-json-logger",
    ):
        assert dependency in deps
    assert ("pyjwt[crypto]" in deps) is (expected["auth"] == "bearer")
    if expected["package_manager"] == "poetry":
        assert pyproject["tool"]["poetry"]["package-mode"] is False
    else:
        assert pyproject["tool"]["uv"]["package"] is False
    assert pyproject["tool"]["mypy"]["strict"] is True


@pytest.mark.parametrize(
    ("target", "expected_command"),
    [
        ("install", "{manager_install}"),
        (
            "api",
            "cd backend && {run} uvicorn --factory app.main:create_app"
            " --reload --reload-dir app --port {api_port} --no-access-log",
        ),
        ("test", "cd backend && {run} pytest"),
        ("migrate", "cd backend && {run} alembic upgrade head"),
        ("serve", "cd backend && {run} python -m app"),
        ("resource", "cd backend && {run} -- python -m devtools.resource"),
    ],
)
def test_make_targets_use_the_chosen_package_manager(
    target: str, expected_command: str, rendered: tuple[Path, dict[str, Any]]
) -> None:
    service, expected = rendered
    # The lock as it is: uv's targets run --locked, poetry's install syncs to the lock.
    poetry = expected["package_manager"] == "poetry"
    install = "cd backend && poetry sync --compile" if poetry else "cd backend && uv sync --locked"
    command = "poetry run" if poetry else "uv run --locked"
    dry_run = run(["make", "-n", target], service)
    assert expected_command.format(run=command, manager_install=install, api_port=expected["api_port"]) in dry_run


def test_lint_and_strict_types(rendered: tuple[Path, dict[str, Any]], tooling_python: Path) -> None:
    service, _ = rendered
    backend = service / "backend"
    bin_dir = tooling_python.parent
    run([str(bin_dir / "ruff"), "check", "."], backend)
    run([str(bin_dir / "ruff"), "format", "--check", "."], backend)
    run([str(bin_dir / "mypy"), "--cache-dir", str(service / ".mypy_cache"), "."], backend)


PROBE = """
import importlib.util, json, os
from app.core.config import Settings
from app.main import create_app
settings = Settings(_env_file=".env.example")
app = create_app(settings)
spec = app.openapi()
print(json.dumps({
    "title": spec["info"]["title"], "version": spec["info"]["version"], "description": spec["info"]["description"],
    "cors_origins": settings.CORS_ORIGINS,
    "port": settings.PORT,
    "required": sorted(n for n, f in Settings.model_fields.items() if f.is_required()),
    "security_schemes": sorted(spec.get("components", {}).get("securitySchemes", {})),
    "modules": sorted(m for m in ("app.core.security", "devtools.access_token") if importlib.util.find_spec(m)),
}))
"""


def test_generated_app_reflects_the_answers(rendered: tuple[Path, dict[str, Any]], tooling_python: Path) -> None:
    service, expected = rendered
    result = subprocess.run(
        [str(tooling_python), "-c", PROBE],
        cwd=service / "backend",
        env=clean_env(),
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    facts = json.loads(result.stdout.splitlines()[-1])
    assert facts["title"] == f"{expected['project_name']} API"
    assert facts["version"] == expected["version"]
    assert facts["description"] == expected["description"]
    assert facts["cors_origins"] == [o.strip() for o in expected["cors_origins"].split(",")]
    assert facts["port"] == expected["api_port"]  # `python -m app` listens where `make api` does
    livekit = {"LIVEKIT_URL", "LIVEKIT_API_KEY", "LIVEKIT_API_SECRET"}
    assert (livekit <= set(facts["required"])) is expected["include_livekit"]
    assert {"DATABASE_URL", "REDIS_URL"} <= set(facts["required"])
    bearer = expected["auth"] == "bearer"
    assert ({"AUTH_ISSUER", "AUTH_AUDIENCE"} <= set(facts["required"])) is bearer
    # Only the modules of bearer tokens; no route of the render asks for one, so no scheme yet.
    assert facts["modules"] == (["app.core.security", "devtools.access_token"] if bearer else [])
    assert facts["security_schemes"] == []


def test_make_token_comes_with_bearer_tokens(rendered: tuple[Path, dict[str, Any]]) -> None:
    service, expected = rendered
    assert ("make token " in run(["make", "help"], service)) is (expected["auth"] == "bearer")
