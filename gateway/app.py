"""The aiohttp application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from gateway import log_routes
from gateway.keys import LEDGER, SETTINGS
from gateway.problems import describe_problem, problem_middleware
from traceledger.ledger import Ledger
from traceledger.settings import Settings


async def _ledger_ctx(app: web.Application) -> AsyncIterator[None]:
    # On shutdown the ledger drains the sequencer and signs a final checkpoint.
    async with Ledger.open(app[SETTINGS]) as ledger:
        app[LEDGER] = ledger
        yield


def create_app(settings: Settings) -> web.Application:
    app = web.Application(middlewares=[problem_middleware])
    app[SETTINGS] = settings
    app.cleanup_ctx.append(_ledger_ctx)
    app.add_routes(log_routes.routes)
    app.router.add_get("/problems/{slug}", describe_problem)
    return app
