"""Every invalid answer is refused with a message that says what is wrong and what is accepted."""

from pathlib import Path
from typing import Any

import pytest

from tests.helpers import render

INVALID = [
    ("project_name", "   ", "project_name must not be empty"),
    ("project_slug", "Bad_Slug", 'project_slug "Bad_Slug" is not valid: use lowercase ASCII letters'),
    ("project_slug", "-leading", 'project_slug "-leading" is not valid'),
    ("project_slug", "double--hyphen", 'project_slug "double--hyphen" is not valid'),
    ("project_slug", "a" * 65, "project_slug is 65 characters long: use 64 at most"),
    ("description", "two\nlines", "description must be a single line"),
    ("version", "1.0-beta", 'version "1.0-beta" is not a PEP 440 version'),
    ("version", "v1", 'version "v1" is not a PEP 440 version'),
    ("python_version", "3.10", "'3.10' is not in ['3.11', '3.12', '3.13', '3.14']"),
    ("api_port", 80, "api_port 80 is out of range: use a port from 1024 to 65535"),
    ("api_port", 70000, "api_port 70000 is out of range"),
    ("cors_origins", "localhost:3000", 'not a valid origin: "localhost:3000"; each origin must look like'),
    (
        "cors_origins",
        "http://a.example.com, https://b.example.com/app",
        'not a valid origin: "https://b.example.com/app"',
    ),
    ("cors_origins", "http://localhost:3000/", 'not a valid origin: "http://localhost:3000/"'),
    ("package_manager", "pip", "'pip' is not in ['poetry', 'uv']"),
    ("auth", "oauth2", "'oauth2' is not in ['none', 'bearer']"),
]


@pytest.mark.parametrize(("question", "answer", "message"), INVALID, ids=[f"{q}={a!r}"[:40] for q, a, _ in INVALID])
def test_invalid_answer_is_refused(question: str, answer: Any, message: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=question) as caught:
        render(tmp_path / "service", **{question: answer})
    assert message in " ".join(str(caught.value).split())
    assert not (tmp_path / "service").exists(), "a refused answer must not leave a half-rendered service"


@pytest.mark.parametrize(
    ("project_name", "slug"),
    [
        ("Live Interactive Agent", "live-interactive-agent"),
        ("3D Render Farm", "3d-render-farm"),
        ("  Spaces   and -- Dashes  ", "spaces-and-dashes"),
        ("Café Ünïcode", "caf-n-code"),
        # Longer than the 64 characters a slug may have: the whole words that fit.
        (" ".join(["Very Long Project Name"] * 4), "very-long-project-name-very-long-project-name-very-long-project"),
        ("X" * 70, "x" * 64),
    ],
)
def test_slug_default_is_derived_from_the_name(project_name: str, slug: str, tmp_path: Path) -> None:
    import yaml

    service = render(tmp_path / "service", project_name=project_name)
    answers = yaml.safe_load((service / ".copier-answers.yml").read_text())
    assert answers["project_slug"] == slug


def test_a_name_without_any_usable_character_asks_for_a_slug(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match='project_slug "" is not valid'):
        render(tmp_path / "service", project_name="日本語")
