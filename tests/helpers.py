"""Rendering the template and driving the rendered service's own commands."""

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import copier

ROOT = Path(__file__).resolve().parents[1]


def render(dst: Path, **answers: Any) -> Path:
    """Renders the working tree of this repository (uncommitted changes included)."""
    copier.run_copy(str(ROOT), dst, data=answers, defaults=True, quiet=True, vcs_ref="HEAD", unsafe=False)
    return dst


def run(command: list[str], cwd: Path, timeout: float = 900, env: dict[str, str] | None = None) -> str:
    """Runs a command; on failure, the assertion shows what it printed."""
    result = subprocess.run(
        command,
        cwd=cwd,
        env=clean_env() if env is None else env,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(command)} in {cwd} exited {result.returncode}:\n{output[-6000:]}"
    return output


def tool(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} is not on PATH; install the test requirements (tests/requirements.txt)"
    return path


def clean_env() -> dict[str, str]:
    # The rendered service must not see configuration from the shell running these tests.
    # (nox points VIRTUAL_ENV and UV_PROJECT_ENVIRONMENT at its own session environment.)
    drop = {"DATABASE_URL", "REDIS_URL", "VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT", "UV_PYTHON", "POETRY_ACTIVE"}
    return {k: v for k, v in os.environ.items() if k not in drop}
