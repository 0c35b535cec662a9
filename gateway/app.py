"""The aiohttp application factory."""

from __future__ import annotations

from collections.abc import AsyncIterator

from aiohttp import web

from gateway import (
    admin_routes,
    capture_routes,
    log_routes,
    lookup_routes,
    port_routes,
    qr_routes,
    query_routes,
    trace_routes,
)
from gateway.keys import CAPTURE, HISTORY, LEDGER, OPERATOR_TOKEN, SETTINGS, TRACE
from gateway.observability import observability_middleware, setup_observability
from gateway.problems import describe_problem, problem_middleware
from traceledger.capture import CaptureService
from traceledger.history import HistoryService
from traceledger.ledger import Ledger
from traceledger.schemas import SchemaSet
from traceledger.settings import Settings
from traceledger.tokens import load_or_create_token
from traceledger.trace import TraceService


async def _ledger_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[OPERATOR_TOKEN] = settings.operator_token or load_or_create_token(
        settings.operator_token_file
    )
    # On shutdown the ledger drains the sequencer and signs a final checkpoint.
    async with Ledger.open(settings) as ledger:
        app[LEDGER] = ledger
        app[CAPTURE] = CaptureService(ledger.pool, ledger.sequencer, SchemaSet(), settings)
        app[HISTORY] = HistoryService(ledger.pool, ledger.reader)
        app[TRACE] = TraceService(ledger.pool, app[HISTORY])
        yield


def create_app(settings: Settings) -> web.Application:
    # Observability is outermost, so it sees (and tags with the request id) the final
    # response, including the problem+json that problem_middleware makes of every error.
    app = web.Application(middlewares=[observability_middleware, problem_middleware])
    app[SETTINGS] = settings
    setup_observability(app)
    app.cleanup_ctx.append(_ledger_ctx)
    for routes in (
        log_routes.routes,
        capture_routes.routes,
        admin_routes.routes,
        lookup_routes.routes,
        qr_routes.routes,
        trace_routes.routes,
        port_routes.routes,
        query_routes.routes,
    ):
        app.add_routes(routes)
    app.router.add_get("/problems/{slug}", describe_problem)
    return app
