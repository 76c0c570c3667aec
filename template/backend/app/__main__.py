"""The production server: gunicorn with uvicorn workers, as `make serve` and the container image run it.

    python -m app    # in backend/, like the app: settings from the environment, then .env

It reads BIND_ADDRESS, PORT, WEB_CONCURRENCY, FORWARDED_ALLOW_IPS and SHUTDOWN_TIMEOUT with the
app's other settings and checks them all before anything starts. Then gunicorn runs
WEB_CONCURRENCY uvicorn worker processes (each builds its app with ``create_app``) and
respawns any that dies; every log line is the app's JSON. On SIGTERM the workers stop
accepting connections, finish the requests in flight and shut the app down; any still
busy after SHUTDOWN_TIMEOUT seconds are killed. `make api` runs uvicorn alone, with reload.
"""

import logging
from pathlib import Path
from typing import Any

from fastapi import FastAPI

from app.core.config import Settings, load_settings_or_exit
from app.core.logging import logging_config
from app.main import create_app

# The workers' heartbeat files (made with mkstemp) go on tmpfs where there is one: on a
# disk-backed /tmp their updates can stall a worker, as gunicorn's docs warn.
HEARTBEAT_DIR = Path("/dev/shm")  # noqa: S108


def uvicorn_lines_to_the_app(worker: Any) -> None:
    """gunicorn's hook in each worker, once its app is built and before uvicorn serves it."""
    # uvicorn-worker gives uvicorn's error logger gunicorn's handlers (none: gunicorn's records
    # go to the root handler) and stops it propagating, which would lose uvicorn's own lines.
    # Its access logger stays silent: the app writes that line.
    logging.getLogger("uvicorn.error").propagate = True


def server_options(settings: Settings) -> dict[str, Any]:
    """gunicorn's settings (its documented names) for SETTINGS."""
    host = f"[{settings.BIND_ADDRESS}]" if ":" in settings.BIND_ADDRESS else settings.BIND_ADDRESS
    options: dict[str, Any] = {
        "bind": [f"{host}:{settings.PORT}"],
        "workers": settings.WEB_CONCURRENCY,
        "worker_class": "uvicorn_worker.UvicornWorker",
        "post_worker_init": uvicorn_lines_to_the_app,
        # uvicorn takes X-Forwarded-For / -Proto only from these peers.
        "forwarded_allow_ips": ",".join(settings.FORWARDED_ALLOW_IPS),
        "graceful_timeout": settings.SHUTDOWN_TIMEOUT,
        # No control socket in the home directory (which a container may not let it write).
        "control_socket_disable": True,
        "loglevel": "debug" if settings.DEBUG else "info",
        # gunicorn's own records go to the app's JSON handler (the workers' uvicorn records
        # are routed there by create_app, which also writes the access line).
        "logconfig_dict": {
            **logging_config(debug=settings.DEBUG),
            "loggers": {name: {"handlers": [], "propagate": True} for name in ("gunicorn.error", "gunicorn.access")},
        },
    }
    if HEARTBEAT_DIR.is_dir():
        options["worker_tmp_dir"] = str(HEARTBEAT_DIR)
    return options


def serve(settings: Settings) -> None:
    # Imported only now: gunicorn reads WEB_CONCURRENCY when imported and fails on a bad
    # value with a traceback; the settings have been checked by this point.
    from gunicorn.app.base import BaseApplication

    class ProductionServer(BaseApplication):  # type: ignore[misc]  # gunicorn has no type hints
        def load_config(self) -> None:
            for name, value in server_options(settings).items():
                self.cfg.set(name, value)

        def load(self) -> FastAPI:
            # Called in each worker: every worker builds its own app (engine, Redis client).
            return create_app()

    ProductionServer().run()


def main() -> None:
    # Checked before any worker starts: one message, not one traceback per worker.
    serve(load_settings_or_exit())


if __name__ == "__main__":
    main()
