"""POST /v1/capture: signed EPCIS documents in, durable indexes out."""

from __future__ import annotations

from aiohttp import web

from gateway.keys import CAPTURE, SETTINGS
from gateway.params import read_limited

routes = web.RouteTableDef()


@routes.post("/v1/capture")
async def capture(request: web.Request) -> web.Response:
    limit = request.app[SETTINGS].max_body_bytes
    content_type = request.content_type  # main type only, parameters stripped
    body = await read_limited(request, limit)
    captured = await request.app[CAPTURE].capture(body, content_type)
    return web.Response(
        status=200 if captured.receipt.replayed else 201,
        body=captured.receipt.body,
        content_type="application/json",
    )
