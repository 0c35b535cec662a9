"""Bearer tokens for inspectors and regulators: who is asking, and the audit trail."""

from __future__ import annotations

from aiohttp import web

from gateway.keys import LEDGER
from gateway.problems import UNAUTHORIZED, ProblemError
from traceledger.tokens import AccessToken, check_token, record_access

ACCESS = web.RequestKey("access", AccessToken)


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ProblemError(
            UNAUTHORIZED,
            "use 'Authorization: Bearer <token>'",
            headers={"WWW-Authenticate": 'Bearer realm="traceledger"'},
        )
    return token.strip()


async def optional_access(request: web.Request) -> AccessToken | None:
    """The caller's token if one was sent (a wrong one is refused, never ignored)."""
    token = _bearer(request)
    if token is None:
        return None
    async with request.app[LEDGER].pool.acquire() as conn:
        found = await check_token(conn, token)
    if found is None:
        raise ProblemError(
            UNAUTHORIZED,
            "the token is unknown or revoked",
            headers={"WWW-Authenticate": 'Bearer realm="traceledger"'},
        )
    request[ACCESS] = found
    return found


async def audit(request: web.Request, status: int) -> None:
    """Record an inspector's or regulator's query (no-op for the public)."""
    access = request.get(ACCESS)
    if access is None:
        return
    async with request.app[LEDGER].pool.acquire() as conn:
        await record_access(conn, access.id, request.method, request.path_qs, status)
