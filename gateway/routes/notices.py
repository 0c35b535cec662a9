"""Recall notices: who was told about a recall, and holders acknowledging theirs.

`GET /v1/recalls/{index}/notices` (inspectors and regulators) lists every holder the
notice went to, when, whether it acknowledged, and the holders that could not be
reached. `POST /v1/recalls/{index}/notices` is the holder's acknowledgment: with the
`ackToken` its notice carried, or with its own enterprise token.
"""

from __future__ import annotations

from aiohttp import web

from gateway.auth import PRIVATE, audit, official, optional_access
from gateway.keys import LEDGER
from gateway.params import parse_int, read_limited
from gateway.problems import BAD_REQUEST, FORBIDDEN, UNAUTHORIZED, ProblemError, problem_for
from traceledger.errors import TraceledgerError
from traceledger.ingest.envelopes import load_json
from traceledger.inspect.recall_notices import acknowledge, notices_for

routes = web.RouteTableDef()

ACK_LIMIT = 4096


def _index(request: web.Request) -> int:
    return parse_int(request.match_info["index"], "index")


@routes.get("/v1/recalls/{index}/notices")
@official
async def notices(request: web.Request) -> web.Response:
    async with request.app[LEDGER].pool.acquire() as conn:
        found = await notices_for(conn, _index(request))
    return web.json_response(found, headers=PRIVATE)


async def _ack_token(request: web.Request) -> str | None:
    raw = await read_limited(request, ACK_LIMIT)
    if not raw.strip():
        return None
    body = load_json(raw, "body")
    token = body.get("ackToken") if isinstance(body, dict) else None
    if not isinstance(token, str) or not token:
        raise ProblemError(BAD_REQUEST, 'send {"ackToken": "<the token in your notice>"}')
    return token


@routes.post("/v1/recalls/{index}/notices")
async def acknowledge_notice(request: web.Request) -> web.Response:
    index = _index(request)
    token = await _ack_token(request)
    access = await optional_access(request, enterprise=True)
    if token is None and access is None:
        raise ProblemError(
            UNAUTHORIZED, "acknowledge with the notice's ackToken or your enterprise token"
        )
    if token is None and access is not None and access.enterprise_id is None:
        raise ProblemError(FORBIDDEN, "only a holder acknowledges its recall notice")
    enterprise = access.enterprise_id if access is not None and token is None else None
    try:
        async with request.app[LEDGER].pool.acquire() as conn:
            done = await acknowledge(conn, index, token=token, enterprise_id=enterprise)
    except TraceledgerError as exc:
        problem = problem_for(exc)
        await audit(request, problem.kind.status)
        raise problem from exc
    await audit(request, 200)
    return web.json_response(done, headers=PRIVATE)
