"""The production server: granian, as `make serve` and the container image run it.

    python -m app    # in backend/, like the app: settings from the environment, then .env

It reads HOST, PORT, WEB_CONCURRENCY, FORWARDED_ALLOW_IPS and SHUTDOWN_TIMEOUT with the
app's other settings and checks them all before any worker starts. Then granian runs
WEB_CONCURRENCY worker processes under one supervising process: no reload, a crashed
worker respawned, every log line JSON. On SIGTERM the workers stop accepting
connections, finish the requests in flight and shut the app down; any still busy after
SHUTDOWN_TIMEOUT seconds are killed. `make api` keeps uvicorn, with reload, for development.
"""

import sys
from typing import Any

from granian import Granian
from granian.constants import Interfaces
from granian.log import LogLevels
from granian.utils.proxies import wrap_asgi_with_proxy_headers
from starlette.types import ASGIApp

from app.core.config import Settings, SettingsError, load_settings
from app.core.logging import logging_config
from app.main import create_app

# Each worker imports this and calls it: every worker builds its own app (and engine).
SERVED_APP_FACTORY = "app.__main__:create_served_app"


def create_served_app() -> ASGIApp:
    """The app as the production server serves it: forwarded headers believed only from FORWARDED_ALLOW_IPS."""
    settings = load_settings()
    app = create_app(settings)
    if not settings.FORWARDED_ALLOW_IPS:
        return app
    # From a trusted peer, X-Forwarded-For becomes request.client (the nearest address
    # not itself trusted) and X-Forwarded-Proto the scheme; from any other, both are ignored.
    served: ASGIApp = wrap_asgi_with_proxy_headers(app, trusted_hosts=settings.FORWARDED_ALLOW_IPS)
    return served


def server_logging_config(settings: Settings) -> dict[str, Any]:
    # granian's own loggers hand their records to the app's JSON handler.
    config = logging_config(debug=settings.DEBUG)
    config["loggers"] = {name: {"handlers": [], "propagate": True} for name in ("_granian", "granian.access")}
    return config


def main() -> None:
    try:
        settings = load_settings()
    except SettingsError as exc:
        # One readable message and status 1 before any worker starts, not one traceback per worker.
        sys.exit(f"error: {exc}")
    Granian(
        SERVED_APP_FACTORY,
        factory=True,
        interface=Interfaces.ASGI,
        address=settings.HOST,
        port=settings.PORT,
        workers=settings.WEB_CONCURRENCY,
        respawn_failed_workers=True,
        workers_kill_timeout=settings.SHUTDOWN_TIMEOUT,
        log_dictconfig=server_logging_config(settings),
        log_level=LogLevels.debug if settings.DEBUG else LogLevels.info,
    ).serve()


if __name__ == "__main__":
    main()
