"""What a rendered service's deployment files declare: probes, ports, the image's settings.

SERVICE_DIR names the rendered service (the deploy session sets it).
"""

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml  # PyYAML: the service has it (uvicorn[standard])


def service_dir() -> Path:
    value = os.environ.get("SERVICE_DIR")
    if not value or not (Path(value) / "backend" / "Dockerfile").is_file():
        raise pytest.UsageError(f"SERVICE_DIR must name a rendered service (with backend/Dockerfile); got {value!r}")
    return Path(value).resolve()


SERVICE = service_dir()
BACKEND = SERVICE / "backend"
K8S = SERVICE / "deploy" / "k8s"
MIGRATE = ["alembic", "upgrade", "head"]


@dataclass(frozen=True)
class Probe:
    source: str  # file and probe
    kind: str  # startup, readiness, liveness or healthcheck
    path: str
    port: int | str  # a number, or a container port name left unresolved (a failure)

    def __str__(self) -> str:
        return f"{self.source} {self.path}"


def yaml_documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if isinstance(doc, dict)]


def k8s_documents() -> list[tuple[str, dict[str, Any]]]:
    return [
        (f"deploy/k8s/{path.name}", doc)
        for path in sorted(K8S.glob("*.yaml"))
        if path.name != "kustomization.yaml"
        for doc in yaml_documents(path)
    ]


def pod_spec(document: dict[str, Any]) -> dict[str, Any] | None:
    spec = document.get("spec") or {}
    if document.get("kind") == "Pod":
        return spec
    template = spec.get("template") or (spec.get("jobTemplate") or {}).get("spec", {}).get("template")
    return (template or {}).get("spec")


def containers(kind: str) -> list[tuple[str, dict[str, Any]]]:
    found = []
    for source, document in k8s_documents():
        if document.get("kind") == kind and (spec := pod_spec(document)):
            found += [(f"{source} {c['name']}", c) for c in spec.get("containers", [])]
    return found


def dockerfile_instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of backend/Dockerfile, continuation lines joined."""
    text = re.sub(r"\\\n", " ", (BACKEND / "Dockerfile").read_text())
    lines = [line.strip() for line in text.splitlines()]
    return [(line.split(maxsplit=1)[0].upper(), line.split(maxsplit=1)[1]) for line in lines if line and line[0] != "#"]


def image_port() -> int:
    """The PORT the image sets (the final stage's ENV)."""
    ports = [m for name, args in dockerfile_instructions() if name == "ENV" for m in re.findall(r"\bPORT=(\d+)", args)]
    assert ports, "backend/Dockerfile sets no ENV PORT"
    return int(ports[-1])


def healthcheck_command() -> list[str]:
    checks = [args for name, args in dockerfile_instructions() if name == "HEALTHCHECK"]
    assert len(checks) == 1, f"backend/Dockerfile has {len(checks)} HEALTHCHECK instructions"
    _, _, command = checks[0].partition(" CMD ")
    assert command.lstrip().startswith("["), "HEALTHCHECK CMD is not in exec form"
    return list(json.loads(command))


def compose() -> dict[str, Any]:
    return dict(yaml.safe_load((SERVICE / "compose.yaml").read_text()))


def probes() -> list[Probe]:
    found = []
    for source, container in containers("Deployment"):
        ports = {p["name"]: p["containerPort"] for p in container.get("ports", []) if "name" in p}
        for key in ("startupProbe", "readinessProbe", "livenessProbe"):
            if (probe := container.get(key)) is None:
                continue
            http = probe.get("httpGet")
            assert http, f"{source} {key} is not an httpGet probe"
            port = http["port"]
            found.append(Probe(f"{source} {key}", key.removesuffix("Probe"), http["path"], ports.get(port, port)))
    paths = re.findall(r"""['"](/[^'"\s]*)['"]""", " ".join(healthcheck_command()))
    found += [Probe("backend/Dockerfile HEALTHCHECK", "healthcheck", path, image_port()) for path in paths]
    for name, spec in compose()["services"].items():
        test = " ".join(map(str, (spec.get("healthcheck") or {}).get("test") or []))
        for path in re.findall(r"https?://[^/\s'\"]+(/[^\s'\"]*)", test):
            found.append(Probe(f"compose.yaml {name} healthcheck", "healthcheck", path, image_port()))
    return found
