"""POST /v1/capture: signed EPCIS documents in, durable indexes out."""

from __future__ import annotations

from aiohttp import web

from gateway.keys import CAPTURE, SETTINGS
from gateway.problems import PAYLOAD_TOO_LARGE, ProblemError

routes = web.RouteTableDef()


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The body, refusing anything over `limit` without reading it all."""
    if request.content_length is not None and request.content_length > limit:
        raise ProblemError(
            PAYLOAD_TOO_LARGE, f"the body is {request.content_length} bytes; the limit is {limit}"
        )
    body = bytearray()
    async for chunk in request.content.iter_chunked(64 * 1024):
        body += chunk
        if len(body) > limit:
            raise ProblemError(PAYLOAD_TOO_LARGE, f"the body exceeds the limit of {limit} bytes")
    return bytes(body)


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
