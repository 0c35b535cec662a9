"""`GET /queries/{name}/events` over WebSocket: a live subscription for as long as the
connection lasts (the REST binding's `stream=true`, or a schedule as query parameters).

Each message is an EPCISQueryDocument with the `traceledger:log` proof of its events.
Deleting the query ends its streams (close code 1000); connections are closed (1001,
going away) when the service shuts down.
"""

from __future__ import annotations

import aiohttp
from aiohttp import web

from gateway.keys import LEDGER, READ_POOL, SETTINGS
from traceledger.errors import SubscriptionError
from traceledger.inspect.live_feed import LiveFeed
from traceledger.inspect.named_queries import NamedQuery
from traceledger.inspect.query import parse_query_time
from traceledger.inspect.schedule import FIELDS, parse_schedule
from traceledger.inspect.visibility import Viewer

_SCHEDULE = tuple(name for name, _, _ in FIELDS)
_PARAMETERS = frozenset({"stream", "reportIfEmpty", "initialRecordTime", *_SCHEDULE})
_FLAGS = {"true": True, "false": False}


class OpenStreams:
    """The WebSocket connections being served, so shutdown can close them."""

    def __init__(self) -> None:
        self.open: set[web.WebSocketResponse] = set()


STREAMS = web.AppKey("query_streams", OpenStreams)


def wants_websocket(request: web.Request) -> bool:
    return request.headers.get("Upgrade", "").lower() == "websocket"


def _flag(request: web.Request, name: str) -> bool:
    raw = request.query.get(name, "false").lower()
    if raw not in _FLAGS:
        raise SubscriptionError(name, f"{name} is true or false")
    return _FLAGS[raw]


async def _feed(request: web.Request, named: NamedQuery, viewer: Viewer) -> LiveFeed:
    """The live feed the query parameters ask for (refused before the upgrade if wrong)."""
    unknown = sorted(set(request.query) - _PARAMETERS)
    if unknown:
        raise SubscriptionError(unknown[0][:80], f"known parameters: {sorted(_PARAMETERS)}")
    stream = _flag(request, "stream")
    fields = {k: request.query[k] for k in _SCHEDULE if k in request.query}
    if stream == bool(fields):
        raise SubscriptionError(
            "stream", "give either stream=true or a schedule (second, minute, hour, ...)"
        )
    schedule = parse_schedule(fields) if fields else None
    initial = parse_query_time(request.query.get("initialRecordTime"), "initialRecordTime")
    pool = request.app[READ_POOL]
    return LiveFeed(
        pool,
        request.app[LEDGER].reader,
        named,
        viewer,
        cursor=await LiveFeed.start_index(pool, initial),
        schedule=schedule,
        report_if_empty=_flag(request, "reportIfEmpty"),
        batch=request.app[SETTINGS].webhook_batch_events,
    )


async def stream_events(
    request: web.Request, named: NamedQuery, viewer: Viewer
) -> web.WebSocketResponse:
    feed = await _feed(request, named, viewer)
    poll = request.app[SETTINGS].notify_interval
    ws = web.WebSocketResponse(heartbeat=30)
    await ws.prepare(request)
    request.app[STREAMS].open.add(ws)
    try:
        while not ws.closed:
            if not await feed.still_there():
                await ws.close(code=aiohttp.WSCloseCode.OK, message=b"the query was deleted")
                break
            async for document in feed.due():
                await ws.send_str(document.decode())
            try:
                message = await ws.receive(timeout=feed.pause(poll))
            except TimeoutError:
                continue
            if message.type in (
                aiohttp.WSMsgType.CLOSE,
                aiohttp.WSMsgType.CLOSING,
                aiohttp.WSMsgType.CLOSED,
                aiohttp.WSMsgType.ERROR,
            ):
                break
    finally:
        request.app[STREAMS].open.discard(ws)
    return ws


async def _close_streams(app: web.Application) -> None:
    for ws in list(app[STREAMS].open):
        await ws.close(code=aiohttp.WSCloseCode.GOING_AWAY, message=b"server shutdown")


def setup_streams(app: web.Application) -> None:
    app[STREAMS] = OpenStreams()
    app.on_shutdown.append(_close_streams)
