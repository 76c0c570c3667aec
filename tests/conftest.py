from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import render, run, tool


@pytest.fixture(scope="session")
def tooling_python(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """A Python with the rendered service's dependencies (uv sync of a render with the most of
    them: auth=bearer's), to lint and import every rendering without installing each one."""
    service = render(tmp_path_factory.mktemp("tooling") / "service", package_manager="uv", auth="bearer")
    run([tool("uv"), "sync", "--quiet"], service / "backend")
    yield service / "backend" / ".venv" / "bin" / "python"
