"""The layered package structure imports cleanly, with no side effects."""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

APP_DIR = Path(__file__).resolve().parents[1] / "app"
PACKAGES = ["api", "api/v1", "core", "middleware", "schemas", "exceptions", "db", "models", "cache"]


@pytest.mark.parametrize("package", PACKAGES)
def test_package_exists_with_init(package: str) -> None:
    assert (APP_DIR / package / "__init__.py").is_file()


def test_layers_import_without_reading_settings_or_configuring_logging() -> None:
    # A fresh interpreter with no configuration at all: importing every module,
    # app.main included, must neither fail nor configure logging.
    modules = [
        "app.api",
        "app.api.deps",
        "app.api.pagination",
        "app.api.v1",
        "app.api.v1.router",
        "app.core",
        "app.middleware",
        "app.schemas",
        "app.schemas.fields",
        "app.exceptions",
        "app.exceptions.handlers",
        "app.db",
        "app.models",
        "app.cache",
        "app.main",
        "app.core.telemetry",  # loaded only with TELEMETRY_ENABLED=true; importing it does nothing either
    ]
    code = (
        "import importlib, logging, sys\n"
        f"for name in {modules!r}: importlib.import_module(name)\n"
        "assert not logging.getLogger().handlers, logging.getLogger().handlers\n"
        "assert not hasattr(sys.modules['app.main'], 'app'), 'app.main builds an app: servers call create_app'\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=APP_DIR.parent,
        env={"PATH": "/usr/bin:/bin", "PYTHONPATH": str(APP_DIR.parent)},
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr


def test_no_print_calls_in_the_application() -> None:
    offenders = []
    for path in APP_DIR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id == "print":
                offenders.append(f"{path.relative_to(APP_DIR.parent)}:{node.lineno}")
    assert offenders == [], "use a logger instead of print()"
