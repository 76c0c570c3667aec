"""The service with a POST route added: fuzzed from its schema, then sent hostile requests.

The last checks stop the module's service (``hostile_stopped``): keep them last.
"""

import json
import signal
import socket
import subprocess
from collections.abc import Callable
from contextlib import suppress
from pathlib import Path

import pytest
from support import (
    HEALTH,
    SHUTDOWN_MESSAGES,
    Service,
    Stopped,
    log_records,
    rss_kib,
    schemathesis_run,
    schemathesis_summary,
)

# A POST route with a body, which the rendered service lacks: the fuzz and hostile
# requests need one. Strict, so that the schema it documents is exactly what it accepts.
HOSTILE_APP = """
from fastapi import FastAPI
from pydantic import BaseModel, ConfigDict, Field

from app.main import create_app


class Echo(BaseModel):
    model_config = ConfigDict(strict=True)
    text: str = Field(max_length=1000)
    tags: list[str] = []


def create_hostile_app() -> FastAPI:
    app = create_app()

    @app.post("/echo")
    async def echo(body: Echo) -> Echo:
        return body

    return app
"""


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # Not named "hostile": that word must not appear in the service's log (see REQUEST_IDS).
    path = tmp_path_factory.mktemp("fuzz")
    (path / "hostile_app.py").write_text(HOSTILE_APP)
    return path


@pytest.fixture(scope="module")
def hostile(module_launcher: Callable[..., Service], backend: Path, workdir: Path) -> Service:
    pythonpath = f"{backend}:{workdir}"
    return module_launcher("hostile", app="hostile_app:create_hostile_app", PYTHONPATH=pythonpath)


def test_fuzz(
    hostile: Service, schemathesis: Path, workdir: Path, pytestconfig: pytest.Config, figure: Callable[[str], None]
) -> None:
    """schemathesis, every check: no 5xx, every response as documented."""
    examples, seconds = pytestconfig.getoption("fuzz_examples"), pytestconfig.getoption("fuzz_seconds")
    try:
        done, summary = schemathesis_run(schemathesis, hostile.base, workdir, examples, seconds)
    except subprocess.TimeoutExpired:
        pytest.fail(f"schemathesis did not finish within {seconds + 240} s")
    figure(f"fuzz: {schemathesis_summary(summary)}")
    assert done.returncode == 0 and summary.get("failures") == [] and summary.get("errors") == [], (
        f"exit {done.returncode}, failures {summary.get('failures')}\n{done.stdout[-6000:]}{done.stderr[-3000:]}"
    )


def raw_request(port: int, head: bytes, body: bytes = b"") -> tuple[int, bytes]:
    """Sends exactly HEAD (request line and headers, no final blank line) and BODY: the
    client libraries refuse to send what a hostile client sends. Status and the raw response."""
    length = b"Content-Length: %d\r\n" % len(body) if body else b""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        chunks = []
        # The server may answer and close before it has read everything.
        with suppress(BrokenPipeError, ConnectionResetError):
            sock.sendall(head + b"\r\nHost: 127.0.0.1\r\nConnection: close\r\n" + length + b"\r\n" + body)
            while chunk := sock.recv(65536):
                chunks.append(chunk)
    response = b"".join(chunks)
    try:
        return int(response.split(b" ", 2)[1]), response
    except (IndexError, ValueError):
        raise AssertionError(f"not an HTTP response: {response[:300]!r}") from None


def is_envelope(body: bytes) -> bool:
    with suppress(ValueError, KeyError, TypeError):
        return isinstance(json.loads(body)["error"]["code"], str)
    return False


# Each value contains "hostile", which must then appear nowhere in a response or the log.
REQUEST_IDS = {
    "newline": b"hostile\nSet-Cookie: x=1",
    "carriage-return": b"hostile\rSet-Cookie: x=1",
    "nul-byte": b"hostile\x00id",
    "10kB": b"hostile request id " * 540,
    "non-ascii": b"hostile-\xff\xfe-caf\xc3\xa9",
}


@pytest.mark.parametrize("value", REQUEST_IDS.values(), ids=REQUEST_IDS.keys())
def test_bad_request_id_not_echoed(hostile: Service, value: bytes) -> None:
    status, response = raw_request(hostile.port, b"GET " + HEALTH.encode() + b" HTTP/1.1\r\nX-Request-ID: " + value)
    # The server may refuse the request outright (400); if it is served, a new ID replaces it.
    assert status in (200, 400) and b"hostile" not in response, response[:600]


def post_echo(content_type: bytes | None) -> bytes:
    return b"POST /echo HTTP/1.1" + (b"\r\nContent-Type: " + content_type if content_type else b"")


JSON = b"application/json"
# id: (request line and headers, body, the statuses allowed)
BAD_REQUESTS: dict[str, tuple[bytes, bytes, set[int]]] = {
    "8kB-path": (b"GET /api/v1/" + b"a" * 8192 + b" HTTP/1.1", b"", {404}),
    "8kB-query": (b"GET " + HEALTH.encode() + b"?" + b"q=1&" * 2048 + b" HTTP/1.1", b"", {200}),
    "valid-body-control": (post_echo(JSON), b'{"text": "hi"}', {200}),
    "malformed-json": (post_echo(JSON), b'{"text": "hi",', {422}),
    "json-not-utf8": (post_echo(JSON), b'{"text": "\xc3\x28"}', {400}),
    "json-nested-100000-deep": (post_echo(JSON), b"[" * 100_000 + b"]" * 100_000, {400, 422}),
    "text-10kB-over-limit-1000": (post_echo(JSON), b'{"text": "%s"}' % (b"x" * 10240), {422}),
    "text-plain": (post_echo(b"text/plain"), b'{"text": "hi"}', {415, 422}),
    "xml": (post_echo(b"application/xml"), b"<text>hi</text>", {415, 422}),
    "form": (post_echo(b"application/x-www-form-urlencoded"), b"text=hi", {415, 422}),
    "multipart-without-boundary": (post_echo(b"multipart/form-data"), b"text=hi", {400, 415, 422}),
    "no-content-type": (post_echo(None), b'{"text": "hi"}', {415, 422}),
}


@pytest.mark.parametrize(("head", "body", "allowed"), BAD_REQUESTS.values(), ids=BAD_REQUESTS.keys())
def test_bad_request(hostile: Service, head: bytes, body: bytes, allowed: set[int]) -> None:
    """An allowed status; a 4xx carries the error envelope."""
    status, response = raw_request(hostile.port, head, body)
    assert status in allowed, response[:600]
    assert status < 400 or is_envelope(response.partition(b"\r\n\r\n")[2]), response[:600]


LIMIT = 1024 * 1024  # MAX_REQUEST_BODY_BYTES's default
BIG = 10 * LIMIT


def send_big_body(port: int, chunked: bool) -> tuple[int, bytes]:
    """POSTs BIG bytes to /echo, declared or chunked, in 64 kB writes; status and raw response.
    Keep-alive: the server reads and drops the rest after answering, so the answer is not lost."""
    head = post_echo(JSON) + b"\r\nHost: 127.0.0.1\r\nX-Request-ID: body-limit-check\r\n"
    head += b"Transfer-Encoding: chunked\r\n\r\n" if chunked else b"Content-Length: %d\r\n\r\n" % BIG
    piece = b"x" * 65536
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(head)
        for _ in range(BIG // len(piece)):
            sock.sendall(b"%x\r\n%s\r\n" % (len(piece), piece) if chunked else piece)
        if chunked:
            sock.sendall(b"0\r\n\r\n")
        response = b""
        while b"\r\n\r\n" not in response or len(response.partition(b"\r\n\r\n")[2]) < content_length(response):
            chunk = sock.recv(65536)
            if not chunk:
                break
            response += chunk
    return int(response.split(b" ", 2)[1]), response


def content_length(response: bytes) -> int:
    for line in response.partition(b"\r\n\r\n")[0].split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return int(value)
    return 0


@pytest.mark.parametrize("chunked", [False, True], ids=["content-length", "chunked"])
def test_a_10mb_body_is_refused_without_being_buffered(
    hostile: Service, chunked: bool, figure: Callable[[str], None]
) -> None:
    """413 in the envelope with the request ID; the server's RSS grows by less than the limit."""
    send_big_body(hostile.port, chunked)  # warms up whatever the first one allocates
    before = rss_kib(hostile.proc.pid)
    status, response = send_big_body(hostile.port, chunked)
    growth = rss_kib(hostile.proc.pid) - before
    figure(f"body limit ({'chunked' if chunked else 'content-length'}): RSS grew by {growth} KiB for a 10 MiB body")
    head, _, body = response.partition(b"\r\n\r\n")
    assert status == 413 and json.loads(body)["error"]["code"] == "content_too_large", response[:600]
    assert b"x-request-id: body-limit-check" in head.lower(), head
    # A chunked body is read up to the limit before it is refused, and what was read is freed
    # by the garbage collector (an exception's traceback holds it): allow the limit, and some.
    assert growth * 1024 < LIMIT + 512 * 1024, f"RSS grew by {growth} KiB"


@pytest.fixture(scope="module")
def hostile_stopped(hostile: Service) -> Stopped:
    """The module's service after SIGTERM: only the module's last checks may ask for it."""
    return Stopped(*hostile.terminate(grace=15))


def test_sigterm_after_hostile_requests(hostile_stopped: Stopped) -> None:
    assert hostile_stopped.code == -signal.SIGTERM, f"exit status {hostile_stopped.code} (None: still running)"


def test_output_is_json(hostile: Service, hostile_stopped: Stopped) -> None:
    assert log_records(hostile.log)


@pytest.mark.parametrize("message", SHUTDOWN_MESSAGES)
def test_shutdown_logged(hostile: Service, hostile_stopped: Stopped, message: str) -> None:
    messages = [record.get("message") for record in log_records(hostile.log)]
    assert message in messages, messages[-8:]


def test_bad_request_ids_not_logged(hostile: Service, hostile_stopped: Stopped) -> None:
    assert "hostile" not in hostile.log.read_text()
