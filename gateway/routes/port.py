"""Risk catalogs and the port: publishing catalogs, reading them, arrivals and sampling.

`POST /v1/catalogs` takes an authority-signed catalog version (DSSE envelope);
`GET /v1/catalogs`, `GET /v1/catalogs/{name}` and `GET /v1/port/arrivals` are for
inspectors and regulators (bearer token; every query is audited).
"""

from __future__ import annotations

from aiohttp import web

from gateway.auth import official
from gateway.keys import CATALOG_PUBLISHER, READ_POOL, SETTINGS
from gateway.params import parse_int, read_limited
from gateway.problems import (
    BAD_REQUEST,
    NOT_FOUND,
    ProblemError,
)
from traceledger.errors import IdentifierError
from traceledger.ingest.catalogs.document import CATALOGS, port_key
from traceledger.inspect.catalogs.arrivals import ArrivalSampler
from traceledger.inspect.catalogs.sampling import DEFAULT_BASE_RATE
from traceledger.inspect.catalogs.versions import CatalogReader
from traceledger.inspect.query import parse_query_time

routes = web.RouteTableDef()

# The sampling rate for arrivals that match no catalog entry, unless the catalog version
# in force records its own baseInspectionRate (which is auditable, so preferred).
BASE_RATE = web.AppKey("port_base_rate", float)
MAX_LIMIT = 1000


def _sampler(request: web.Request) -> ArrivalSampler:
    rate = request.app.get(BASE_RATE, DEFAULT_BASE_RATE)
    return ArrivalSampler(request.app[READ_POOL], base_rate=rate)


@routes.post("/v1/catalogs")
async def publish_catalog(request: web.Request) -> web.Response:
    body = await read_limited(request, request.app[SETTINGS].max_body_bytes)
    # Publishing appends through the primary; reading may use the read replica.
    published = await request.app[CATALOG_PUBLISHER].publish(body, request.content_type)
    return web.Response(
        status=200 if published.replayed else 201,
        body=published.body,
        content_type="application/json",
    )


@routes.get("/v1/catalogs")
@official
async def list_catalogs(request: web.Request) -> web.Response:
    return web.json_response(await CatalogReader(request.app[READ_POOL]).catalogs())


@routes.get("/v1/catalogs/{name}")
@official
async def show_catalog(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in CATALOGS:
        raise ProblemError(NOT_FOUND, f"no catalog {name!r}; catalogs: {', '.join(CATALOGS)}")
    raw = request.query.get("version")
    version = None if raw is None else parse_int(raw, "version")
    found = await CatalogReader(request.app[READ_POOL]).catalog(name, version)
    if found is None:
        what = f"version {version} of {name}" if version is not None else f"a version of {name}"
        raise ProblemError(NOT_FOUND, f"no {what} is recorded")
    return web.json_response(found)


@routes.get("/v1/port/arrivals")
@official
async def arrivals(request: web.Request) -> web.Response:
    since = parse_query_time(request.query.get("since"), "since")
    until = parse_query_time(request.query.get("until"), "until")
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
    answer = await _sampler(request).arrivals(since=since, until=until, port=port, limit=limit)
    return web.json_response(answer)
