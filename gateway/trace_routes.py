"""Inspector and regulator views: origin, forward trace (recall scope), recalls."""

from __future__ import annotations

from aiohttp import web

from gateway.auth import audit, optional_access
from gateway.keys import TRACE
from gateway.params import parse_int
from gateway.problems import FORBIDDEN, UNAUTHORIZED, ProblemError
from traceledger.errors import TraceledgerError
from traceledger.gs1 import GS1Key, parse_digital_link
from traceledger.tokens import AccessToken
from traceledger.trace import MAX_DEPTH

routes = web.RouteTableDef()
OFFICIAL_ROLES = ("inspector", "regulator")


async def require_official(request: web.Request) -> AccessToken:
    """An inspector's or regulator's token, or a 401/403 problem."""
    access = await optional_access(request)
    if access is None:
        raise ProblemError(
            UNAUTHORIZED,
            "an inspector or regulator token is required",
            headers={"WWW-Authenticate": 'Bearer realm="traceledger"'},
        )
    if access.role not in OFFICIAL_ROLES:
        raise ProblemError(FORBIDDEN, f"role {access.role!r} may not use this view")
    return access


def _key(request: web.Request, prefix: str) -> GS1Key:
    # Everything after the prefix is a Digital Link path (raw: keep its %-encoding).
    raw = request.raw_path.split("?", 1)[0]
    return parse_digital_link("https://id.gs1.org/" + raw.removeprefix(prefix))


def _depth(request: web.Request) -> int:
    raw = request.query.get("depth")
    return MAX_DEPTH if raw is None else parse_int(raw, "depth")


async def _audited(request: web.Request, answer: object) -> web.Response:
    await audit(request, 200)
    return web.json_response(answer)


@routes.get("/v1/origin/{path:.+}")
async def origin(request: web.Request) -> web.Response:
    await require_official(request)
    try:
        answer = await request.app[TRACE].origin(_key(request, "/v1/origin/"), _depth(request))
    except (TraceledgerError, ProblemError):
        await audit(request, 400)
        raise
    return await _audited(request, answer)


@routes.get("/v1/trace/forward/{path:.+}")
async def forward(request: web.Request) -> web.Response:
    await require_official(request)
    try:
        answer = await request.app[TRACE].forward(
            _key(request, "/v1/trace/forward/"), _depth(request)
        )
    except (TraceledgerError, ProblemError):
        await audit(request, 400)
        raise
    return await _audited(request, answer)


@routes.get("/v1/recalls")
async def list_recalls(request: web.Request) -> web.Response:
    await require_official(request)
    raw = request.query.get("limit")
    limit = 50 if raw is None else min(parse_int(raw, "limit"), 500)
    return await _audited(request, {"recalls": await request.app[TRACE].recalls(limit)})
