"""PostgreSQL or Redis killed, or hanging, under a running service: readiness says which, within
its timeout (0.5 s of slack for a loaded machine), liveness stays up, and it recovers alone."""

import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import suppress

import pytest
from support import HEALTH, READINESS, READY, Response, Servers, Service, wait_for

SLACK = 0.5  # seconds beyond READINESS_TIMEOUT that a loaded machine may take to answer


def unready(response: Response | str, down: str) -> bool:
    """A readiness 503 that names DOWN, and nothing else, as disconnected."""
    with suppress(ValueError):
        expected = {**READY, "status": "unavailable", down: "disconnected"}
        return isinstance(response, Response) and response.status == 503 and response.json() == expected
    return False


def assert_unready(service: Service, down: str, within: float, concurrent: int = 20) -> None:
    """One readiness request, then CONCURRENT at once: all 503 naming DOWN, none slower than WITHIN; liveness 200."""
    response, took = service.timed_get(READINESS, timeout=within + 5)
    assert unready(response, down), f"one request: {response}"
    assert took <= within, f"one request: answered after {took:.3f} s (at most {within:.1f} s)"
    with ThreadPoolExecutor(concurrent) as pool:
        results = list(pool.map(lambda _: service.timed_get(READINESS, timeout=within + 5), range(concurrent)))
    bad = [str(response) for response, _ in results if not unready(response, down)]
    assert not bad, f"{concurrent} concurrent requests: {len(bad)} not a 503 naming {down}: {bad[:3]}"
    slowest = max(took for _, took in results)
    assert slowest <= within, f"{concurrent} concurrent requests: slowest {slowest:.3f} s (at most {within:.1f} s)"
    assert service.status(HEALTH) == 200, f"liveness: {service.timed_get(HEALTH)[0]}"


def assert_recovers(service: Service, what: str, within: float) -> float:
    """Readiness 200 again within WITHIN seconds, from the same process."""
    pid = service.proc.pid
    took = wait_for(f"{what}: readiness 200 again", lambda: service.status(READINESS) == 200, within, service.alive)
    assert service.proc.pid == pid and service.alive(), f"{what}: the service restarted"
    return took


def test_readiness_with_both_up(service: Service) -> None:
    assert service.status(READINESS) == 200, service.timed_get(READINESS)[0]


@pytest.mark.parametrize(
    ("server_name", "down"), [("postgres", "database"), ("redis", "redis")], ids=["postgres", "redis"]
)
def test_outage(
    service: Service,
    servers: Servers,
    readiness_timeout: float,
    figure: Callable[[str], None],
    server_name: str,
    down: str,
) -> None:
    """SIGKILL the server under the running service, then start it again on its port."""
    server = getattr(servers, server_name)
    server.kill()
    assert_unready(service, down, readiness_timeout + SLACK)
    started = time.monotonic()
    server.start()
    figure(f"outage: {server_name} back on port {server.port} after {time.monotonic() - started:.2f} s")
    took = assert_recovers(service, f"{server_name} restarted", 2)
    figure(f"outage: {server_name} restarted: readiness 200 after {took:.3f} s")


class BlackHole:
    """A loopback listener that accepts connections and never reads from them, until it
    forwards to TARGET (a port): a dependency that hangs, then comes back."""

    def __init__(self, target: int) -> None:
        self.target, self.forwarding = target, False
        self.held: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0), backlog=128)
        self.port: int = self.listener.getsockname()[1]
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        with suppress(OSError):
            while True:
                conn, _ = self.listener.accept()
                if not self.forwarding:
                    self.held.append(conn)
                    continue
                upstream = socket.create_connection(("127.0.0.1", self.target))
                for source, sink in ((conn, upstream), (upstream, conn)):
                    threading.Thread(target=self._pump, args=(source, sink), daemon=True).start()

    @staticmethod
    def _pump(source: socket.socket, sink: socket.socket) -> None:
        with suppress(OSError):
            while data := source.recv(65536):
                sink.sendall(data)
        for sock in (source, sink):
            with suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)

    def forward(self) -> None:
        """The dependency answers again: held connections drop, new ones reach TARGET."""
        self.forwarding = True
        for conn in self.held:
            conn.close()

    def __enter__(self) -> "BlackHole":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.listener.close()
        for conn in self.held:
            conn.close()


@pytest.mark.parametrize(
    ("variable", "server_name", "down", "url"),
    [
        ("DATABASE_URL", "postgres", "database", "postgresql://postgres@127.0.0.1:{port}/postgres"),
        ("REDIS_URL", "redis", "redis", "redis://127.0.0.1:{port}/0"),
    ],
    ids=["postgres", "redis"],
)
def test_hang(
    launch: Callable[..., Service],
    servers: Servers,
    readiness_timeout: float,
    variable: str,
    server_name: str,
    down: str,
    url: str,
) -> None:
    """A service whose server accepts connections and never answers; then it answers."""
    with BlackHole(getattr(servers, server_name).port) as hole:
        service = launch(f"hang-{down}", **{variable: url.format(port=hole.port)})
        # Without the bound, the drivers would wait for their own (5 s) timeouts.
        assert_unready(service, down, readiness_timeout + SLACK)
        hole.forward()
        assert_recovers(service, f"{variable} answers again", 2)
