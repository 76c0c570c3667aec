"""Names a user may well type (and a description too long for one line of code): each render
passes the service's own ruff and builds its app with the title "<name> API".

Installing each render would be slow: the checked service's tools and packages stand in.
"""

import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from support import clean_env, run

TEMPLATE = Path(__file__).resolve().parents[3]
UNUSUAL_ANSWERS: dict[str, dict[str, str]] = {
    "unicode": {"project_name": "Café Ünïcode"},
    "spaces": {"project_name": "Spaced   Out  Service"},
    "leading-digit": {"project_name": "3D Render Farm"},
    "long": {
        "project_name": " ".join(["Very Long Project Name"] * 4),
        "description": 'Serves "rooms" and agents to C:\\clients, it\'s said. ' * 4,
    },
}
# Run in a render's backend/: builds its app and compares the title and description with argv.
NAME_PROBE = """
import sys
from app.core.config import Settings
from app.main import create_app
info = create_app(Settings(_env_file=".env.example")).openapi()["info"]
if [info["title"], info["description"]] != sys.argv[1:]:
    sys.exit(f"expected title and description {sys.argv[1:]!r}, got {[info['title'], info['description']]!r}")
"""
RUFF = str(Path(sys.executable).parent / "ruff")


@dataclass(frozen=True)
class Render:
    backend: Path
    title: str
    description: str


@pytest.fixture(scope="module", params=UNUSUAL_ANSWERS.values(), ids=UNUSUAL_ANSWERS.keys())
def render(request: pytest.FixtureRequest, copier: Path, tmp_path_factory: pytest.TempPathFactory) -> Render:
    """This template (its working tree) rendered with the answers, not installed."""
    answers: dict[str, str] = request.param
    destination = tmp_path_factory.mktemp("name") / "service"
    data = [f"--data={key}={value}" for key, value in answers.items()]
    command = [str(copier), "copy", "--defaults", "--quiet", "--vcs-ref=HEAD", *data, str(TEMPLATE), str(destination)]
    run(command, TEMPLATE, timeout=120, env=clean_env())
    name = answers["project_name"]
    return Render(destination / "backend", f"{name} API", answers.get("description", f"Platform API of {name}."))


def test_name_ruff_check(render: Render) -> None:
    run([RUFF, "check", "--quiet", "."], render.backend, timeout=60)


def test_name_ruff_format(render: Render) -> None:
    run([RUFF, "format", "--check", "--quiet", "."], render.backend, timeout=60)


def test_name_titles_app(render: Render) -> None:
    run([sys.executable, "-c", NAME_PROBE, render.title, render.description], render.backend, 60, clean_env())
