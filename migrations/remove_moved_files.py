"""Copier migration: remove files that a release moved elsewhere, if the user never edited them.

Copier does not delete files that a newer template no longer renders, so after a move
the project would keep a stale copy beside the new file. Run after the update, with
the version that moved the files (copier passes it as VERSION_CURRENT).
An edited copy is left in place with a note saying where its changes now belong.
"""

import hashlib
import os
import sys
from pathlib import Path

# version -> [(old path, new path, sha256 of the old file as that template rendered it)]
MOVED: dict[str, list[tuple[str, str, str]]] = {
    "0.2.0": [
        (
            "backend/app/exceptions/openapi.py",
            "backend/app/core/openapi.py",
            "9cf1c02125b80854c02955b409e655cef98b7d7ab8be6bed44b9a9e3bd8d694d",
        ),
    ],
}


def main() -> int:
    version = os.environ.get("VERSION_CURRENT", sys.argv[1] if len(sys.argv) > 1 else "")
    for old, new, pristine in MOVED.get(version, []):
        path = Path(old)
        if not path.exists():
            continue
        if hashlib.sha256(path.read_bytes()).hexdigest() == pristine:
            path.unlink()
            print(f"migration {version}: removed {old} (moved to {new})")
        else:
            print(f"migration {version}: {old} has local changes; it moved to {new}: carry them over, then delete it")
    return 0


if __name__ == "__main__":
    sys.exit(main())
