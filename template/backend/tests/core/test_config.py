"""Settings from the environment and .env, validated with safe messages."""

from collections.abc import Callable
from pathlib import Path

import pytest
from pydantic import SecretStr

from app.core.config import Settings, SettingsError, load_settings
from tests.conftest import ENV_EXAMPLE, Servers

REQUIRED = sorted(name for name, field in Settings.model_fields.items() if field.is_required())
SECRET_FIELDS = sorted(name for name, field in Settings.model_fields.items() if field.annotation is SecretStr)
SECRET = "s3cr3t-Pa55word-xyz"


def example_values() -> dict[str, str]:
    lines = ENV_EXAMPLE.read_text().splitlines()
    return dict(line.split("=", 1) for line in lines if line and not line.startswith("#"))


@pytest.fixture
def env_file(tmp_path: Path, servers: Servers) -> Callable[..., Path]:
    """Writes a .env like .env.example, with SECRET in every secret, plus overrides."""

    def write(**overrides: str) -> Path:
        values = example_values()
        values.update(dict.fromkeys(SECRET_FIELDS, SECRET))
        values.update(DATABASE_URL=servers.database_url, REDIS_URL=servers.redis_url)
        values.update(overrides)
        path = tmp_path / ".env"
        path.write_text("".join(f"{name}={value}\n" for name, value in values.items()))
        return path

    return write


def test_defaults_and_required_fields(settings: Settings) -> None:
    assert settings.API_V1_PREFIX == "/api/v1"
    assert settings.DEBUG is False
    assert settings.PROJECT_NAME
    assert {"DATABASE_URL", "REDIS_URL"} <= set(REQUIRED)


def test_env_example_names_every_setting() -> None:
    text = ENV_EXAMPLE.read_text()
    assert [name for name in Settings.model_fields if f"{name}=" not in text] == []


def test_loads_values_from_env_file(env_file: Callable[..., Path]) -> None:
    path = env_file(DEBUG="true", CORS_ORIGINS="https://a.example.com")
    settings = Settings(_env_file=path)
    assert settings.DEBUG is True
    assert settings.CORS_ORIGINS == ["https://a.example.com"]


def test_environment_overrides_env_file(env_file: Callable[..., Path], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DEBUG", "false")
    assert Settings(_env_file=env_file(DEBUG="true")).DEBUG is False


def test_env_example_is_a_valid_configuration() -> None:
    settings = Settings(_env_file=ENV_EXAMPLE)
    assert settings.DATABASE_URL.startswith("postgresql+asyncpg://")


@pytest.mark.parametrize("missing", REQUIRED)
def test_missing_variable_is_named_without_printing_other_values(
    missing: str, env_file: Callable[..., Path], servers: Servers
) -> None:
    path = env_file()
    path.write_text("\n".join(line for line in path.read_text().splitlines() if not line.startswith(missing + "=")))
    with pytest.raises(SettingsError) as caught:
        load_settings(_env_file=path)
    message = str(caught.value)
    assert f"{missing}: is required but not set" in message
    for value in (SECRET, servers.database_url, servers.redis_url):
        assert value not in message
    # The original pydantic error, which echoes inputs, is not chained.
    assert caught.value.__cause__ is None and caught.value.__suppress_context__


def test_every_missing_variable_is_listed_at_once(tmp_path: Path) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(_env_file=tmp_path / "absent.env")
    for name in REQUIRED:
        assert f"{name}: is required but not set" in str(caught.value)


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ("postgresql+asyncpg://u:p@db.internal:5432/app", "postgresql+asyncpg://u:p@db.internal:5432/app"),
        ("postgresql://u:p@db.internal:5432/app", "postgresql+asyncpg://u:p@db.internal:5432/app"),
        ("postgres://u:p@db.internal/app", "postgresql+asyncpg://u:p@db.internal/app"),
    ],
)
def test_database_url_forms_are_normalised_to_asyncpg(
    given: str, expected: str, make_settings: Callable[..., Settings]
) -> None:
    assert expected == make_settings(DATABASE_URL=given).DATABASE_URL


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("DATABASE_URL", "not a url"),
        ("DATABASE_URL", "mysql://u:" + SECRET + "@db/app"),
        ("DATABASE_URL", "postgresql://u:" + SECRET + "@db:notaport/app"),
        # No "@host": the parser takes the password for a port.
        ("DATABASE_URL", "postgresql://u:" + SECRET + "/app"),
        ("DATABASE_URL", "postgresql:///app"),
        ("REDIS_URL", "localhost:6379"),
        ("REDIS_URL", "redis://:" + SECRET + "@cache:99999999/0"),
        ("REDIS_URL", "http://cache:6379"),
        ("CORS_ORIGINS", "[not json"),
        ("CORS_ORIGINS", "http://localhost:3000/path"),
        ("CORS_ORIGINS", "localhost:3000"),
        ("DEBUG", "maybe"),
        ("READINESS_TIMEOUT", "0"),
    ],
)
def test_malformed_value_is_refused_naming_the_variable(name: str, value: str, env_file: Callable[..., Path]) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(_env_file=env_file(**{name: value}))
    message = str(caught.value)
    assert f"  {name}: " in message
    assert SECRET not in message


@pytest.mark.parametrize(
    ("given", "expected"),
    [
        ('["http://localhost:3000", "https://app.example.com"]', ["http://localhost:3000", "https://app.example.com"]),
        ("http://localhost:3000, https://app.example.com", ["http://localhost:3000", "https://app.example.com"]),
        ("https://app.example.com", ["https://app.example.com"]),
    ],
)
def test_cors_origins_accept_json_list_or_comma_separated(
    given: str, expected: list[str], monkeypatch: pytest.MonkeyPatch, make_settings: Callable[..., Settings]
) -> None:
    monkeypatch.setenv("CORS_ORIGINS", given)
    settings = make_settings()
    assert expected == settings.CORS_ORIGINS


def test_wildcard_origin_with_credentials_is_refused(env_file: Callable[..., Path]) -> None:
    with pytest.raises(SettingsError, match=r"CORS_ORIGINS='\*' cannot be combined with CORS_ALLOW_CREDENTIALS"):
        load_settings(_env_file=env_file(CORS_ORIGINS="*"))


def test_wildcard_origin_without_credentials_is_allowed(make_settings: Callable[..., Settings]) -> None:
    settings = make_settings(CORS_ORIGINS="*", CORS_ALLOW_CREDENTIALS=False)
    assert settings.CORS_ORIGINS == ["*"]


def test_secrets_do_not_show_in_repr(env_file: Callable[..., Path]) -> None:
    path = env_file(DATABASE_URL=f"postgresql://u:{SECRET}@db/app", REDIS_URL=f"redis://:{SECRET}@cache/0")
    settings = Settings(_env_file=path)
    assert SECRET not in repr(settings)
    assert SECRET not in str(settings)
