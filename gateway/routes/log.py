"""Read side of the log over HTTP: log info, checkpoint, C2SP tiles, entries and proofs."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from gateway.keys import LEDGER
from gateway.params import parse_int, query_int
from gateway.problems import BAD_REQUEST, ProblemError
from traceledger.errors import RangeError
from traceledger.standards.epcis import utc_iso
from traceledger.tlog.merkle import leaf_hash
from traceledger.tlog.note import b64encode
from traceledger.tlog.tiles import TILE_WIDTH, parse_index_and_width, tile_path, tile_width

IMMUTABLE = "public, max-age=31536000, immutable"
# C2SP tlog-tiles: the checkpoint is mutable, "prevent caching beyond a few seconds".
CHECKPOINT_CACHE = "public, max-age=2"

routes = web.RouteTableDef()


def _hex(data: bytes | None) -> str | None:
    return None if data is None else data.hex()


@routes.get("/v1/log")
async def log_info(request: web.Request) -> web.Response:
    ledger = request.app[LEDGER]
    cp = await ledger.reader.checkpoint()
    return web.json_response(
        {
            "origin": ledger.settings.origin,
            "verifierKey": ledger.verifier.encode(),
            "treeSize": cp.size,
            "rootHash": b64encode(cp.root_hash),
        },
        headers={"Cache-Control": CHECKPOINT_CACHE},
    )


@routes.get("/checkpoint")
async def checkpoint(request: web.Request) -> web.Response:
    cp = await request.app[LEDGER].reader.checkpoint()
    return web.Response(
        text=cp.note,
        content_type="text/plain",
        charset="utf-8",
        headers={"Cache-Control": CHECKPOINT_CACHE},
    )


@routes.get("/tile/{level}/{index:.+}")
async def tile(request: web.Request) -> web.Response:
    raw_level = request.match_info["level"]
    try:
        index, width = parse_index_and_width(request.match_info["index"])
    except RangeError as exc:
        raise ProblemError(BAD_REQUEST, str(exc)) from exc
    reader = request.app[LEDGER].reader
    if raw_level == "entries":
        body = await reader.entry_bundle(index, width)
    else:
        if raw_level != str(parse_int(raw_level, "level")):
            raise ProblemError(BAD_REQUEST, f"tile level {raw_level!r} must be a plain decimal")
        body = await reader.tile(int(raw_level), index, width)
    response = web.Response(
        body=body,
        content_type="application/octet-stream",
        headers={"Cache-Control": IMMUTABLE},
    )
    if raw_level == "entries":
        response.enable_compression()
    return response


@routes.get("/v1/entries/{index}")
async def entry(request: web.Request) -> web.Response:
    index = parse_int(request.match_info["index"], "index")
    reader = request.app[LEDGER].reader
    stored = await reader.entry(index)
    leaf = stored.decoded
    bundle = index // TILE_WIDTH
    width = tile_width(0, (await reader.checkpoint()).size, bundle)
    tile = tile_path("entries", bundle, width) if index < bundle * TILE_WIDTH + width else None
    return web.json_response(
        {
            "index": stored.index,
            "leaf": b64encode(stored.leaf),
            "leafHash": b64encode(leaf_hash(stored.leaf)),
            "fields": {
                "version": 1,
                "index": leaf.index,
                "prevLeafHash": b64encode(leaf.prev_hash),
                "recordTime": utc_iso(datetime.fromtimestamp(leaf.record_time_us / 1e6, UTC)),
                "recordTimeMicros": leaf.record_time_us,
                "identity": _hex(leaf.identity),
                "payloadHash": _hex(leaf.payload_hash),
                "envelopeHash": _hex(leaf.envelope_hash),
            },
            "payload": None if stored.payload is None else b64encode(stored.payload),
            "envelope": None if stored.envelope is None else b64encode(stored.envelope),
            "tile": tile,
        }
    )


@routes.get("/v1/proof/inclusion")
async def inclusion_proof(request: web.Request) -> web.Response:
    index, size = query_int(request, "index"), query_int(request, "treeSize")
    hashes = await request.app[LEDGER].reader.inclusion_proof(index, size)
    return web.json_response(
        {"index": index, "treeSize": size, "hashes": [b64encode(h) for h in hashes]},
        headers={"Cache-Control": IMMUTABLE},
    )


@routes.get("/v1/proof/consistency")
async def consistency_proof(request: web.Request) -> web.Response:
    first, second = query_int(request, "first"), query_int(request, "second")
    hashes = await request.app[LEDGER].reader.consistency_proof(first, second)
    return web.json_response(
        {"first": first, "second": second, "hashes": [b64encode(h) for h in hashes]},
        headers={"Cache-Control": IMMUTABLE},
    )
