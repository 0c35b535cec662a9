"""Look-up counts of serialized items: counted on the public page and its JSON, listed
for inspectors (a code copied onto fakes is looked up by every buyer of a fake)."""

from __future__ import annotations

from aiohttp import web

from gateway.auth import official
from gateway.keys import LEDGER, READ_POOL
from gateway.params import client_address, digital_link_key, parse_int
from gateway.problems import NOT_FOUND, ProblemError
from traceledger.lookup.scans import Tally, most_scanned
from traceledger.standards.gs1 import GS1Key

routes = web.RouteTableDef()


def counted(key: GS1Key) -> bool:
    """Only serialized items: a lot or a product is looked up by every buyer."""
    return key.serial is not None


async def count_lookup(request: web.Request, key: GS1Key) -> Tally | None:
    """Count this public look-up of a serialized item (at most once a minute per client)
    and return its tally; None when it is not counted."""
    counter = request.app[LEDGER].scans
    if counter is None or not counted(key):
        return None
    code = key.item_key().canonical()
    counter.record(code, client_address(request))
    return await counter.tally(code)


@routes.get("/v1/scans/{path:.+}")
@official
async def scans(request: web.Request) -> web.Response:
    """The most looked-up serials of a lot (or of a GTIN, or one serial), most first."""
    key = digital_link_key(request, "/v1/scans/")
    raw = request.query.get("limit")
    limit = 20 if raw is None else parse_int(raw, "limit")
    if request.app[LEDGER].scans is None:
        raise ProblemError(NOT_FOUND, "this ledger does not count look-ups (count_scans is off)")
    async with request.app[READ_POOL].acquire() as conn:
        found = await most_scanned(conn, key, limit)
    return web.json_response({"key": key.canonical(), "level": key.level, "serials": found})
