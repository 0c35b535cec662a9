"""QR code images of Digital Links: `GET /qr/{digital link path}.png` and `.svg`.

`/qr/01/09506000134352/10/LOT1.png` is a code for `<public base>/01/09506000134352/10/LOT1`,
the canonical form of the path (a GTIN-13 is padded to 14 digits), so printing a label needs
no QR software. A malformed path raises IdentifierError: a 400 problem+json.
"""

from __future__ import annotations

from aiohttp import web

from gateway.params import public_base, raw_path_between
from traceledger.standards import qr

routes = web.RouteTableDef()

# The codes are a pure function of the path and the configured base URL.
CACHE_HEADERS = {"Cache-Control": "public, max-age=86400"}


def _link(request: web.Request) -> str:
    path = raw_path_between(request, "/qr/").rsplit(".", 1)[0]  # drop .png / .svg
    return qr.digital_link_for(path, public_base(request))


@routes.get("/qr/{path:.+}.png")
async def qr_png(request: web.Request) -> web.Response:
    return web.Response(
        body=qr.png(_link(request)), content_type="image/png", headers=CACHE_HEADERS
    )


@routes.get("/qr/{path:.+}.svg")
async def qr_svg(request: web.Request) -> web.Response:
    return web.Response(
        body=qr.svg(_link(request)), content_type="image/svg+xml", headers=CACHE_HEADERS
    )
