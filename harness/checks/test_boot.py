"""The service as `make api` serves it (no reload), on real PostgreSQL and Redis: endpoints,
request IDs, a dependency stopped and restarted, SIGTERM, and what it writes.

The last checks stop the module's service (``service_stopped``): keep them last.
"""

import signal
from collections.abc import Callable

import pytest
from support import (
    HEALTH,
    READINESS,
    READY,
    SHUTDOWN_MESSAGES,
    Response,
    Servers,
    Service,
    Stopped,
    log_records,
    wait_for,
)


def test_liveness(service: Service) -> None:
    response = service.get(HEALTH)
    assert (response.status, response.json()) == (200, {"status": "ok"}), response


def test_request_id_echoed_when_well_formed(service: Service) -> None:
    response = service.get(HEALTH, headers={"X-Request-ID": "boot-check-1"})
    assert response.headers.get("x-request-id") == "boot-check-1", response.headers


def test_readiness_with_both_connected(service: Service) -> None:
    response = service.get(READINESS)
    assert (response.status, response.json()) == (200, READY), response


def test_request_id_generated(service: Service) -> None:
    response = service.get(READINESS)
    assert len(response.headers.get("x-request-id", "")) == 36, response.headers


def test_openapi_title(service: Service, title: str) -> None:
    response = service.get("/openapi.json")
    assert response.status == 200 and response.json()["info"]["title"] == title, response


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_page_names_title(service: Service, title: str, page: str) -> None:
    response = service.get(page)
    assert response.status == 200 and title in response.body.decode(), response


@pytest.mark.parametrize(
    ("server_name", "field"), [("redis", "redis"), ("postgres", "database")], ids=["redis", "postgres"]
)
def test_dependency_stopped_then_restarted(
    service: Service,
    servers: Servers,
    readiness_timeout: float,
    figure: Callable[[str], None],
    server_name: str,
    field: str,
) -> None:
    """Readiness 503 naming it within READINESS_TIMEOUT; 200 again once it is back, same process."""
    server = getattr(servers, server_name)
    server.stop()
    down, took = service.timed_get(READINESS)
    expected = {**READY, "status": "unavailable", field: "disconnected"}
    assert isinstance(down, Response) and (down.status, down.json()) == (503, expected), down
    assert took <= readiness_timeout, f"answered after {took:.3f} s, READINESS_TIMEOUT={readiness_timeout} s"
    server.start()
    pid = service.proc.pid
    what = f"{server_name} restarted on port {server.port}: readiness 200 again"
    took = wait_for(what, lambda: service.status(READINESS) == 200, within=5, alive=service.alive)
    assert service.proc.pid == pid
    figure(f"boot: {server_name} restarted: readiness 200 after {took:.3f} s")


def test_sigterm_clean_exit(service_stopped: Stopped) -> None:
    # uvicorn re-raises the SIGTERM it caught once it has shut down cleanly: -15 (143 in a shell).
    assert service_stopped.code == -signal.SIGTERM, (
        f"exit status {service_stopped.code} (None: still running after 20 s)"
    )


def test_output_is_json(service: Service, service_stopped: Stopped) -> None:
    assert log_records(service.log)


@pytest.mark.parametrize("message", SHUTDOWN_MESSAGES)
def test_shutdown_logged(service: Service, service_stopped: Stopped, message: str) -> None:
    messages = [record.get("message") for record in log_records(service.log)]
    assert message in messages, messages[-8:]
