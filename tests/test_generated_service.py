"""The user's path: render, `make install`, `make lint`, `make test`, then `make dev` serves the API.

Runs once per package manager; each install is real (poetry or uv, from the package index).
"""

import contextlib
import os
import signal
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.helpers import NON_DEFAULT_ANSWERS, clean_env, port_is_free, prepare_for_install, render, run, tool

# Every other answer changed too, but python_version: only Python 3.11 is installed on
# the machines this runs on, and the other versions are rendered and type-checked in
# test_render.py.
CASES = {"poetry-defaults": {}, "uv-non-default": {**NON_DEFAULT_ANSWERS, "python_version": "3.11"}}


@pytest.fixture(scope="module", params=list(CASES), ids=list(CASES))
def installed(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, Any]]:
    answers = CASES[request.param]
    tool(answers.get("package_manager", "poetry"))
    service = render(tmp_path_factory.mktemp(request.param) / "service", **answers)
    prepare_for_install(service)
    run(["make", "install"], service, env=clean_env())
    return service, answers


def test_make_lint_passes(installed: tuple[Path, dict[str, Any]]) -> None:
    service, _ = installed
    run(["make", "lint"], service, env=clean_env())


def test_make_test_passes(installed: tuple[Path, dict[str, Any]]) -> None:
    service, _ = installed
    output = run(["make", "test"], service, env=clean_env())
    summary = output.strip().splitlines()[-1]
    assert " passed" in summary and "failed" not in summary and "error" not in summary, summary


def test_make_dev_serves_every_endpoint_on_the_configured_port(installed: tuple[Path, dict[str, Any]]) -> None:
    service, answers = installed
    port = answers.get("api_port", 8000)
    if not port_is_free(port):
        pytest.skip(f"port {port} is in use on this machine")
    title = f"{answers.get('project_name', 'Live Interactive Agent')} API"
    base = f"http://127.0.0.1:{port}"
    log = service / "make-dev.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            ["make", "dev"], cwd=service, env=clean_env(), stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )
    try:
        deadline = time.monotonic() + 90
        while True:
            assert process.poll() is None, f"make dev exited {process.returncode}:\n{log.read_text()}"
            try:
                if httpx.get(f"{base}/api/v1/health", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, f"make dev did not serve on {port}:\n{log.read_text()}"
            time.sleep(0.2)

        assert httpx.get(f"{base}/api/v1/health").json() == {"status": "ok"}
        ready = httpx.get(f"{base}/api/v1/health/ready")
        assert (ready.status_code, ready.json()) == (
            200, {"status": "ok", "database": "connected", "redis": "connected"}
        )
        assert ready.headers["x-request-id"]
        assert httpx.get(f"{base}/openapi.json").json()["info"]["title"] == title
        for page in ("/docs", "/redoc"):
            response = httpx.get(base + page)
            assert response.status_code == 200, page
            assert title in response.text, page
        # The frontend's origin (the first allowed one) may call the API from a browser.
        origin = answers.get("cors_origins", "http://localhost:3000").split(",")[0].strip()
        preflight = httpx.options(
            f"{base}/api/v1/health", headers={"Origin": origin, "Access-Control-Request-Method": "GET"}
        )
        assert preflight.status_code == 200
        assert preflight.headers["access-control-allow-origin"] == origin
        missing = httpx.get(f"{base}/nope")
        assert missing.status_code == 404
        assert missing.json()["error"]["code"] == "not_found"
    finally:
        # Ctrl-C, as a developer stops it: uvicorn, the reloader and both servers stop.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()
            pytest.fail(f"make dev did not stop on Ctrl-C:\n{log.read_text()}")
    leftovers = subprocess.run(["pgrep", "-f", str(service / "backend")], capture_output=True, text=True, check=False)
    assert leftovers.stdout == "", f"processes left running: {leftovers.stdout}"
    assert port_is_free(port)
