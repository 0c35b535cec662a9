"""RFC 9457 problem+json: one middleware maps every core error to a stable problem type."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from traceledger import errors

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class ProblemType:
    slug: str
    title: str
    status: int

    @property
    def uri(self) -> str:
        # Relative to the service, so each type dereferences to its own description.
        return f"/problems/{self.slug}"


BAD_REQUEST = ProblemType("bad-request", "The request is malformed", 400)
OUT_OF_RANGE = ProblemType("out-of-range", "A number in the request is outside the log", 400)
NOT_FOUND = ProblemType("not-found", "No such resource", 404)
METHOD_NOT_ALLOWED = ProblemType("method-not-allowed", "Method not allowed here", 405)
BUSY = ProblemType("busy", "The log is saturated; retry shortly", 503)
UNAVAILABLE = ProblemType("unavailable", "The database is unavailable", 503)
INTERNAL = ProblemType("internal", "Internal error", 500)

ALL_TYPES = {
    t.slug: t
    for t in (BAD_REQUEST, OUT_OF_RANGE, NOT_FOUND, METHOD_NOT_ALLOWED, BUSY, UNAVAILABLE, INTERNAL)
}


class ProblemError(Exception):
    """Raised by handlers for request errors that have no core error class."""

    def __init__(self, kind: ProblemType, detail: str, **extra: object) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.extra = extra


def problem_response(
    kind: ProblemType,
    detail: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, object] | None = None,
) -> web.Response:
    body: dict[str, object] = {
        "type": kind.uri,
        "title": kind.title,
        "status": kind.status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra or {})
    return web.Response(
        status=kind.status,
        text=json.dumps(body, ensure_ascii=False),
        content_type=PROBLEM_JSON,
        headers=headers,
    )


def _map(exc: errors.TraceledgerError) -> tuple[ProblemType, dict[str, str]]:
    if isinstance(exc, errors.BusyError):
        return BUSY, {"Retry-After": str(max(1, round(exc.retry_after)))}
    if isinstance(exc, errors.NotFoundError):
        return NOT_FOUND, {}
    if isinstance(exc, errors.RangeError):
        return OUT_OF_RANGE, {}
    if isinstance(exc, errors.StoreError):
        return UNAVAILABLE, {"Retry-After": "5"}
    return INTERNAL, {}


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ProblemError as exc:
        return problem_response(exc.kind, exc.detail, instance=request.path, extra=exc.extra)
    except errors.TraceledgerError as exc:
        kind, headers = _map(exc)
        if kind is INTERNAL:
            log.exception("unmapped core error on %s", request.path)
        return problem_response(kind, str(exc), instance=request.path, headers=headers)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        kind = {404: NOT_FOUND, 405: METHOD_NOT_ALLOWED}.get(
            exc.status, ProblemType("http-" + str(exc.status), exc.reason, exc.status)
        )
        return problem_response(
            kind,
            exc.text or exc.reason,
            instance=request.path,
            headers={k: v for k, v in exc.headers.items() if k == "Allow"},
        )
    except Exception:
        log.exception("unhandled error on %s", request.path)
        return problem_response(
            INTERNAL, "an internal error occurred; it has been logged", instance=request.path
        )


async def describe_problem(request: web.Request) -> web.Response:
    kind = ALL_TYPES.get(request.match_info["slug"])
    if kind is None:
        raise web.HTTPNotFound(text="no such problem type")
    return web.Response(text=f"{kind.title} (HTTP {kind.status}).\n", content_type="text/plain")
