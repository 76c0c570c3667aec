"""`alembic` (what `make migrate` and a deployment's migration step run) configured by the
app's settings, and the errors a developer can hit: each one line, no traceback, no secret."""

import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from alembic.config import Config
from alembic.script import ScriptDirectory

from devtools.servers import free_port
from tests.conftest import BACKEND_DIR, ENV_EXAMPLE
from tests.database import ALEMBIC_INI

PASSWORD = "do-not-print-this-password"


def settings_env(**overrides: str) -> dict[str, str]:
    """An environment as a deployment gives it: every setting of .env.example, then OVERRIDES."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin")}
    for line in ENV_EXAMPLE.read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            env[name] = value
    env.update(overrides)
    return env


def alembic(*args: str, env: dict[str, str], cwd: Path = BACKEND_DIR) -> subprocess.CompletedProcess[str]:
    command = [sys.executable, "-m", "alembic", "-c", str(ALEMBIC_INI), *args]
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=60, check=False)


def test_upgrade_head_on_an_empty_database(empty_database_url: str) -> None:
    env = settings_env(DATABASE_URL=empty_database_url)
    upgrade = alembic("upgrade", "head", env=env)
    assert upgrade.returncode == 0, upgrade.stderr
    current = alembic("current", env=env)
    assert current.returncode == 0, current.stderr
    has_revisions = bool(ScriptDirectory.from_config(Config(ALEMBIC_INI)).get_heads())
    assert ("(head)" in current.stdout) is has_revisions, current.stdout


def assert_one_line_error(result: subprocess.CompletedProcess[str], *expected: str) -> None:
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    for text in expected:
        assert text in result.stderr, result.stderr
    assert PASSWORD not in output
    assert "Traceback" not in output


def test_an_unreachable_database_is_a_one_line_error() -> None:
    port = free_port()  # nothing listens there
    result = alembic(
        "upgrade", "head", env=settings_env(DATABASE_URL=f"postgresql://app:{PASSWORD}@127.0.0.1:{port}/app")
    )
    assert_one_line_error(
        result, f"error: cannot connect to the database at postgresql+asyncpg://app:***@127.0.0.1:{port}/app:"
    )


def test_a_database_that_never_answers_is_a_one_line_error() -> None:
    # Listens, so the kernel accepts the connection, but never answers it.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen(8)
        port = sock.getsockname()[1]
        url = f"postgresql://app:{PASSWORD}@127.0.0.1:{port}/app"
        result = alembic("upgrade", "head", env=settings_env(DATABASE_URL=url, DATABASE_CONNECT_TIMEOUT="1"))
    assert_one_line_error(result, "error: cannot connect to the database at", "no answer within 1 s")


def test_a_bad_configuration_names_the_variables(tmp_path: Path) -> None:
    env = settings_env(REDIS_URL=f"redis://:{PASSWORD}@127.0.0.1:notaport/0")
    del env["DATABASE_URL"]
    result = alembic("upgrade", "head", env=env, cwd=tmp_path)  # no backend/.env read either
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert "DATABASE_URL: is required but not set" in result.stderr
    assert "REDIS_URL: is not a Redis URL" in result.stderr
    assert PASSWORD not in output and "Traceback" not in output


@pytest.mark.skipif(shutil.which("make") is None, reason="make is not installed")
def test_make_migration_without_a_message_is_a_one_line_error() -> None:
    # As typed in a shell: not as a sub-make of `make test`, which would announce its directory.
    env = {k: v for k, v in os.environ.items() if k not in {"MAKEFLAGS", "MAKELEVEL", "MFLAGS"}}
    result = subprocess.run(
        ["make", "migration"], cwd=BACKEND_DIR.parent, env=env, capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode != 0
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr
    assert 'make migration m="add agents"' in result.stderr
    assert result.stdout == ""
