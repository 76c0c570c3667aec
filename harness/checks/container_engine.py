"""A working container engine, and the base images a Dockerfile needs, made here if need be.

No image registry may be reachable (it is not on this project's machines). Then a base
image is replaced by a stand-in made locally and labelled as one, which the caller
reports: python:X.Y-slim-<release> by the Debian release whose python3 is X.Y
(mmdebstrap), ghcr.io/astral-sh/uv:[<uv version>-]pythonX.Y-<release>-slim by that image with the uv
binary from uv's PyPI wheel (the `uv` on PATH).
"""

import json
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import pytest
from support import completed

STAND_IN_LABEL = "deploy-check.stand-in"
DEBIAN_PYTHON = {"3.11": "bookworm", "3.13": "trixie"}
CA_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"


def working_engine() -> str | None:
    """podman or docker, the first whose `info` succeeds (a docker client without a daemon fails)."""
    for engine in ("podman", "docker"):
        if shutil.which(engine) and completed([engine, "info"], timeout=60).returncode == 0:
            return engine
    return None


def base_images(instructions: list[tuple[str, str]]) -> list[str]:
    """The images a Dockerfile's stages start from, its global ARG defaults filled in."""
    args: dict[str, str] = {}
    images: list[str] = []
    stages: set[str] = set()
    for name, rest in instructions:
        if name == "ARG" and "=" in rest and not images:
            key, _, value = rest.partition("=")
            args[key.strip()] = value.strip()
        elif name == "FROM":
            image, *alias = rest.split()
            image = re.sub(r"\$\{(\w+)\}", lambda m: args[m.group(1)], image)
            if image not in stages and image not in images:
                images.append(image)
            if len(alias) == 2 and alias[0].upper() == "AS":
                stages.add(alias[1])
    return images


def qualified(image: str) -> str:
    """The full name of an image as Docker reads it: python:3.11 is docker.io/library/python:3.11."""
    first, slash, _ = image.partition("/")
    if slash and ("." in first or ":" in first or first == "localhost"):
        return image
    return f"docker.io/{image}" if slash else f"docker.io/library/{image}"


def ensure_image(engine: str, image: str, say: Callable[[str], None]) -> None:
    """IMAGE is there: found, pulled, or else a stand-in made here (said so)."""
    image = qualified(image)
    missing = completed([engine, "image", "inspect", image]).returncode
    if missing and completed([engine, "pull", image], timeout=600).returncode:
        if python := re.fullmatch(r"docker\.io/library/python:(\d+\.\d+)-slim-(\w+)", image):
            _stand_in_python(engine, image, python.group(1), say)
        elif uv := re.fullmatch(r"ghcr\.io/astral-sh/uv:(?:[0-9.]+-)?python(\d+\.\d+)-(\w+)-slim", image):
            _stand_in_uv(engine, image, uv.group(1), uv.group(2), say)
        else:
            pytest.skip(f"{image} cannot be pulled here, and there is no stand-in for it")
    inspected = json.loads(completed([engine, "image", "inspect", image]).stdout)[0]
    labels = inspected.get("Labels") or inspected["Config"].get("Labels") or {}
    if STAND_IN_LABEL in labels:
        say(f"{image} is a stand-in made here ({labels[STAND_IN_LABEL]}), not the registry's image")


def _stand_in_python(engine: str, image: str, version: str, say: Callable[[str], None]) -> None:
    release = DEBIAN_PYTHON.get(version)
    if release is None or shutil.which("mmdebstrap") is None:
        pytest.skip(f"{image} cannot be pulled, and no stand-in can be made (mmdebstrap, Debian's Python {version})")
    say(f"{image} cannot be pulled: making a stand-in from Debian {release} with mmdebstrap")
    with tempfile.TemporaryDirectory() as tmp:
        rootfs = Path(tmp) / "rootfs.tar"
        hooks = [
            # As in the official image: pip may install into the system Python.
            'rm -f "$1"/usr/lib/python3*/EXTERNALLY-MANAGED',
            # The CAs this machine trusts: its way to PyPI may pass through a proxy of its own.
            f"copy-in {CA_BUNDLE} {Path(CA_BUNDLE).parent}",
            'rm -rf "$1"/var/lib/apt/lists/* "$1"/var/cache/apt/*',
        ]
        packages = "--include=python3,python-is-python3,python3-pip,ca-certificates"
        command = ["mmdebstrap", "--variant=minbase", packages, *(f"--customize-hook={h}" for h in hooks)]
        made = completed([*command, release, str(rootfs)], timeout=900)
        assert made.returncode == 0, f"mmdebstrap {release} failed:\n{made.stderr[-3000:]}"
        changes = ['CMD ["python3"]', f"LABEL {STAND_IN_LABEL}=debian-{release}-python3"]
        changes += [f"ENV {name}={CA_BUNDLE}" for name in ("SSL_CERT_FILE", "REQUESTS_CA_BUNDLE", "PIP_CERT")]
        imported = completed([engine, "import", *(f"--change={c}" for c in changes), str(rootfs), image], timeout=600)
        assert imported.returncode == 0, imported.stderr


def _stand_in_uv(engine: str, image: str, version: str, release: str, say: Callable[[str], None]) -> None:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip(f"{image} cannot be pulled, and there is no uv on PATH for a stand-in")
    python_image = f"docker.io/library/python:{version}-slim-{release}"
    ensure_image(engine, python_image, say)
    say(f"{image} cannot be pulled: making a stand-in, {python_image} with uv from its PyPI wheel")
    with tempfile.TemporaryDirectory() as tmp:
        shutil.copy2(uv, Path(tmp) / "uv")
        recipe = Path(tmp) / "Containerfile"
        recipe.write_text(f"FROM {python_image}\nCOPY uv /usr/local/bin/uv\nLABEL {STAND_IN_LABEL}=uv-pypi-wheel\n")
        built = completed([engine, "build", f"--tag={image}", f"--file={recipe}", tmp], timeout=600)
        assert built.returncode == 0, built.stderr[-3000:]
