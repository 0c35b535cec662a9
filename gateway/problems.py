"""RFC 9457 problem+json: one middleware maps every core error to a stable problem type."""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from aiohttp import web

from traceledger import errors
from traceledger.store.unavailable import database_unavailable

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
MALFORMED_BODY = ProblemType("malformed-body", "The body cannot be parsed", 400)
OUT_OF_RANGE = ProblemType("out-of-range", "A number in the request is outside the log", 400)
INVALID_IDENTIFIER = ProblemType("invalid-identifier", "A GS1 identifier is malformed", 400)
REGISTRY = ProblemType("registry", "The registry operation is not possible", 400)
UNKNOWN_ENTERPRISE = ProblemType("unknown-enterprise", "No enterprise has this id", 404)
INVALID_DELEGATION = ProblemType("invalid-delegation", "The delegation is not possible", 400)
UNAUTHORIZED = ProblemType("unauthorized", "Missing or wrong bearer token", 401)
BAD_SIGNATURE = ProblemType("bad-signature", "Not signed by a registered, active key", 401)
FORBIDDEN = ProblemType("forbidden", "The signer may not record these events", 403)
# A token that may not read what it asked for (an entry's body: see inspect/entry_access).
READ_FORBIDDEN = ProblemType("read-forbidden", "The token may not read this", 403)
NOT_FOUND = ProblemType("not-found", "No such resource", 404)
METHOD_NOT_ALLOWED = ProblemType("method-not-allowed", "Method not allowed here", 405)
REQUEST_TIMEOUT = ProblemType("request-timeout", "The body did not arrive in time", 408)
PAYLOAD_TOO_LARGE = ProblemType("payload-too-large", "The body is over the limit", 413)
UNSUPPORTED_MEDIA = ProblemType("unsupported-media-type", "Media type not accepted", 415)
# A lookup service asked to capture, or an ingest service asked for a lookup.
WRONG_ROLE = ProblemType("wrong-role", "This service's role does not serve this route", 421)
INVALID_EVENTS = ProblemType("invalid-events", "Events fail validation", 422)
AMBIGUOUS_EVENT_ID = ProblemType(
    "ambiguous-event-id", "The eventID names several events; say which by hash ID", 422
)
# POST /events with an event the log already holds (EPCIS ResourceAlreadyExistsException).
EVENT_EXISTS = ProblemType("event-exists", "The event is already in the log", 409)
INVALID_CATALOG = ProblemType("invalid-catalog", "The catalog document is not valid", 422)
QUERY_EXISTS = ProblemType("query-exists", "A named query with this name already exists", 409)
INVALID_SUBSCRIPTION = ProblemType("invalid-subscription", "The subscription is not valid", 400)
LIMIT_REACHED = ProblemType("limit-reached", "A limit on stored queries is reached", 409)
STALE_CATALOG = ProblemType(
    "stale-catalog-version", "A version at least as new is already recorded", 409
)
RATE_LIMITED = ProblemType("rate-limited", "Over the enterprise's event rate", 429)
BUSY = ProblemType("busy", "The log is saturated; retry shortly", 503)
UNAVAILABLE = ProblemType("unavailable", "The database is unavailable", 503)
NOT_READY = ProblemType("not-ready", "The service is not ready to serve", 503)
# The database's tree contradicts the published checkpoint (an old backup was restored).
FORK_REFUSED = ProblemType(
    "fork-refused", "The log is behind its published checkpoint; retry after recovery", 503
)
INTERNAL = ProblemType("internal", "Internal error", 500)
# The capture client relays another ledger's refusal.
UPSTREAM_REFUSED = ProblemType("upstream-refused", "Another ledger refused the request", 502)
# c2sp.org/tlog-witness refusals (the 409 body is fixed by the spec; see witness_app).
WITNESS_FORBIDDEN = ProblemType("witness-forbidden", "No trusted signature on the checkpoint", 403)
WITNESS_UNKNOWN_LOG = ProblemType("witness-unknown-log", "This witness does not watch the log", 404)
WITNESS_CONFLICT = ProblemType("witness-conflict", "Not the last cosigned tree size", 409)
WITNESS_BAD_PROOF = ProblemType("witness-bad-proof", "The consistency proof does not verify", 422)

ALL_TYPES = {
    t.slug: t
    for t in (
        BAD_REQUEST,
        MALFORMED_BODY,
        OUT_OF_RANGE,
        INVALID_IDENTIFIER,
        REGISTRY,
        UNKNOWN_ENTERPRISE,
        INVALID_DELEGATION,
        UNAUTHORIZED,
        BAD_SIGNATURE,
        FORBIDDEN,
        READ_FORBIDDEN,
        NOT_FOUND,
        METHOD_NOT_ALLOWED,
        REQUEST_TIMEOUT,
        PAYLOAD_TOO_LARGE,
        UNSUPPORTED_MEDIA,
        WRONG_ROLE,
        INVALID_EVENTS,
        AMBIGUOUS_EVENT_ID,
        EVENT_EXISTS,
        INVALID_CATALOG,
        STALE_CATALOG,
        QUERY_EXISTS,
        INVALID_SUBSCRIPTION,
        LIMIT_REACHED,
        RATE_LIMITED,
        BUSY,
        UNAVAILABLE,
        NOT_READY,
        FORK_REFUSED,
        INTERNAL,
        UPSTREAM_REFUSED,
        WITNESS_FORBIDDEN,
        WITNESS_UNKNOWN_LOG,
        WITNESS_CONFLICT,
        WITNESS_BAD_PROOF,
    )
}


class ProblemError(Exception):
    """Raised by handlers for request errors that have no core error class."""

    def __init__(
        self,
        kind: ProblemType,
        detail: str,
        headers: dict[str, str] | None = None,
        **extra: object,
    ) -> None:
        super().__init__(detail)
        self.kind = kind
        self.detail = detail
        self.headers = headers or {}
        self.extra = extra


def problem_body(
    kind: ProblemType,
    detail: str,
    *,
    instance: str | None = None,
    extra: dict[str, object] | None = None,
) -> dict[str, object]:
    """An RFC 9457 problem document (also what a refused capture job lists)."""
    body: dict[str, object] = {
        "type": kind.uri,
        "title": kind.title,
        "status": kind.status,
        "detail": detail,
    }
    if instance:
        body["instance"] = instance
    body.update(extra or {})
    return body


def problem_response(
    kind: ProblemType,
    detail: str,
    *,
    instance: str | None = None,
    headers: dict[str, str] | None = None,
    extra: dict[str, object] | None = None,
) -> web.Response:
    body = problem_body(kind, detail, instance=instance, extra=extra)
    return web.Response(
        status=kind.status,
        text=json.dumps(body, ensure_ascii=False),
        content_type=PROBLEM_JSON,
        headers=headers,
    )


def _retry_after(seconds: float) -> dict[str, str]:
    return {"Retry-After": str(max(1, round(seconds + 0.49)))}


# Every core error class and its problem type; an error takes its nearest class's entry.
# Those mapped to INTERNAL are the operator's problems (a broken configuration, store or
# log), never the caller's, and are logged as errors.
PROBLEM_OF: dict[type[errors.TraceledgerError], ProblemType] = {
    errors.TraceledgerError: INTERNAL,
    errors.ConfigError: INTERNAL,
    errors.StoreError: UNAVAILABLE,
    errors.MalformedError: MALFORMED_BODY,
    errors.UnsupportedMediaError: UNSUPPORTED_MEDIA,
    errors.SignatureError: BAD_SIGNATURE,
    errors.UnverifiedSignatureError: BAD_SIGNATURE,
    errors.ForbiddenError: FORBIDDEN,
    errors.InvalidEventsError: INVALID_EVENTS,
    errors.AmbiguousEventIDError: AMBIGUOUS_EVENT_ID,
    errors.RateLimitedError: RATE_LIMITED,
    errors.InvalidCatalogError: INVALID_CATALOG,
    errors.StaleCatalogError: STALE_CATALOG,
    errors.QueryParameterError: BAD_REQUEST,
    errors.CaptureRejectedError: UPSTREAM_REFUSED,
    errors.RegistryError: REGISTRY,
    errors.UnknownEnterpriseError: UNKNOWN_ENTERPRISE,
    errors.DelegationError: INVALID_DELEGATION,
    errors.IdentifierError: INVALID_IDENTIFIER,
    errors.ProofError: INTERNAL,
    errors.RangeError: OUT_OF_RANGE,
    errors.NotFoundError: NOT_FOUND,
    errors.RedactionError: BAD_REQUEST,
    errors.NoteError: BAD_REQUEST,
    errors.InconsistentLogError: INTERNAL,
    errors.ForkRefusedError: FORK_REFUSED,
    errors.LogBehindPublishedError: FORK_REFUSED,
    errors.DivergedFromPublishedError: FORK_REFUSED,
    errors.BackupError: INTERNAL,
    errors.IntegrityError: INTERNAL,
    errors.BusyError: BUSY,
    errors.WitnessError: BAD_REQUEST,
    errors.WitnessUnreachableError: UNAVAILABLE,
    errors.WitnessMalformedError: BAD_REQUEST,
    errors.WitnessForbiddenError: WITNESS_FORBIDDEN,
    errors.WitnessUnknownLogError: WITNESS_UNKNOWN_LOG,
    errors.WitnessConflictError: WITNESS_CONFLICT,
    errors.WitnessBadProofError: WITNESS_BAD_PROOF,
    errors.QueryExistsError: QUERY_EXISTS,
    errors.SubscriptionError: INVALID_SUBSCRIPTION,
    errors.LimitReachedError: LIMIT_REACHED,
    errors.WebhookUnreachableError: UNAVAILABLE,
}


def problem_for(exc: errors.TraceledgerError) -> ProblemError:
    """The problem for a core error: its type, headers and extension members."""
    kind = next(PROBLEM_OF[c] for c in type(exc).__mro__ if c in PROBLEM_OF)
    if kind is INTERNAL:
        log.error("core error answered 500: %r", exc)
    headers, extra = _details(exc)
    return ProblemError(kind, str(exc), headers, **extra)


def _details(exc: errors.TraceledgerError) -> tuple[dict[str, str], dict[str, object]]:
    """Headers and extension members an error carries beyond its message."""
    match exc:
        case errors.BusyError() | errors.RateLimitedError():
            return _retry_after(exc.retry_after), {}
        case errors.MalformedError() if exc.position:
            return {}, {"position": exc.position}
        case errors.UnverifiedSignatureError():
            return {}, {"keyId": exc.key_id, "position": exc.position}
        case errors.UnknownEnterpriseError():
            return {}, {"enterpriseId": exc.enterprise_id}
        case errors.DelegationError():
            return {}, {"parameter": exc.parameter}
        case errors.ForbiddenError() | errors.InvalidEventsError() | errors.InvalidCatalogError():
            return {}, {"errors": exc.errors}
        case errors.StaleCatalogError():
            return {}, {"currentVersion": exc.current}
        case errors.QueryParameterError() | errors.SubscriptionError():
            return {}, {"parameter": exc.parameter}
        case errors.WitnessConflictError():
            return {}, {"size": exc.size}
        case errors.ForkRefusedError():
            # Retriable: events sent again after the operator recovers the log are accepted.
            extra: dict[str, object] = {
                "publishedSize": exc.published_size,
                "treeSize": exc.tree_size,
            }
            return {"Retry-After": "60"}, extra
        case (
            errors.StoreError()
            | errors.WitnessUnreachableError()
            | errors.WebhookUnreachableError()
        ):
            return {"Retry-After": "5"}, {}
    return {}, {}


Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


@web.middleware
async def problem_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ProblemError as exc:
        problem = exc
    except errors.TraceledgerError as exc:
        problem = problem_for(exc)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        kind = {404: NOT_FOUND, 405: METHOD_NOT_ALLOWED, 413: PAYLOAD_TOO_LARGE}.get(
            exc.status, ProblemType(f"http-{exc.status}", exc.reason, exc.status)
        )
        allow = {k: v for k, v in exc.headers.items() if k == "Allow"}
        problem = ProblemError(kind, exc.text or exc.reason, allow)
    except Exception as exc:
        problem = _unexpected(request, exc)
    return problem_response(
        problem.kind,
        problem.detail,
        instance=request.path,
        headers=problem.headers,
        extra=problem.extra,
    )


def _unexpected(request: web.Request, exc: Exception) -> ProblemError:
    """A database that went away mid-request (a primary restarting, a failover, a dropped
    connection) is retriable and not our bug: 503. Anything else is a bug: 500, logged."""
    if database_unavailable(exc):
        log.warning(
            "database unavailable on %s %s: %s: %s",
            request.method,
            request.path,
            type(exc).__name__,
            exc,
        )
        return ProblemError(
            UNAVAILABLE, "the database is unavailable; try again shortly", {"Retry-After": "5"}
        )
    log.exception("unhandled error on %s %s", request.method, request.path)
    return ProblemError(INTERNAL, "an internal error occurred; it has been logged")


async def describe_problem(request: web.Request) -> web.Response:
    kind = ALL_TYPES.get(request.match_info["slug"])
    if kind is None:
        raise web.HTTPNotFound(text="no such problem type")
    return web.Response(text=f"{kind.title} (HTTP {kind.status}).\n", content_type="text/plain")
