"""The EPCIS 2.0 REST binding, for standard EPCIS clients (GS1's epcis-rest-openapi.yaml).

`POST /capture` (202 and a job), `GET /capture[/{captureID}]`, `POST /events` (one event,
201), `GET /events[/{eventID}]`, and discovery on `/` (`GET`, `OPTIONS`). Callers prove
who they are with an enterprise's access token (`Authorization: Bearer`) or an RFC 9421
signature by the enterprise's registered key (gateway/http_signatures.py); either way
the ledger keeps the exact request in a custody envelope that says which
(traceledger/ingest/custody.py).

Capture is synchronous underneath: the document is checked and durably appended before
202 is answered, so a job is finished when the client first sees it (`running` is
always false) and is never lost. Problems with the events themselves (schema, meaning,
authorization, an ambiguous error declaration) make a refused job, as the binding
intends; a body that is not an EPCIS document at all is refused at once (400, 413, 415).
`GS1-Capture-Error-Behaviour: proceed` is refused (400): a document is captured whole
or not at all.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

from aiohttp import web

from gateway.auth import audited, require_access
from gateway.http_signatures import is_signed, verified_http_signature
from gateway.keys import CAPTURE, LEDGER, READ_POOL, SETTINGS
from gateway.params import parse_int, public_base, read_limited
from gateway.problems import (
    BAD_REQUEST,
    EVENT_EXISTS,
    FORBIDDEN,
    NOT_FOUND,
    UNSUPPORTED_MEDIA,
    ProblemError,
    problem_body,
    problem_for,
)
from traceledger.accounts import registry
from traceledger.accounts.tokens import AccessToken
from traceledger.errors import ForbiddenError, InvalidEventsError, MalformedError
from traceledger.ingest import jobs
from traceledger.ingest.capture import Captured
from traceledger.ingest.custody import HttpSignature, Submission
from traceledger.ingest.envelopes import JSON_TYPES, XML_TYPES, load_json
from traceledger.inspect.query import EventQuery, parse_query
from traceledger.inspect.query_sql import QueryService
from traceledger.standards.epcis import now_utc, utc_iso
from traceledger.standards.epcis_xml import EPCIS_CONTEXT

routes = web.RouteTableDef()

EPCIS_VERSION = "2.0.0"
CBV_VERSION = "2.0.0"
# Headers the binding's discovery answers carry: what this server speaks.
_VERSIONS = {
    "GS1-EPCIS-Version": EPCIS_VERSION,
    "GS1-EPCIS-Min": "1.2.0",
    "GS1-EPCIS-Max": EPCIS_VERSION,
    "GS1-CBV-Version": CBV_VERSION,
    "GS1-CBV-Min": "1.2.0",
    "GS1-CBV-Max": CBV_VERSION,
    # Identifiers and CBV values are kept as the sender wrote them.
    "GS1-EPC-Format": "Never_Translates",
    "GS1-CBV-XML-Format": "Never_Translates",
    "GS1-Extensions": "traceledger=https://traceledger.dev/voc/",
    "GS1-Vendor-Version": "traceledger-0.1.0",
}
_TOP_LEVEL = ["capture", "events"]
_DEFAULT_JOBS_PAGE = 30
_MAX_JOBS_PAGE = 1000


def _discovery(allow: str) -> dict[str, str]:
    return {"Allow": allow, **_VERSIONS}


def _discover(allow: str, **more: str) -> web.Response:
    return web.Response(status=204, headers={**_discovery(allow), **more})


@dataclass(frozen=True, slots=True)
class _Caller:
    """Who is asking: an enterprise (by token or signature), or an official's token."""

    enterprise: registry.Enterprise | None
    access: AccessToken | None = None
    signature: HttpSignature | None = None


@dataclass(frozen=True, slots=True)
class _Sender:
    """An enterprise sending or following its own submissions."""

    enterprise: registry.Enterprise
    access: AccessToken | None = None
    signature: HttpSignature | None = None


async def _caller(request: web.Request, body: bytes) -> _Caller:
    if is_signed(request):
        enterprise, signature = await verified_http_signature(request, body)
        return _Caller(enterprise, signature=signature)
    access = await require_access(request)
    if access.enterprise_id is None:
        return _Caller(None, access)
    async with request.app[LEDGER].pool.acquire() as conn:
        enterprise = await registry.get_enterprise(conn, access.enterprise_id)
    return _Caller(enterprise, access)


async def _sender(request: web.Request, body: bytes = b"") -> _Sender:
    caller = await _caller(request, body)
    if caller.enterprise is None:
        role = caller.access.role if caller.access is not None else "this"
        raise ProblemError(FORBIDDEN, f"a {role} token reads; only an enterprise's token captures")
    return _Sender(caller.enterprise, caller.access, caller.signature)


def _submission(request: web.Request, sender: _Sender, body: bytes) -> Submission:
    return Submission(
        enterprise=sender.enterprise,
        body=body,
        content_type=request.content_type,
        method=request.method,
        path=request.path,
        received_at=now_utc(),
        token_id=sender.access.id if sender.access is not None else None,
        http_signature=sender.signature,
    )


def _check_version(request: web.Request) -> None:
    version = request.headers.get("GS1-EPCIS-Version", "").strip()
    if version and not version.startswith(("1.", "2.")) and version != "2":
        raise ProblemError(
            BAD_REQUEST, f"GS1-EPCIS-Version {version[:20]!r}: this server speaks 1.x and 2.0"
        )


def _json(body: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.Response(
        status=status,
        text=json.dumps(body, ensure_ascii=False),
        content_type="application/json",
        headers={**_VERSIONS, **(headers or {})},
    )


# --------------------------------------------------------------------------- discovery


@routes.route("OPTIONS", "/")
async def discover_root(request: web.Request) -> web.Response:
    return _discover("OPTIONS, GET")


@routes.get("/")
async def top_level(request: web.Request) -> web.Response:
    return _json({"@context": EPCIS_CONTEXT, "type": "Collection", "member": _TOP_LEVEL})


@routes.route("OPTIONS", "/capture")
async def discover_capture(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    return _discover(
        "OPTIONS, POST, GET",
        **{
            "GS1-EPCIS-Capture-Limit": str(settings.max_batch_entries),
            "GS1-EPCIS-Capture-File-Size-Limit": str(settings.max_body_bytes),
            "GS1-Capture-Error-Behaviour": jobs.ERROR_BEHAVIOUR,
        },
    )


@routes.route("OPTIONS", "/capture/{captureID}")
async def discover_job(request: web.Request) -> web.Response:
    return _discover("OPTIONS, GET")


@routes.route("OPTIONS", "/events")
async def discover_events(request: web.Request) -> web.Response:
    return _discover("OPTIONS, GET, POST")


@routes.route("OPTIONS", "/events/{eventID:.+}")
async def discover_event(request: web.Request) -> web.Response:
    return _discover("OPTIONS, GET")


# ----------------------------------------------------------------------------- capture


def _error_behaviour(request: web.Request) -> None:
    asked = request.headers.get("GS1-Capture-Error-Behaviour", jobs.ERROR_BEHAVIOUR)
    if asked.strip().lower() != jobs.ERROR_BEHAVIOUR:
        raise ProblemError(
            BAD_REQUEST,
            f"GS1-Capture-Error-Behaviour {asked[:20]!r} is not supported: this ledger "
            "captures a document whole or not at all (rollback)",
            parameter="GS1-Capture-Error-Behaviour",
        )


@routes.post("/capture")
@audited
async def capture(request: web.Request) -> web.Response:
    body = await read_limited(request, request.app[SETTINGS].max_body_bytes)
    if request.content_type not in JSON_TYPES | XML_TYPES:
        raise ProblemError(
            UNSUPPORTED_MEDIA,
            f"Content-Type {request.content_type!r}: send an EPCIS document as "
            "application/ld+json, application/json or application/xml",
        )
    _error_behaviour(request)
    _check_version(request)
    sender = await _sender(request, body)
    submission = _submission(request, sender, body)
    record: dict[str, Any] = {}
    try:
        captured = await request.app[CAPTURE].capture_submission(submission)
        record = {"envelope_hash": captured.envelope_hash, "receipt": captured.receipt.body}
    except (InvalidEventsError, ForbiddenError) as exc:
        refused = problem_for(exc)
        record = {
            "errors": [
                problem_body(refused.kind, refused.detail, instance="/capture", extra=refused.extra)
            ]
        }
    async with request.app[LEDGER].pool.acquire() as conn:
        job = await jobs.record_job(
            conn,
            enterprise_id=sender.enterprise.id,
            token_id=submission.token_id,
            created_at=submission.received_at,
            **record,
        )
    location = f"/capture/{job.id}"
    return _json(job.to_json(), 202, {"Location": location})


@routes.get("/capture")
@audited
async def list_jobs(request: web.Request) -> web.Response:
    sender = await _sender(request)
    raw = request.query.get("perPage")
    per_page = _DEFAULT_JOBS_PAGE if raw is None else parse_int(raw, "perPage")
    if not 1 <= per_page <= _MAX_JOBS_PAGE:
        raise ProblemError(BAD_REQUEST, f"perPage must be 1 to {_MAX_JOBS_PAGE}")
    token = request.query.get("nextPageToken")
    before = None if token is None else parse_int(token, "nextPageToken")
    async with request.app[LEDGER].pool.acquire() as conn:
        found, following = await jobs.list_jobs(conn, sender.enterprise.id, per_page, before)
    headers = {}
    if following is not None:
        nxt = request.rel_url.update_query(nextPageToken=str(following))
        headers["Link"] = f'<{public_base(request)}{nxt}>; rel="next"'
    return _json([j.to_json() for j in found], headers=headers)


@routes.get("/capture/{captureID}")
@audited
async def get_job(request: web.Request) -> web.Response:
    sender = await _sender(request)
    async with request.app[LEDGER].pool.acquire() as conn:
        job = await jobs.get_job(conn, request.match_info["captureID"], sender.enterprise.id)
    return _json(job.to_json())


# ------------------------------------------------------------------------------ events


def _event_location(event_id: str) -> str:
    return "/events/" + quote(event_id, safe="")


def _one_event(body: bytes) -> tuple[dict[str, Any], dict[str, Any]]:
    """(the event, the one-event document to check): its @context moves to the document."""
    event = load_json(body, "body")
    if not isinstance(event, dict) or not isinstance(event.get("type"), str):
        raise MalformedError("POST /events takes one EPCIS event: a JSON object with a type")
    event = dict(event)
    context = event.pop("@context", None) or [EPCIS_CONTEXT]
    document = {
        "@context": context,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": utc_iso(now_utc()),
        "epcisBody": {"eventList": [event]},
    }
    return event, document


@routes.post("/events")
@audited
async def post_event(request: web.Request) -> web.Response:
    body = await read_limited(request, request.app[SETTINGS].max_body_bytes)
    if request.content_type not in JSON_TYPES:
        raise ProblemError(
            UNSUPPORTED_MEDIA, "POST /events takes one event as application/json or ld+json"
        )
    _check_version(request)
    sender = await _sender(request, body)
    event, document = _one_event(body)
    submission = _submission(request, sender, body)
    captured: Captured = await request.app[CAPTURE].capture_submission(submission, document)
    entry = json.loads(captured.receipt.body)["entries"][0]
    location = _event_location(entry["eventID"])
    if entry["status"] == "duplicate":
        raise ProblemError(
            EVENT_EXISTS,
            f"the log already holds this event at index {entry['index']}",
            {"Location": location},
            index=entry["index"],
        )
    shown = {**event, "eventID": entry["eventID"], "provenance": submission.provenance}
    if "eventIDVerified" in entry:
        shown["eventIDVerified"] = entry["eventIDVerified"]
    return _json(shown, 201, {"Location": location})


def _query_document(events: list[bytes]) -> bytes:
    """Events as the binding answers queries: an EPCISQueryDocument."""
    head = json.dumps(
        {
            "@context": [EPCIS_CONTEXT],
            "type": "EPCISQueryDocument",
            "schemaVersion": "2.0",
            "creationDate": utc_iso(now_utc()),
        }
    ).encode()
    results = (
        b'"epcisBody":{"queryResults":{"queryName":"SimpleEventQuery",'
        b'"resultsBody":{"eventList":[' + b",".join(events) + b"]}}}}"
    )
    return head[:-1] + b"," + results


async def _query(
    request: web.Request, query: EventQuery, *, annotate: bool = False
) -> tuple[list[bytes], str | None]:
    caller = await _caller(request, b"")
    service = QueryService(request.app[READ_POOL])
    viewer = await service.viewer(caller.enterprise.id if caller.enterprise else None)
    page = await service.events(query, viewer, annotate=annotate)
    return page.events, page.next_page_token


@routes.get("/events/{eventID:.+}")
@audited
async def get_event(request: web.Request) -> web.Response:
    event_id = request.match_info["eventID"]
    query = EventQuery(event_ids=(event_id,), per_page=100)
    events, _ = await _query(request, query, annotate=True)
    if not events:
        raise ProblemError(NOT_FOUND, f"no event {event_id[:120]!r} that you may read")
    return web.Response(
        body=_query_document(events), content_type="application/json", headers=_VERSIONS
    )


@routes.get("/events")
@audited
async def query_events(request: web.Request) -> web.Response:
    query = parse_query({name: request.query.getall(name) for name in request.query})
    events, token = await _query(request, query)
    headers = dict(_VERSIONS)
    if token is not None:
        following = request.rel_url.update_query(nextPageToken=token)
        headers["Link"] = f'<{public_base(request)}{following}>; rel="next"'
    return web.Response(
        body=_query_document(events), content_type="application/json", headers=headers
    )
