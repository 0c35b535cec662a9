"""The aiohttp application factory."""

from __future__ import annotations

import gc
from collections.abc import AsyncIterator, Awaitable, Callable

import aiohttp_jinja2
from aiohttp import web

from gateway import pages
from gateway.clients.webhook import HttpWebhookTransport
from gateway.clients.witness import HttpWitnessTransport
from gateway.keys import (
    CAPTURE,
    CATALOG_PUBLISHER,
    HISTORY,
    LEDGER,
    NAMES,
    OPERATOR_TOKEN,
    READ_POOL,
    SETTINGS,
    TRACE,
)
from gateway.observability import observability_middleware, setup_observability
from gateway.params import BODY_BUDGET, BodyBudget
from gateway.problems import WRONG_ROLE, ProblemError, describe_problem, problem_middleware
from gateway.routes import admin as admin_routes
from gateway.routes import capture as capture_routes
from gateway.routes import epcis_rest as epcis_rest_routes
from gateway.routes import log as log_routes
from gateway.routes import lookup as lookup_routes
from gateway.routes import notices as notice_routes
from gateway.routes import port as port_routes
from gateway.routes import qr as qr_routes
from gateway.routes import queries as queries_routes
from gateway.routes import query as query_routes
from gateway.routes import scans as scan_routes
from gateway.routes import trace as trace_routes
from gateway.routes.query_stream import setup_streams
from traceledger.accounts.tokens import load_or_create_token
from traceledger.ingest.capture import CaptureService
from traceledger.ingest.catalogs.publishing import CatalogPublisher
from traceledger.inspect.trace import TraceService
from traceledger.ledger import Ledger
from traceledger.lookup.cache import HistoryCache
from traceledger.lookup.history import HistoryService
from traceledger.lookup.names import NameBook
from traceledger.settings import Settings
from traceledger.standards.schemas import SchemaSet


async def _ledger_ctx(app: web.Application) -> AsyncIterator[None]:
    settings = app[SETTINGS]
    app[OPERATOR_TOKEN] = settings.operator_token or load_or_create_token(
        settings.operator_token_file
    )
    # On shutdown the ledger drains the sequencer and signs a final checkpoint.
    async with (
        HttpWitnessTransport() as witnesses,
        HttpWebhookTransport(
            timeout=settings.webhook_timeout, connections=settings.webhook_concurrency
        ) as webhooks,
        Ledger.open(settings, witness_transport=witnesses, webhook_transport=webhooks) as ledger,
    ):
        app[LEDGER] = ledger
        app[READ_POOL] = ledger.read_pool
        if settings.role != "lookup":
            custodian = ledger.signer.private_key if ledger.signer is not None else None
            app[CAPTURE] = CaptureService(
                ledger.pool,
                ledger.sequencer,
                SchemaSet(),
                settings,
                custodian=custodian,
                cpu=ledger.cpu,
            )
            app[CATALOG_PUBLISHER] = CatalogPublisher(ledger.pool, ledger.sequencer)
        # History, proofs and the checkpoint they are against all come from one database,
        # so a lagging replica answers consistently for the checkpoint it already has.
        app[HISTORY] = HistoryService(
            ledger.read_pool,
            ledger.reader,
            verifier_key=ledger.verifier.encode(),
            cache=HistoryCache(settings.lookup_cache_bytes, settings.lookup_cache_seconds),
            # Lookups may use a checkpoint up to half an interval older than the newest.
            checkpoint_max_age=settings.checkpoint_interval / 2,
            # Earlier, frozen logs (time shards): lookups span them, trace and export do not.
            origin=ledger.verifier.name,
            past=ledger.past,
            prebuilt=settings.prebuild_answers,
        )
        app[TRACE] = TraceService(ledger.read_pool, app[HISTORY])
        app[NAMES] = NameBook(
            ledger.read_pool,
            origin=ledger.verifier.name,
            ttl=min(settings.lookup_cache_seconds, 10),
        )
        # What start-up built (modules, schemas, templates) lives as long as the process:
        # kept out of the collector's full passes, which otherwise walk all of it and
        # held the event loop for 40 ms at a time under capture (scripts/bench_capture.py).
        gc.freeze()
        yield


# Routes that append to the log or change the registry: the ingest role's. The EPCIS REST
# binding is served whole by ingest, so a standard client needs one base URL (its reads,
# a capture job or an event just captured, then come from the primary).
_INGEST_ROUTES = (capture_routes.routes, admin_routes.routes, epcis_rest_routes.routes)
# Read-only queries for consumers and officials: the lookup role's.
_LOOKUP_ROUTES = (
    lookup_routes.routes,
    qr_routes.routes,
    trace_routes.routes,
    query_routes.routes,
    scan_routes.routes,
    queries_routes.routes,
    notice_routes.routes,
)


def _route_defs(tables: tuple[web.RouteTableDef, ...]) -> list[web.RouteDef]:
    return [d for table in tables for d in table if isinstance(d, web.RouteDef)]


def _role_routes(role: str) -> tuple[list[web.RouteDef], list[web.RouteDef]]:
    """(served, refused): what this role serves, and the other role's routes it answers
    with a wrong-role problem so a misrouted client learns where to go."""
    ingest = _route_defs(_INGEST_ROUTES)
    lookup = _route_defs(_LOOKUP_ROUTES)
    both = _route_defs((log_routes.routes,))
    # The port module mixes both: publishing a catalog appends, reading catalogs does not.
    for d in _route_defs((port_routes.routes,)):
        if d.path.startswith("/problems/"):
            both.append(d)
        else:
            (lookup if d.method == "GET" else ingest).append(d)
    if role == "ingest":
        return both + ingest, lookup
    if role == "lookup":
        return both + lookup, ingest
    return both + ingest + lookup, []


def _wrong_role(role: str) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
    other = "lookup" if role == "ingest" else "ingest"

    async def handler(request: web.Request) -> web.StreamResponse:
        raise ProblemError(
            WRONG_ROLE,
            f"this is a {role} service (traceledger serve --role {role}); "
            f"send {request.method} {request.path} to the {other} service",
            role=role,
        )

    return handler


def create_app(settings: Settings) -> web.Application:
    # Observability is outermost, so it sees (and tags with the request id) the final
    # response, including the problem+json that problem_middleware makes of every error.
    app = web.Application(middlewares=[observability_middleware, problem_middleware])
    app[SETTINGS] = settings
    app[BODY_BUDGET] = BodyBudget(settings.max_buffered_body_bytes)
    # The pages' templates and catalogs (gateway/pages), rendered through aiohttp-jinja2.
    app[aiohttp_jinja2.APP_KEY] = pages.environment()
    setup_observability(app)
    app.cleanup_ctx.append(_ledger_ctx)
    setup_streams(app)
    served, refused = _role_routes(settings.role)
    app.add_routes(served)
    refuse = _wrong_role(settings.role)
    app.add_routes(web.route(d.method, d.path, refuse) for d in refused)
    app.router.add_get("/problems/{slug}", describe_problem)
    return app
