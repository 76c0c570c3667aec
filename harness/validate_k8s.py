"""Strict schema validation of a rendered service's Kubernetes manifests (deploy/k8s/).

Runs in the deploy session's environment (kubernetes-validate and PyYAML installed):

    python harness/validate_k8s.py SERVICE/deploy/k8s

- kustomization.yaml lists every manifest of the folder, and only files that exist;
- each document of each manifest, and of `kubectl kustomize`'s output where kubectl is
  installed, validates in strict mode (no unknown field) against the newest Kubernetes
  kubernetes-validate knows and the oldest of the three minor releases upstream still
  supports; an apiVersion or kind without a schema is an error, not kubernetes-validate's
  warning.
"""

import argparse
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import kubernetes_validate
import yaml
from kubernetes_validate.utils import all_versions
from packaging.version import Version

KUSTOMIZATION = "kustomization.yaml"


def supported_versions() -> list[str]:
    """The newest bundled Kubernetes minor release and the one two minors older."""
    newest = Version(all_versions()[-1])
    return [f"{newest.major}.{newest.minor - 2}.0", f"{newest.major}.{newest.minor}.0"]


def listing_problems(folder: Path) -> list[str]:
    kustomization = yaml.safe_load((folder / KUSTOMIZATION).read_text()) or {}
    listed = kustomization.get("resources") or []
    manifests = sorted(p.name for p in folder.iterdir() if p.suffix in {".yaml", ".yml"} and p.name != KUSTOMIZATION)
    problems = [f"{KUSTOMIZATION} does not list {name}" for name in manifests if name not in listed]
    problems += [f"{KUSTOMIZATION} lists {name}, which does not exist" for name in listed if name not in manifests]
    problems += [f"{KUSTOMIZATION} lists {name} twice" for name in sorted(set(listed)) if listed.count(name) > 1]
    return problems


def document_problems(source: str, documents: list[Any], versions: list[str]) -> list[str]:
    problems = []
    for document in documents:
        if not isinstance(document, dict) or "kind" not in document or "apiVersion" not in document:
            problems.append(f"{source}: a document without apiVersion and kind: {str(document)[:80]}")
            continue
        name = f"{document['kind']}/{document.get('metadata', {}).get('name', '?')}"
        for version in versions:
            try:
                kubernetes_validate.validate(document, version, strict=True)
            except kubernetes_validate.SchemaNotFoundError as error:
                problems.append(f"{source}: {name}: {error.message}")
            except kubernetes_validate.ValidationError as error:
                path = ".".join(str(part) for part in error.path) or "(top level)"
                problems.append(f"{source}: {name}: Kubernetes {version}: {path}: {error.message}")
            else:
                print(f"  ok  {source}: {name} valid (strict) for Kubernetes {version}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("folder", type=Path, help="the kustomize base, deploy/k8s of a rendered service")
    folder = parser.parse_args().folder
    if not (folder / KUSTOMIZATION).is_file():
        print(f"error: {folder} has no {KUSTOMIZATION}", file=sys.stderr)
        return 2
    versions = supported_versions()
    problems = listing_problems(folder)
    if not problems:
        print(f"  ok  {KUSTOMIZATION} lists every manifest of {folder.name}/")
    for path in sorted(folder.iterdir()):
        if path.suffix in {".yaml", ".yml"} and path.name != KUSTOMIZATION:
            problems += document_problems(path.name, list(yaml.safe_load_all(path.read_text())), versions)
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        print("  --  kubectl is not installed: the kustomize build itself is not checked")
    else:
        built = subprocess.run([kubectl, "kustomize", str(folder)], capture_output=True, text=True, check=False)
        if built.returncode:
            problems.append(f"kubectl kustomize {folder} failed: {built.stderr.strip()}")
        else:
            problems += document_problems("kubectl kustomize", list(yaml.safe_load_all(built.stdout)), versions)
    for problem in problems:
        print(f"FAILED: {problem}", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
