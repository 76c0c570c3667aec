"""Authentication: what verifying a bearer token costs a route, called in process.

The bench's service has the default answers (auth=none), so this group renders the
template with auth=bearer beside it in the bench's scratch space and installs it. In a
process of that render's Python, one route of its app is called directly (no socket, no
server: the app's own CPU time per request, as in the request-cost group), in variants
interleaved over the rounds:
- no auth: the route without ``CurrentUser``;
- HS256: the same route with ``user: CurrentUser``, verified with AUTH_SECRET;
- RS256, ES256: verified with keys of a JWKS (a loopback server of the script's, fetched
  once, then kept);
- 401: no token (the refusal and its error envelope).
"""

import shutil
import subprocess
from pathlib import Path
from typing import Any

from checks.support import example_values, poetry_simple_index

from figures.common import Bench, Section, fastest_rounds, table

TEMPLATE = Path(__file__).resolve().parents[2]
CALLS = 10_000  # per variant and round
SCRIPT = '''"""Calls each variant CALLS times per round and prints microseconds per call as JSON."""

import asyncio
import json
import logging
import os
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import jwt
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from fastapi import APIRouter, FastAPI
from jwt.algorithms import ECAlgorithm, RSAAlgorithm

from app.api.deps import CurrentUser
from app.core.config import Settings
from app.main import create_app

CALLS, ROUNDS = int(sys.argv[1]), int(sys.argv[2])
KEYS = {
    "RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
    "ES256": ec.generate_private_key(ec.SECP256R1()),
}
JWKS = json.dumps({"keys": [
    {**RSAAlgorithm.to_jwk(KEYS["RS256"].public_key(), as_dict=True), "kid": "rs", "alg": "RS256", "use": "sig"},
    {**ECAlgorithm.to_jwk(KEYS["ES256"].public_key(), as_dict=True), "kid": "es", "alg": "ES256", "use": "sig"},
]}).encode()


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", str(len(JWKS)))
        self.end_headers()
        self.wfile.write(JWKS)

    def log_message(self, *args: object) -> None:
        pass


def probe_app(settings: Settings) -> FastAPI:
    router = APIRouter(prefix="/probe")

    @router.get("/open")
    async def open_route() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/me")
    async def me(user: CurrentUser) -> dict[str, str]:
        return {"status": "ok"}

    app = create_app(settings)
    app.include_router(router, prefix="/api/v1")
    return app


def scope(path: str, token: str | None) -> dict[str, object]:
    headers = [(b"host", b"127.0.0.1:8000"), (b"user-agent", b"bench"), (b"accept", b"*/*")]
    if token:
        headers.append((b"authorization", f"Bearer {token}".encode()))
    return {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "", "headers": headers,
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 8000),
    }


async def receive() -> dict[str, object]:
    return {"type": "http.request", "body": b"", "more_body": False}


async def per_call(app: FastAPI, request: dict[str, object], expected: int, calls: int) -> float:
    statuses = []

    async def send(message: dict[str, object]) -> None:
        if message["type"] == "http.response.start":
            statuses.append(message["status"])

    started = time.process_time()
    for _ in range(calls):
        await app(dict(request, state={}), receive, send)
    elapsed = time.process_time() - started
    assert statuses == [expected] * calls, set(statuses)
    return elapsed / calls * 1e6


async def main() -> None:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    secret_settings = Settings()  # the render's .env.example: AUTH_SECRET
    jwks_settings = Settings(AUTH_SECRET=None, AUTH_JWKS_URL=f"http://127.0.0.1:{server.server_address[1]}/jwks")
    secret_app, jwks_app = probe_app(secret_settings), probe_app(jwks_settings)
    claims = {"iss": secret_settings.AUTH_ISSUER, "aud": secret_settings.AUTH_AUDIENCE, "sub": "bench",
              "scope": "agents:read agents:write", "exp": int(time.time()) + 3600}
    secret = secret_settings.AUTH_SECRET.get_secret_value()
    tokens = {
        "HS256": jwt.encode(claims, secret, algorithm="HS256"),
        "RS256": jwt.encode(claims, KEYS["RS256"], algorithm="RS256", headers={"kid": "rs"}),
        "ES256": jwt.encode(claims, KEYS["ES256"], algorithm="ES256", headers={"kid": "es"}),
    }
    variants = {
        "no auth": (secret_app, scope("/api/v1/probe/open", None), 200),
        "HS256 (AUTH_SECRET)": (secret_app, scope("/api/v1/probe/me", tokens["HS256"]), 200),
        "RS256 (JWKS)": (jwks_app, scope("/api/v1/probe/me", tokens["RS256"]), 200),
        "ES256 (JWKS)": (jwks_app, scope("/api/v1/probe/me", tokens["ES256"]), 200),
        "401, no token": (secret_app, scope("/api/v1/probe/me", None), 401),
    }
    # Logging as under a server, written to /dev/null.
    devnull = open(os.devnull, "w")
    for handler in logging.getLogger().handlers:
        if isinstance(handler, logging.StreamHandler):
            handler.setStream(devnull)
    results: dict[str, list[float]] = {name: [] for name in variants}
    for app, request, expected in variants.values():  # warm-up; the JWKS is fetched here
        await per_call(app, request, expected, CALLS // 10)
    names = list(variants)
    for number in range(ROUNDS):
        turn = number % len(names)
        for name in names[turn:] + names[:turn]:
            app, request, expected = variants[name]
            results[name].append(round(await per_call(app, request, expected, CALLS), 2))
    server.shutdown()
    print(json.dumps(results))


asyncio.run(main())
'''


def bearer_render(bench: Bench) -> tuple[Path | None, str]:
    """This template rendered with auth=bearer and installed; None (and why) where it cannot be built."""
    copier = shutil.which("copier")
    if copier is None:
        return None, "copier is not on PATH"
    service = bench.work / "auth-bearer-service"
    command = [copier, "copy", "--defaults", "--quiet", "--data=auth=bearer", str(TEMPLATE), str(service)]
    subprocess.run(command, check=True)
    poetry_simple_index(service / "backend")  # as the noxfile's install() does
    installed = subprocess.run(["make", "install"], cwd=service, capture_output=True, text=True, check=False)
    if installed.returncode != 0:
        return None, f"make install failed: {installed.stdout[-300:]}{installed.stderr[-300:]}"
    return service / "backend", ""


def figures(bench: Bench) -> Section:
    title = "What verifying a bearer token costs"
    backend, why = bearer_render(bench)
    if backend is None:
        print(f"auth: not measured: {why}")
        return Section(title, f"Not measured: {why}.", {})
    script = bench.work / "auth_cost.py"
    script.write_text(SCRIPT)
    rounds = max(bench.rounds, 5)
    env = {
        **bench.env,
        **example_values(backend),
        "DATABASE_URL": bench.servers.postgres.url,
        "REDIS_URL": bench.servers.redis.url,
        "PYTHONPATH": str(backend),
    }
    command = [str(backend / ".venv" / "bin" / "python"), str(script), str(CALLS), str(rounds)]
    results, fastest = fastest_rounds("auth", command, backend, env, timeout=900)
    base = fastest["no auth"]
    rows: list[list[Any]] = [
        [name, f"{value:.1f}", "" if name == "no auth" else f"{value - base:+.1f}"] for name, value in fastest.items()
    ]
    markdown = "\n\n".join(
        [
            "One route of a service rendered with `auth=bearer`, its ASGI app called in process without a "
            f"server: the app's own CPU µs per request, the fastest of {rounds} interleaved rounds of "
            f"{CALLS:,} calls. The same route without `CurrentUser`, then with it and a valid token signed "
            "with the development secret (HS256) or with a 2048-bit RSA or a P-256 key of a JWKS (fetched "
            "once over loopback, then kept), then with no token (the 401 in the error envelope).",
            table(["variant", "µs per request", "over no auth"], rows),
        ]
    )
    return Section(title, markdown, {"rounds": results, "fastest_us": fastest})
