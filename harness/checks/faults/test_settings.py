"""Hostile configuration: every missing or invalid setting stops the start with a message that
names it and shows no secret; secrets never reach the output; DOCS_ENABLED=false."""

import subprocess
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from app.core.config import Settings  # the service's own (conftest puts its backend/ on sys.path)
from support import HEALTH, READINESS, Service, env_from_example, uvicorn_command

# Distinctive values that must never appear in anything the service prints.
SECRETS = {
    "DATABASE_URL": "pg-Secret-4f9c1e",
    "REDIS_URL": "redis-Secret-b72d0a",
    "LIVEKIT_API_SECRET": "lk-Secret-93e5d8",
}
PG, RD, LK = SECRETS.values()
# Nothing listens on port 1: the service starts, and reports both servers down.
SECRET_SETTINGS = {
    "DATABASE_URL": f"postgresql://postgres:{PG}@127.0.0.1:1/app",
    "REDIS_URL": f"redis://:{RD}@127.0.0.1:1/0",
    **({"LIVEKIT_API_SECRET": LK} if "LIVEKIT_API_SECRET" in Settings.model_fields else {}),
}
REQUIRED = sorted(name for name, spec in Settings.model_fields.items() if spec.is_required())
# id: (variable, value; None: unset)
BAD_SETTINGS: dict[str, tuple[str, str | None]] = {
    **{f"{name}-missing": (name, None) for name in REQUIRED},
    "DATABASE_URL-not-a-url": ("DATABASE_URL", "not a url"),
    "DATABASE_URL-without-host": ("DATABASE_URL", f"postgresql://postgres:{PG}/app"),
    "DATABASE_URL-bad-port": ("DATABASE_URL", f"postgresql://postgres:{PG}@127.0.0.1:54x32/app"),
    "DATABASE_URL-mysql": ("DATABASE_URL", f"mysql://root:{PG}@127.0.0.1/app"),
    "REDIS_URL-without-scheme": ("REDIS_URL", "127.0.0.1:6379"),
    "REDIS_URL-bad-port": ("REDIS_URL", f"redis://:{RD}@127.0.0.1:63x79/0"),
    "REDIS_URL-http": ("REDIS_URL", f"http://:{RD}@127.0.0.1:6379/0"),
    "CORS_ORIGINS-not-json": ("CORS_ORIGINS", "[not json"),
    "CORS_ORIGINS-star-with-credentials": ("CORS_ORIGINS", "*"),
    "DEBUG-maybe": ("DEBUG", "maybe"),
}


def documented_required(backend: Path) -> list[str]:
    """The variables set in .env.example's "Required" section."""
    names, section = [], None
    for line in (backend / ".env.example").read_text().splitlines():
        if line.startswith("# ---"):
            section = line.split()[2]
        elif section == "Required" and line and not line.startswith("#"):
            names.append(line.partition("=")[0])
    return sorted(names)


def test_required_settings_documented(backend: Path) -> None:
    """The settings without a default are the ones .env.example lists as required."""
    assert documented_required(backend) == REQUIRED


@pytest.fixture(scope="module")
def refusals(request: pytest.FixtureRequest, backend: Path) -> dict[str, tuple[int | None, str]]:
    """Each selected bad setting's start, a few at a time (each is mostly imports): exit status and output."""
    from devtools.servers import free_port

    selected = [
        item.callspec.id
        for item in request.session.items
        if isinstance(item, pytest.Function) and item.originalname == "test_bad_setting_refused"
    ]
    base = {**env_from_example(backend), **SECRET_SETTINGS}

    def start(case: str) -> tuple[int | None, str]:
        variable, value = BAD_SETTINGS[case]
        env = {k: v for k, v in {**base, variable: value}.items() if v is not None}
        command = uvicorn_command(backend, free_port())
        try:
            done = subprocess.run(command, cwd=backend, env=env, capture_output=True, timeout=30, check=False)
        except subprocess.TimeoutExpired as exc:
            return None, f"still running after 30 s: {exc.stdout!r} {exc.stderr!r}"
        return done.returncode, (done.stdout + done.stderr).decode(errors="replace")

    with ThreadPoolExecutor(4) as pool:
        return dict(zip(selected, pool.map(start, selected), strict=True))


@pytest.mark.parametrize("case", BAD_SETTINGS)
def test_bad_setting_refused(refusals: dict[str, tuple[int | None, str]], case: str) -> None:
    """The start stops with a non-zero status, naming the variable, showing no secret."""
    variable, _ = BAD_SETTINGS[case]
    code, output = refusals[case]
    leaked = [name for name, secret in SECRETS.items() if secret in output]
    assert code not in (0, None), f"exit status {code}:\n{output[-3000:]}"
    assert variable in output, f"{variable} not named:\n{output[-3000:]}"
    assert not leaked, f"the secrets of {leaked} shown:\n{output[-3000:]}"


def test_secrets_not_in_output(launch: Callable[..., Service]) -> None:
    """Secrets in the settings, servers unreachable: readiness 503, and no secret in anything it writes."""
    service = launch("secrets", **SECRET_SETTINGS)
    assert service.status(READINESS) == 503
    code, _ = service.terminate(grace=15)
    assert code is not None, "SIGTERM: still running after 15 s"
    leaked = [name for name, secret in SECRETS.items() if secret in service.log.read_text()]
    assert not leaked, f"the secrets of {leaked} written"


@pytest.fixture(scope="module")
def docs_off(module_launcher: Callable[..., Service]) -> Service:
    return module_launcher("docs-off", DOCS_ENABLED="false")


@pytest.mark.parametrize("path", ["/docs", "/redoc", "/openapi.json"])
def test_docs_disabled_removes(docs_off: Service, path: str) -> None:
    assert docs_off.status(path) == 404, docs_off.timed_get(path)[0]


def test_docs_disabled_liveness_still_200(docs_off: Service) -> None:
    assert docs_off.status(HEALTH) == 200, docs_off.timed_get(HEALTH)[0]
