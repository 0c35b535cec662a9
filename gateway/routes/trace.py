"""Inspector and regulator views: origin, forward trace (recall scope), recalls."""

from __future__ import annotations

from aiohttp import web

from gateway.auth import official
from gateway.keys import TRACE
from gateway.params import digital_link_key, parse_int
from traceledger.inspect.trace import MAX_DEPTH

routes = web.RouteTableDef()


def _depth(request: web.Request) -> int:
    raw = request.query.get("depth")
    return MAX_DEPTH if raw is None else parse_int(raw, "depth")


@routes.get("/v1/origin/{path:.+}")
@official
async def origin(request: web.Request) -> web.Response:
    key = digital_link_key(request, "/v1/origin/")
    return web.json_response(await request.app[TRACE].origin(key, _depth(request)))


@routes.get("/v1/trace/forward/{path:.+}")
@official
async def forward(request: web.Request) -> web.Response:
    key = digital_link_key(request, "/v1/trace/forward/")
    return web.json_response(await request.app[TRACE].forward(key, _depth(request)))


@routes.get("/v1/recalls")
@official
async def list_recalls(request: web.Request) -> web.Response:
    raw = request.query.get("limit")
    limit = 50 if raw is None else min(parse_int(raw, "limit"), 500)
    return web.json_response(await request.app[TRACE].recalls(limit))
