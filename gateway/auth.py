"""Bearer tokens: who is asking (inspector, regulator or enterprise), and the audit trail."""

from __future__ import annotations

import functools
from collections.abc import Awaitable, Callable

from aiohttp import web

from gateway.keys import LEDGER
from gateway.problems import FORBIDDEN, UNAUTHORIZED, ProblemError, problem_for
from traceledger.accounts.tokens import AccessToken, check_token, record_access
from traceledger.errors import TraceledgerError

ACCESS = web.RequestKey("access", AccessToken)
# What answers to token holders carry: private to the token, never stored by caches.
PRIVATE = {"Vary": "Authorization", "Cache-Control": "no-store"}
CHALLENGE = {"WWW-Authenticate": 'Bearer realm="traceledger"'}


def _bearer(request: web.Request) -> str | None:
    header = request.headers.get("Authorization")
    if header is None:
        return None
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise ProblemError(UNAUTHORIZED, "use 'Authorization: Bearer <token>'", headers=CHALLENGE)
    return token.strip()


async def optional_access(request: web.Request, *, enterprise: bool = False) -> AccessToken | None:
    """The caller's token if one was sent (a wrong one is refused, never ignored).

    Enterprise tokens open only the routes that say so (`enterprise=True`): everywhere
    else a token means "inspector or regulator", so an enterprise token is refused (403)
    rather than being taken for an official's.
    """
    token = _bearer(request)
    if token is None:
        return None
    async with request.app[LEDGER].pool.acquire() as conn:
        found = await check_token(conn, token)
    if found is None:
        raise ProblemError(UNAUTHORIZED, "the token is unknown or revoked", headers=CHALLENGE)
    request[ACCESS] = found
    if not enterprise and not found.is_authority:
        raise ProblemError(FORBIDDEN, f"a {found.role} token may not be used here")
    return found


async def require_access(request: web.Request) -> AccessToken:
    """Any valid token (inspector, regulator or enterprise), else a 401 problem."""
    found = await optional_access(request, enterprise=True)
    if found is None:
        raise ProblemError(
            UNAUTHORIZED,
            "this resource needs 'Authorization: Bearer <token>'",
            headers=CHALLENGE,
        )
    return found


async def audit(request: web.Request, status: int) -> None:
    """Record a token holder's query (no-op for the public)."""
    access = request.get(ACCESS)
    if access is None:
        return
    async with request.app[LEDGER].pool.acquire() as conn:
        await record_access(conn, access.id, request.method, request.path_qs, status)


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


async def _audit_outcome(
    request: web.Request, pending: Awaitable[web.StreamResponse]
) -> web.StreamResponse:
    """Await a response and record its outcome (refusals too) in the audit trail."""
    try:
        response = await pending
    except ProblemError as exc:
        await audit(request, exc.kind.status)
        raise
    except TraceledgerError as exc:
        problem = problem_for(exc)
        await audit(request, problem.kind.status)
        raise problem from exc
    await audit(request, response.status)
    return response


async def with_access(
    request: web.Request, work: Callable[[AccessToken], Awaitable[web.StreamResponse]]
) -> web.StreamResponse:
    """Run `work` for the caller's token (any role: 401 without one), audited."""
    access = await require_access(request)
    return await _audit_outcome(request, work(access))


async def _require_official(request: web.Request) -> None:
    if await optional_access(request) is None:
        raise ProblemError(
            UNAUTHORIZED, "an inspector or regulator token is required", headers=CHALLENGE
        )


def audited(handler: Handler) -> Handler:
    """Record the outcome of a token holder's request in the audit trail, refusals too
    (no-op for requests without a token)."""

    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        return await _audit_outcome(request, handler(request))

    return wrapped


def official(handler: Handler) -> Handler:
    """Inspectors and regulators only (401 without a token, 403 for an enterprise's);
    the query and its outcome go to the audit trail."""

    @audited
    @functools.wraps(handler)
    async def wrapped(request: web.Request) -> web.StreamResponse:
        await _require_official(request)
        return await handler(request)

    return wrapped
