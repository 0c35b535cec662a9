"""Risk catalogs and the port: publishing catalogs, reading them, arrivals and sampling.

`POST /v1/catalogs` takes an authority-signed catalog version (DSSE envelope);
`GET /v1/catalogs`, `GET /v1/catalogs/{name}` and `GET /v1/port/arrivals` are for
inspectors and regulators (bearer token; every query is audited).
"""

from __future__ import annotations

from datetime import datetime

from aiohttp import web

from gateway.auth import official
from gateway.capture_routes import read_limited
from gateway.keys import LEDGER, READ_POOL, SETTINGS
from gateway.params import parse_int
from gateway.problems import (
    BAD_REQUEST,
    NOT_FOUND,
    ProblemError,
    ProblemType,
)
from traceledger.catalog import (
    CATALOGS,
    DEFAULT_BASE_RATE,
    CatalogService,
    InvalidCatalogError,
    StaleCatalogError,
    port_key,
)
from traceledger.epcis import parse_time
from traceledger.errors import IdentifierError

routes = web.RouteTableDef()

# The sampling rate for arrivals that match no catalog entry, unless the catalog version
# in force records its own baseInspectionRate (which is auditable, so preferred).
BASE_RATE = web.AppKey("port_base_rate", float)
INVALID_CATALOG = ProblemType("invalid-catalog", "The catalog document is not valid", 422)
STALE_CATALOG = ProblemType(
    "stale-catalog-version", "A version at least as new is already recorded", 409
)
MAX_LIMIT = 1000


def _service(request: web.Request, *, write: bool = False) -> CatalogService:
    """Publishing appends through the primary; reading may use the read replica."""
    ledger = request.app[LEDGER]
    rate = request.app.get(BASE_RATE, DEFAULT_BASE_RATE)
    pool = ledger.pool if write else request.app[READ_POOL]
    return CatalogService(pool, ledger.sequencer, base_rate=rate)


@routes.post("/v1/catalogs")
async def publish_catalog(request: web.Request) -> web.Response:
    body = await read_limited(request, request.app[SETTINGS].max_body_bytes)
    try:
        published = await _service(request, write=True).publish(body, request.content_type)
    except InvalidCatalogError as exc:
        raise ProblemError(INVALID_CATALOG, str(exc), errors=exc.errors) from exc
    except StaleCatalogError as exc:
        raise ProblemError(STALE_CATALOG, str(exc), currentVersion=exc.current) from exc
    return web.Response(
        status=200 if published.replayed else 201,
        body=published.body,
        content_type="application/json",
    )


@routes.get("/v1/catalogs")
@official
async def list_catalogs(request: web.Request) -> web.Response:
    return web.json_response(await _service(request).catalogs())


@routes.get("/v1/catalogs/{name}")
@official
async def show_catalog(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in CATALOGS:
        raise ProblemError(NOT_FOUND, f"no catalog {name!r}; catalogs: {', '.join(CATALOGS)}")
    raw = request.query.get("version")
    version = None if raw is None else parse_int(raw, "version")
    found = await _service(request).catalog(name, version)
    if found is None:
        what = f"version {version} of {name}" if version is not None else f"a version of {name}"
        raise ProblemError(NOT_FOUND, f"no {what} is recorded")
    return web.json_response(found)


def _time(request: web.Request, name: str) -> datetime | None:
    raw = request.query.get(name)
    if raw is None:
        return None
    try:
        return parse_time(raw)
    except ValueError as exc:
        raise ProblemError(
            BAD_REQUEST, f"{name} must be an RFC 3339 date-time: {exc}", parameter=name
        ) from exc


@routes.get("/v1/port/arrivals")
@official
async def arrivals(request: web.Request) -> web.Response:
    since, until = _time(request, "since"), _time(request, "until")
    port = None
    if "port" in request.query:
        try:
            port = port_key(request.query["port"])
        except IdentifierError as exc:
            raise ProblemError(BAD_REQUEST, str(exc), parameter="port") from exc
    raw = request.query.get("limit")
    limit = 100 if raw is None else parse_int(raw, "limit")
    if not 1 <= limit <= MAX_LIMIT:
        raise ProblemError(BAD_REQUEST, f"limit must be 1 to {MAX_LIMIT}", parameter="limit")
    answer = await _service(request).arrivals(since=since, until=until, port=port, limit=limit)
    return web.json_response(answer)


async def _describe(request: web.Request) -> web.Response:
    kind = INVALID_CATALOG if request.path.endswith(INVALID_CATALOG.slug) else STALE_CATALOG
    return web.Response(text=f"{kind.title} (HTTP {kind.status}).\n", content_type="text/plain")


# These problem types are not in gateway.problems.ALL_TYPES; keep their URIs dereferenceable.
for _kind in (INVALID_CATALOG, STALE_CATALOG):
    routes.get(_kind.uri)(_describe)
