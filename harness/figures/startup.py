"""Start-up: the service's process start to its first 200, and `copier copy --defaults`."""

import os
import shutil
import statistics
import subprocess
import time
from pathlib import Path

from figures.common import Bench, Section, rss_mib, table, verdict

STARTS = 3
BOUND_S = 1.0  # both figures


def timed(command: list[str], cwd: Path, runs: int) -> float:
    """Median wall seconds of COMMAND (its exit status aside)."""
    took = []
    for _ in range(runs):
        started = time.monotonic()
        subprocess.run(command, cwd=cwd, capture_output=True, check=False, timeout=60)
        took.append(time.monotonic() - started)
    return statistics.median(took)


def copier_split(bench: Bench, total: float) -> tuple[list[list[str]], dict[str, float]]:
    """Where `copier copy`'s time goes: its own start (interpreter and imports, as `copier
    --version` spends it), one `git config` per file it writes (copier 9.19 asks git for
    core.fileMode before it sets each file's mode), and the rest (rendering, writing)."""
    copier, git = shutil.which("copier"), shutil.which("git")
    if copier is None or git is None:
        return [["where `copier copy` spends it", "not measured: copier or git is not on PATH", "", ""]], {}
    service = bench.backend.parent
    files = sum(1 for path in service.rglob("*") if path.is_file() and not {".venv", ".git"} & set(path.parts))
    start = timed([copier, "--version"], service, 3)
    per_git = timed([git, "config", "--type=bool", "--get", "core.fileMode"], service, 21)
    split = {"start_s": start, "files": files, "git_config_s": per_git * files}
    # Timed apart from the copy: on a loaded machine the parts may add up to more than the whole.
    split["rest_s"] = max(total - start - split["git_config_s"], 0.0)
    print(f"startup: copier copy {total:.3f} s: {split}")
    rows = [
        ["`copier copy`: copier's own start (`copier --version`)", f"{start:.3f} s", "", ""],
        [
            f"`copier copy`: one `git config` per file written ({files} files)",
            f"{split['git_config_s']:.3f} s ({per_git * 1000:.1f} ms each)",
            "",
            "",
        ],
        ["`copier copy`: the rest (rendering, writing)", f"{split['rest_s']:.3f} s", "", ""],
    ]
    return rows, split


def figures(bench: Bench) -> Section:
    starts, rss = [], []
    for _ in range(STARTS):
        with bench.serve("startup") as server:
            starts.append(round(server.start_seconds, 3))
            rss.append(rss_mib(server.proc.pid))
    start = statistics.median(starts)
    print(f"startup: process start to first 200: {starts} s; RSS after start: {rss} MiB")
    rows = [
        [
            f"process start to first 200 (median of {STARTS})",
            f"{start:.3f} s ({', '.join(f'{s:.3f}' for s in starts)})",
            f"≤ {BOUND_S} s",
            verdict(start <= BOUND_S),
        ],
    ]
    copier = bench.copier_copy_seconds
    if copier is not None:
        rows.append(
            [
                "`copier copy --defaults` wall time (median of 3)",
                f"{copier:.3f} s",
                f"≤ {BOUND_S} s",
                verdict(copier <= BOUND_S),
            ]
        )
        split_rows, split = copier_split(bench, copier)
        rows += split_rows
    rows.append(["RSS after start (median)", f"{statistics.median(rss)} MiB", "", ""])
    # Where Python may not write .pyc files, bytecode compiled at install is what start-up depends on.
    here = ", as on the machine these figures come from" if os.environ.get("PYTHONDONTWRITEBYTECODE") else ""
    markdown = "\n\n".join(
        [
            "uvicorn `--factory app.main:create_app` started as `make api` starts it (without `--reload`), "
            "until `GET /api/v1/health` answers 200; `copier copy` as `nox -s bench` times it, three times.",
            table(["figure", "value", "target", "verdict"], rows),
            "Start-up figures are with bytecode compiled at install, as pip does and as the service's "
            "`make install` does (`poetry install --compile`, uv's `compile-bytecode`). Where Python may not "
            f"write `.pyc` files (`PYTHONDONTWRITEBYTECODE=1`{here}) an "
            "install without compiled bytecode makes Python compile every module it imports on every start: "
            "about 1.5 s to the first 200 and 1.1 s for `copier copy` (measured for 0.4.0).",
            "Where `copier copy`'s time goes (its three rows above): copier's own start is its interpreter "
            "and imports; copier 9.19 then runs `git config --get core.fileMode` once for each file it writes "
            "(to keep executable bits in a git index where file modes are ignored), a process per file that "
            "the template's file count multiplies; the rest is rendering and writing. The start and the "
            "`git` processes are copier's own and shrink only with fewer files.",
        ]
    )
    data = {"start_to_first_200_s": starts, "rss_after_start_mib": rss, "copier_copy_s": copier}
    return Section("Start-up", markdown, data | ({"copier_split": split} if copier is not None else {}))
