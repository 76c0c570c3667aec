"""The request path: the skeleton against what a user would pick instead, on the liveness route.

Three servers, interleaved (the order turns each round), each under the same load:
- skeleton: the rendered service as `make api` serves it, without --reload;
- full-stack shape: full-stack-fastapi-template's app shape (Starlette's CORSMiddleware
  configured as it configures it; a /health APIRouter included by an ``api_router``,
  included under /api/v1), uvicorn's default access log;
- bare: FastAPI with the route on the app and nothing else, uvicorn's default access log.
"""

import statistics
from typing import Any

from figures.common import Bench, Section, table, verdict

FULL_STACK_APP = '''"""full-stack-fastapi-template's app shape, serving the skeleton's liveness route."""

from fastapi import APIRouter, FastAPI
from starlette.middleware.cors import CORSMiddleware


def create_app() -> FastAPI:
    health = APIRouter(prefix="/health", tags=["health"])

    @health.get("")
    async def liveness() -> dict[str, str]:
        return {"status": "ok"}

    api_router = APIRouter()
    api_router.include_router(health)
    app = FastAPI(title="Full-stack shape", openapi_url="/api/v1/openapi.json")
    app.add_middleware(
        CORSMiddleware,
        allow_origins=["http://localhost:5173"],
        allow_credentials=True,
        allow_methods=["*"],
        allow_headers=["*"],
    )
    app.include_router(api_router, prefix="/api/v1")
    return app
'''
BARE_APP = '''"""Bare FastAPI: the skeleton's liveness route on the app, no middleware."""

from fastapi import FastAPI


def create_app() -> FastAPI:
    app = FastAPI()

    @app.get("/api/v1/health")
    async def liveness() -> dict[str, str]:
        return {"status": "ok"}

    return app
'''
# (name in the tables, the module written for it; None: the service's own app)
SERVERS: list[tuple[str, str | None]] = [
    ("skeleton", None),
    ("full-stack shape", "full_stack_app"),
    ("bare", "bare_app"),
]
# The skeleton's requests per second over the other's: (target, as BENCHMARKS.md says it).
TARGETS = {"full-stack shape": (1.0, "goal ≥ 1.0"), "bare": (0.85, "floor ≥ 0.85")}


def figures(bench: Bench) -> Section:
    sources = {"full_stack_app": FULL_STACK_APP, "bare_app": BARE_APP}
    paths = {module: bench.write_app(module, source) for module, source in sources.items()}
    rounds: list[dict[str, dict[str, Any]]] = []
    for number in range(bench.rounds):
        turn = number % len(SERVERS)
        measured: dict[str, dict[str, Any]] = {}
        for name, module in SERVERS[turn:] + SERVERS[:turn]:
            app = f"{module}:create_app" if module else "app.main:create_app"
            with bench.serve(name.replace(" ", "-"), app, paths.get(module or "")) as server:
                result = measured[name] = bench.throughput(server)
            print(
                f"round {number + 1}, {name}: {result['rps']:.0f} req/s, p50 {result['p50_ms']:.2f} ms, "
                f"p99 {result['p99_ms']:.2f} ms, {result['cpu_us_per_request']} CPU µs/req"
            )
        rounds.append({name: measured[name] for name, _ in SERVERS})
    ratios = {other: [round(r["skeleton"]["rps"] / r[other]["rps"], 3) for r in rounds] for other in TARGETS}
    medians = {other: round(statistics.median(values), 3) for other, values in ratios.items()}
    for other, median in medians.items():
        print(f"skeleton / {other} (req/s): median {median:.2f} of {ratios[other]}")

    rows = [
        [
            number,
            name,
            f"{f['rps']:.0f}",
            f"{f['p50_ms']:.2f} / {f['p99_ms']:.2f}",
            f["cpu_us_per_request"],
            f["rss_mib"],
            f["errors"],
        ]
        for number, measured in enumerate(rounds, 1)
        for name, f in measured.items()
    ]
    ratio_rows = [
        [
            f"skeleton / {other}",
            f"**{medians[other]:.2f}**",
            ", ".join(f"{ratio:.2f}" for ratio in ratios[other]),
            TARGETS[other][1],
            verdict(medians[other] >= TARGETS[other][0]),
        ]
        for other in TARGETS
    ]
    markdown = "\n\n".join(
        [
            "Requests per second on `GET /api/v1/health` (touches no dependency): how much the "
            "skeleton's request path costs against what a team would otherwise start from.",
            "- **skeleton**: the rendered service as `make api` serves it, without `--reload` "
            "(uvicorn `--factory app.main:create_app`): CORS, request ID, error middleware, one JSON "
            "access line per request.\n"
            "- **full-stack shape**: the shape of "
            "[full-stack-fastapi-template](https://github.com/fastapi/full-stack-fastapi-template)'s "
            "`backend/app/main.py` and `backend/app/api/main.py`: Starlette's `CORSMiddleware` "
            "configured as there (one origin, credentials, every method and header), an `api_router = "
            'APIRouter()` that includes `APIRouter(prefix="/health")` with the same liveness route, '
            "included under `/api/v1`; uvicorn's default (text) access log.\n"
            "- **bare**: FastAPI with the same route on the app and nothing else; uvicorn's default "
            "access log.",
            f"All three log to a file. {bench.rounds} round(s), the three servers interleaved (the "
            "order turns each round); a ratio is the skeleton's requests per second over the other's "
            "in the same round, and the median of the rounds is compared with the target.",
            table(["comparison", "median ratio", "per round", "target", "verdict"], ratio_rows),
            table(["round", "server", "req/s", "p50 / p99 ms", "server CPU µs/req", "RSS MiB", "errors"], rows),
        ]
    )
    data = {"rounds": rounds, "ratios": ratios, "median_ratios": medians}
    return Section("Request path: skeleton, full-stack shape, bare FastAPI", markdown, data)
