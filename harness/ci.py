"""The whole suite, as CI runs it: nox's default sessions in two lanes side by side.

Most of a session's time is waiting (servers starting, installs, subprocesses), so two
lanes on two cores finish well before one. Each lane runs its sessions in order, as
`nox -s ...` would, its output going to .nox/lane-N.log; the logs are printed whole once
both lanes are done, then a line per lane. The exit is non-zero if any session failed.

The lanes are chosen, not computed: every session that runs poetry is in one lane (one
poetry cache, one writer), and the two lanes take about as long. A default session in
no lane (a new one) stops the run before anything starts, naming it.

Usage: python harness/ci.py   (from the repository root; needs nox, as the README installs it)
"""

import json
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LANES = (
    ("lint", "tests", "generated(uv)", "deploy(uv)", "update(uv)", "lowest_direct"),
    ("generated(poetry)", "boot", "deploy(poetry)", "faults", "update(poetry)"),
)


def default_sessions() -> list[str]:
    listing = subprocess.run(
        [sys.executable, "-m", "nox", "--list", "--json"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return [entry["session"] for entry in json.loads(listing.stdout)]


def main() -> int:
    sessions = default_sessions()
    laned = [name for lane in LANES for name in lane]
    missing, unknown = sorted(set(sessions) - set(laned)), sorted(set(laned) - set(sessions))
    if missing or unknown or len(laned) != len(set(laned)):
        print(f"harness/ci.py: LANES must hold each default session once; missing {missing}, unknown {unknown}")
        return 2
    logs = ROOT / ".nox"
    logs.mkdir(exist_ok=True)
    started = time.monotonic()
    running = []
    for number, lane in enumerate(LANES, 1):
        log = logs / f"lane-{number}.log"
        with log.open("w") as output:  # the child keeps its own descriptor
            command = [sys.executable, "-m", "nox", "--no-color", "-s", *lane]
            process = subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)
        print(f"lane {number}: {', '.join(lane)} (output: {log.relative_to(ROOT)})", flush=True)
        running.append((number, lane, log, process))
    results = []
    for number, _, _, process in running:
        code = process.wait()
        results.append((number, code, time.monotonic() - started))
        print(f"lane {number} ended ({'passed' if code == 0 else f'exit {code}'}) after {results[-1][2] / 60:.1f} min")
    for number, lane, log, _ in running:
        print(f"\n{'=' * 30} lane {number}: {', '.join(lane)} {'=' * 30}\n{log.read_text()}", flush=True)
    for number, code, seconds in results:
        print(f"lane {number}: {'passed' if code == 0 else 'FAILED'} in {seconds / 60:.1f} min")
    return 0 if all(code == 0 for _, code, _ in results) else 1


if __name__ == "__main__":
    sys.exit(main())
