"""The service under a bounded load: SIGTERM in the middle of it, and a soak."""

import http.client
import itertools
import signal
import statistics
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from support import HEALTH, READINESS, SHUTDOWN_MESSAGES, Service, log_records, rss_kib, wait_for


@dataclass
class Load:
    """What a bounded load got back."""

    statuses: Counter[int] = field(default_factory=Counter)
    dropped: int = 0  # connection refused or reset: the listener was closing
    errors: list[str] = field(default_factory=list)  # anything else
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def responses(self) -> int:
        return sum(self.statuses.values())

    def failures(self) -> list[str]:
        return [f"{n} x {status}" for status, n in self.statuses.items() if status != 200] + self.errors[:5]

    def error_count(self) -> int:
        return self.responses - self.statuses[200] + len(self.errors) + self.dropped


def start_load(
    port: int, paths: list[str], seconds: float, max_requests: int, clients: int = 8, stop: Callable[[], bool] = bool
) -> tuple[Load, Callable[[], None]]:
    """CLIENTS threads on keep-alive connections GET PATHS in turn until SECONDS or
    MAX_REQUESTS are spent, or STOP() is true. Returns the tally so far and a function
    that waits for the end."""
    load, deadline, numbers = Load(), time.monotonic() + seconds, itertools.count()

    def client() -> None:
        conn: http.client.HTTPConnection | None = None
        while time.monotonic() < deadline and not stop() and (n := next(numbers)) < max_requests:
            conn = conn or http.client.HTTPConnection("127.0.0.1", port, timeout=10)
            try:
                conn.request("GET", paths[n % len(paths)])
                resp = conn.getresponse()
                resp.read()
                with load.lock:
                    load.statuses[resp.status] += 1
                continue
            except (ConnectionRefusedError, ConnectionResetError, BrokenPipeError, http.client.RemoteDisconnected):
                with load.lock:
                    load.dropped += 1
            except (OSError, http.client.HTTPException) as exc:
                with load.lock:
                    load.errors.append(repr(exc))
            conn.close()
            conn = None
            time.sleep(0.01)  # a refused connection fails at once: don't spin

    threads = [threading.Thread(target=client) for _ in range(clients)]
    for thread in threads:
        thread.start()

    def join() -> None:
        for thread in threads:
            thread.join()

    return load, join


def test_shutdown_under_load(launch: Callable[..., Service], figure: Callable[[str], None]) -> None:
    """SIGTERM while 8 clients load the service: every response a 200, then a clean exit."""
    service = launch("shutdown")
    load, join = start_load(service.port, [HEALTH], 5, 5000, stop=lambda: not service.alive())
    wait_for("load under way: 1000 responses", lambda: load.responses >= 1000, 5, service.alive)
    before = load.responses
    code, took = service.terminate(grace=15)
    join()
    figure(
        f"shutdown: SIGTERM after {before} responses; {load.responses - before} more, then "
        f"{load.dropped} connections refused or reset once it stopped listening"
    )
    assert before < 5000, "SIGTERM came after the load's bound"
    assert not load.failures(), f"responses other than 200: {load.failures()}"
    # uvicorn re-raises the SIGTERM it caught once it has shut down cleanly.
    assert code == -signal.SIGTERM, f"exit status {code} after {took:.2f} s (None: still running after 15 s)"
    messages = [record.get("message") for record in log_records(service.log)]
    assert all(message in messages for message in SHUTDOWN_MESSAGES), messages[-8:]


def test_soak(launch: Callable[..., Service], pytestconfig: pytest.Config, figure: Callable[[str], None]) -> None:
    """Liveness and readiness under load for --soak-seconds: no error, and memory that levels off."""
    seconds = float(pytestconfig.getoption("soak_seconds"))
    if seconds < 2:
        pytest.fail(f"--soak-seconds must be at least 2 (memory is compared over two windows), not {seconds}")
    service = launch("soak")
    load, join = start_load(service.port, [HEALTH, READINESS], seconds, max_requests=int(seconds * 5000))
    samples, started = [], time.monotonic()
    for tick in range(1, int(seconds) + 1):
        assert service.alive(), f"the service exited after {tick - 1} s"
        samples.append(rss_kib(service.proc.pid))
        time.sleep(max(0.0, started + tick - time.monotonic()))
    join()
    rate = load.responses / (time.monotonic() - started)
    figure(f"soak: {load.responses} requests in {seconds:.0f} s ({rate:.0f}/s), {load.error_count()} errors")
    window = min(10, len(samples) // 2)
    first, last = statistics.mean(samples[:window]), statistics.mean(samples[-window:])
    growth = (last - first) / first * 100
    figure(
        f"soak: RSS MiB: first {window} s {first / 1024:.1f}, last {window} s {last / 1024:.1f}, "
        f"min {min(samples) / 1024:.1f}, max {max(samples) / 1024:.1f} ({len(samples)} samples)"
    )
    assert load.responses > 0 and load.error_count() == 0, f"{load.failures()}, {load.dropped} refused or reset"
    assert growth < 5, f"RSS grew {growth:+.2f}% from the first to the last {window} s (under 5%): {samples}"
