"""Read side of the log over HTTP: log info, checkpoint, C2SP tiles, entries and proofs."""

from __future__ import annotations

from datetime import UTC, datetime

from aiohttp import web

from gateway.auth import CHALLENGE, PRIVATE, audited, optional_access
from gateway.keys import LEDGER
from gateway.params import parse_int, query_int
from gateway.problems import BAD_REQUEST, READ_FORBIDDEN, UNAUTHORIZED, ProblemError
from traceledger.errors import RangeError
from traceledger.inspect.entry_access import body_access, public_statement
from traceledger.log.reader import StoredEntry
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
@audited
async def entry(request: web.Request) -> web.Response:
    """The entry's public fields; its body (payload, envelope) only to those entitled
    (traceledger/inspect/entry_access.py). `?include=body` asks for the body: then a
    caller without a token gets 401 and one without the right 403, not the public part."""
    index = parse_int(request.match_info["index"], "index")
    explicit = request.query.get("include") == "body"
    access = await optional_access(request, enterprise=True)
    reader = request.app[LEDGER].reader
    stored = await reader.entry(index)
    async with request.app[LEDGER].pool.acquire() as conn:
        reason = await body_access(conn, index, access)
        stated = reason is None and await public_statement(conn, index)
    if explicit and reason is None:
        if access is None:
            raise ProblemError(
                UNAUTHORIZED, "the body of an entry needs a bearer token", headers=CHALLENGE
            )
        raise ProblemError(
            READ_FORBIDDEN,
            f"entry {index}: only its signer, the owner of the goods it names,"
            " inspectors and regulators read its body",
        )
    body = await _public_entry(request, stored)
    body["access"] = reason
    body["payload"] = _b64_or_none(stored.payload if reason or stated else None)
    body["envelope"] = _b64_or_none(stored.envelope if reason else None)
    # One URL, an answer per caller: shared caches must keep them apart.
    headers = PRIVATE if reason else {"Vary": "Authorization"}
    return web.json_response(body, headers=headers)


def _b64_or_none(data: bytes | None) -> str | None:
    return None if data is None else b64encode(data)


async def _public_entry(request: web.Request, stored: StoredEntry) -> dict[str, object]:
    """What anyone may read of an entry: what verification needs, nothing of its body."""
    leaf = stored.decoded
    index = stored.index
    bundle = index // TILE_WIDTH
    width = tile_width(0, (await request.app[LEDGER].reader.checkpoint()).size, bundle)
    tile = tile_path("entries", bundle, width) if index < bundle * TILE_WIDTH + width else None
    return {
        "index": index,
        "leaf": b64encode(stored.leaf),
        "leafHash": b64encode(leaf_hash(stored.leaf)),
        "fields": {
            "version": leaf.version,
            "index": leaf.index,
            "prevLeafHash": b64encode(leaf.prev_hash),
            "recordTime": utc_iso(datetime.fromtimestamp(leaf.record_time_us / 1e6, UTC)),
            "recordTimeMicros": leaf.record_time_us,
            "identity": _hex(leaf.identity),
            "payloadHash": _hex(leaf.payload_hash),
            "envelopeHash": _hex(leaf.envelope_hash),
        },
        "tile": tile,
        # Fields erased by `traceledger redact`: their digests stay committed.
        "redacted": sorted(stored.redacted),
    }


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
