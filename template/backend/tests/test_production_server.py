"""`python -m app`, the production server (`make serve`, the container image), as a process."""

import signal
import subprocess
import sys
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx2
import pytest

from app.core.config import Settings
from tests.conftest import BACKEND_DIR, Servers
from tests.otlp import Receiver, running_receiver
from tests.test_server import Server, free_port, server_env


@pytest.fixture
def production_server(servers: Servers, tmp_path: Path) -> Server:
    port = free_port()
    env = server_env(servers, BIND_ADDRESS="127.0.0.1", PORT=str(port), WEB_CONCURRENCY="1", SHUTDOWN_TIMEOUT="5")
    return Server([sys.executable, "-m", "app"], BACKEND_DIR, env, port, tmp_path / "server.log")


def test_serves_the_app_logs_json_only_and_stops_on_sigterm(production_server: Server) -> None:
    try:
        production_server.wait_until_serving()
        ready = httpx2.get(f"{production_server.base_url}/api/v1/health/ready", headers={"X-Request-ID": "prod-1"})
        assert ready.status_code == 200 and ready.json()["status"] == "ok"
        production_server.process.send_signal(signal.SIGTERM)
        assert production_server.process.wait(timeout=15) == 0, production_server.log.read_text()
    finally:
        production_server.cleanup()

    records = production_server.log_records()  # fails on a line that is not JSON
    messages = [str(r["message"]) for r in records]
    assert any(m.startswith("Starting gunicorn") for m in messages), messages  # the server's own lines
    assert "Application startup complete." in messages, messages  # the worker's uvicorn lines
    assert "Database engine disposed" in messages, messages  # the app's shutdown ran
    access = [r for r in records if r["logger"] == "app.access" and r.get("request_id") == "prod-1"]
    assert [r["path"] for r in access] == ["/api/v1/health/ready"]


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("WEB_CONCURRENCY", "0", "WEB_CONCURRENCY: Input should be greater than or equal to 1"),
        ("PORT", "80000", "PORT: Input should be less than or equal to 65535"),
        ("BIND_ADDRESS", "localhost", "BIND_ADDRESS: is not an IP address"),
        ("FORWARDED_ALLOW_IPS", "10.0.0.1/8,proxy", "FORWARDED_ALLOW_IPS: '10.0.0.1/8', 'proxy' not an IP address"),
        ("SHUTDOWN_TIMEOUT", "0", "SHUTDOWN_TIMEOUT: Input should be greater than or equal to 1"),
    ],
)
def test_a_bad_server_setting_stops_it_before_any_worker_starts(
    servers: Servers, tmp_path: Path, name: str, value: str, message: str
) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "app"],
        cwd=BACKEND_DIR,
        env=server_env(servers, **{name: value}),
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 1
    assert message in output
    assert "Traceback" not in output
    assert "Starting gunicorn" not in output  # nothing was started


def test_forwarded_allow_ips_takes_addresses_networks_or_any(make_settings: Callable[..., Settings]) -> None:
    assert make_settings(FORWARDED_ALLOW_IPS="10.0.0.0/8, 192.0.2.7,::1").FORWARDED_ALLOW_IPS == [
        "10.0.0.0/8",
        "192.0.2.7",
        "::1",
    ]
    assert make_settings(FORWARDED_ALLOW_IPS="*").FORWARDED_ALLOW_IPS == ["*"]
    assert make_settings(FORWARDED_ALLOW_IPS="").FORWARDED_ALLOW_IPS == []


def requests_per_worker(receiver: Receiver, route: str) -> dict[str, float]:
    """The latest request count for ROUTE that each worker (service.instance.id) exported."""
    latest: dict[str, tuple[int, float]] = {}
    for point in receiver.points("http.server.request.duration"):
        if point.attributes.get("http.route") == route:
            worker = str(point.resource["service.instance.id"])
            if point.time_unix_nano >= latest.get(worker, (0, 0.0))[0]:
                latest[worker] = (point.time_unix_nano, point.value)
    return {worker: count for worker, (_, count) in latest.items()}


def test_two_workers_metrics_add_up_to_the_requests_sent(servers: Servers, tmp_path: Path) -> None:
    # Each worker pushes its own cumulative counts under an instance ID of its own; the
    # collector's sum over the instances is the service's count.
    route = "/api/v1/health/ready"
    with running_receiver() as receiver:
        port = free_port()
        env = server_env(
            servers,
            BIND_ADDRESS="127.0.0.1",
            PORT=str(port),
            WEB_CONCURRENCY="2",
            SHUTDOWN_TIMEOUT="10",
            TELEMETRY_ENABLED="true",
            OTEL_EXPORTER_OTLP_ENDPOINT=receiver.endpoint,
            OTEL_METRIC_EXPORT_INTERVAL="300",
        )
        server = Server([sys.executable, "-m", "app"], BACKEND_DIR, env, port, tmp_path / "server.log")
        sent = 0
        try:
            server.wait_until_serving()
            # New connections from four threads, until both workers have reported some
            # (the kernel picks the worker that accepts); bounded in requests and time.
            deadline = time.monotonic() + 30
            with ThreadPoolExecutor(4) as pool:
                while len(requests_per_worker(receiver, route)) < 2 and sent < 400:
                    assert time.monotonic() < deadline, f"one worker took every request: {server.log.read_text()}"
                    answers = list(pool.map(lambda _: httpx2.get(f"{server.base_url}{route}").status_code, range(20)))
                    assert answers == [200] * 20
                    sent += 20
                    time.sleep(0.4)
            server.process.send_signal(signal.SIGTERM)  # each worker sends its last counts as it stops
            assert server.process.wait(timeout=30) == 0, server.log.read_text()
        finally:
            server.cleanup()
        per_worker = requests_per_worker(receiver, route)
    assert len(per_worker) == 2 and all(count > 0 for count in per_worker.values()), per_worker
    assert sum(per_worker.values()) == sent, per_worker
    # Each worker logged the instance ID its figures carry.
    started = [r for r in server.log_records() if str(r["message"]).startswith("Telemetry on")]
    assert {r["service_instance_id"] for r in started} == set(per_worker)
