"""The witness over HTTP: `POST /add-checkpoint` per c2sp.org/tlog-witness.

The spec fixes the success body (cosignature lines) and the 409 body (the last cosigned
size as `text/x.tlog.size`); every other refusal is problem+json with the spec's status.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from aiohttp import web

from gateway.problems import describe_problem, problem_middleware
from traceledger.errors import WitnessConflictError
from traceledger.log.witness import MAX_REQUEST_SIZE, Witness
from traceledger.tlog.note import Verifier

TLOG_SIZE = "text/x.tlog.size"


@dataclass(frozen=True)
class WitnessConfig:
    """Where the witness lives, its name, and the logs (origin -> log keys) it watches."""

    home: Path
    name: str
    logs: Mapping[str, Sequence[Verifier]] = field(default_factory=dict)


CONFIG = web.AppKey("witness_config", WitnessConfig)
WITNESS = web.AppKey("witness", Witness)

routes = web.RouteTableDef()


@routes.post("/add-checkpoint")
async def add_checkpoint(request: web.Request) -> web.Response:
    body = await request.read()
    try:
        line = await request.app[WITNESS].add_checkpoint(body)
    except WitnessConflictError as exc:
        # The spec fixes the Content-Type exactly: bytes, so aiohttp adds no charset.
        return web.Response(status=409, body=f"{exc.size}\n".encode(), content_type=TLOG_SIZE)
    return web.Response(text=line, content_type="text/plain", charset="utf-8")


@routes.get("/")
async def info(request: web.Request) -> web.Response:
    """Who this witness is: its verifier key, then the origins it witnesses."""
    witness = request.app[WITNESS]
    lines = [witness.signer.verifier.encode(), *witness.origins]
    return web.Response(text="".join(f"{line}\n" for line in lines), content_type="text/plain")


@routes.get("/healthz")
async def healthz(request: web.Request) -> web.Response:
    return web.Response(text="ok\n", content_type="text/plain")


async def _witness_ctx(app: web.Application) -> AsyncIterator[None]:
    config = app[CONFIG]
    # Holds the home folder's lock for the app's lifetime: one process per state file.
    with Witness.open(config.home, config.name, config.logs) as witness:
        app[WITNESS] = witness
        yield


def create_witness_app(config: WitnessConfig) -> web.Application:
    app = web.Application(middlewares=[problem_middleware], client_max_size=MAX_REQUEST_SIZE)
    app[CONFIG] = config
    app.cleanup_ctx.append(_witness_ctx)
    app.add_routes(routes)
    app.router.add_get("/problems/{slug}", describe_problem)
    return app
