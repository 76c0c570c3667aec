"""Start-up: the service's process start to its first 200, and `copier copy --defaults`."""

import os
import statistics

from figures.common import Bench, Section, rss_mib, table, verdict

STARTS = 3
BOUND_S = 1.0  # both figures


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
        ]
    )
    return Section(
        "Start-up", markdown, {"start_to_first_200_s": starts, "rss_after_start_mib": rss, "copier_copy_s": copier}
    )
