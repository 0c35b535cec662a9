"""The GS1 Digital Link resolver: a scanned QR code becomes a one-stop trace history.

`GET /01/{gtin}[/22/{cpv}][/10/{lot}][/21/{serial}]`, `/00/{sscc}`, `/414/{gln}`:
HTML for browsers, JSON for `Accept: application/json` or `?format=json`, and an
RFC 9264 linkset for `?linkType=all`.
"""

from __future__ import annotations

import json
from typing import Any

import aiohttp_jinja2
from aiohttp import web

from gateway import pages
from gateway.auth import audit, optional_access
from gateway.keys import HISTORY, LEDGER, NAMES, SETTINGS
from gateway.params import digital_link_key, public_base, raw_path_between
from gateway.problems import ProblemError, problem_for
from gateway.routes.scans import count_lookup
from traceledger.errors import NotFoundError, TraceledgerError
from traceledger.ledger import Ledger
from traceledger.lookup.names import Names
from traceledger.lookup.scans import Tally
from traceledger.lookup.wording import keys_in, senders_in
from traceledger.standards.gs1 import GS1Key

routes = web.RouteTableDef()

LINKSET_JSON = "application/linkset+json"
GS1_VOC = "https://gs1.org/voc/"


def wants_html(request: web.Request) -> bool:
    """HTML only when asked for by name and not out-ranked by JSON (browsers do this)."""
    fmt = request.query.get("format")
    if fmt in ("json", "html"):
        return fmt == "html"
    best: dict[str, float] = {}
    for part in request.headers.get("Accept", "").split(","):
        media, _, params = part.strip().partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    q = float(value)
                except ValueError:
                    q = 0.0
        best[media.strip().lower()] = max(q, best.get(media.strip().lower(), 0.0))
    html = best.get("text/html", 0.0)
    return html > 0 and html >= max(
        best.get("application/json", 0.0), best.get("application/ld+json", 0.0)
    )


def linkset(key: GS1Key, base: str, history: dict[str, Any] | None) -> dict[str, Any]:
    anchor = f"{base}/{key.canonical()}"
    links: dict[str, Any] = {
        "anchor": anchor,
        GS1_VOC + "defaultLink": [{"href": anchor, "title": "Trace history"}],
        GS1_VOC + "pip": [
            {
                "href": anchor + "?format=html",
                "type": "text/html",
                "hreflang": ["zh", "en"],
                "title": "Trace history page",
            }
        ],
        GS1_VOC + "traceability": [
            {"href": anchor + "?format=json", "type": "application/json", "title": "Trace history"}
        ],
        GS1_VOC + "qrCode": [
            {"href": f"{base}/qr/{key.canonical()}.png", "type": "image/png"},
            {"href": f"{base}/qr/{key.canonical()}.svg", "type": "image/svg+xml"},
        ],
    }
    if history is not None:
        links[GS1_VOC + "recallStatus"] = [
            {
                "href": anchor + "?format=json#status",
                "type": "application/json",
                "title": "recalled" if history["status"]["recalled"] else "not recalled",
            }
        ]
        if any(e["certifications"] for e in history["events"]):
            links[GS1_VOC + "certificationInfo"] = [
                {"href": anchor + "?format=json#events", "type": "application/json"}
            ]
    return {"linkset": [links]}


def proof_pins(ledger: Ledger) -> pages.ProofPins:
    """The keys the page's script checks answers with: this ledger's own configuration
    (every log's key, the witnesses'), never what an answer says about itself."""
    policy = ledger.settings.witness_policy
    return pages.ProofPins(
        (ledger.verifier.encode(), *(s.verifier.encode() for s in ledger.past)),
        tuple(policy.keys) if policy is not None else (),
        policy.quorum if policy is not None else 0,
    )


def with_scans(body: bytes, tally: Tally | None, names: Names | None = None) -> bytes:
    """The JSON answer with `scans` and `names` added (the cached bytes are not parsed
    again)."""
    added = b""
    if tally is not None:
        scans = {"count": tally.count, "first": tally.first.isoformat()}
        added += b',"scans":' + json.dumps(scans).encode()
    if names:
        added += b',"names":' + json.dumps(names, ensure_ascii=False).encode()
    return body[:-1] + added + b"}" if added else body


def _problem_page(request: web.Request, problem: ProblemError, lang: str) -> web.Response:
    context = pages.problem_context(problem.kind.status, problem.kind.title, problem.detail, lang)
    response = aiohttp_jinja2.render_template(
        "problem.html", request, context, status=problem.kind.status
    )
    response.headers["Content-Security-Policy"] = pages.CONTENT_SECURITY_POLICY
    return response


async def lookup(request: web.Request) -> web.StreamResponse:
    html = wants_html(request)
    lang = pages.pick_language(request.headers.get("Accept-Language"), request.query.get("lang"))
    try:
        access = await optional_access(request)
        key = digital_link_key(request)
        service = request.app[HISTORY]
        if request.query.get("linkType") == "all":
            try:
                found: dict[str, Any] | None = await service.history(key, all_logs=True)
            except NotFoundError:
                found = None
            links = linkset(key, public_base(request), found)
            return web.Response(text=json.dumps(links), content_type=LINKSET_JSON)
        found_now = await service.lookup(key, inspector=access is not None)
        await audit(request, 200)
        # Shoppers' look-ups only: an inspector's is no sign of a copied code.
        tally = None if access is not None else await count_lookup(request, key)
        answer = found_now.answer
        names = await request.app[NAMES].names(keys_in(answer), senders_in(answer))
    except (TraceledgerError, ProblemError) as exc:
        problem = exc if isinstance(exc, ProblemError) else problem_for(exc)
        await audit(request, problem.kind.status)
        if not html:
            raise problem from exc
        return _problem_page(request, problem, lang)
    if not html:
        return web.Response(
            body=with_scans(service.cache.body(found_now, request.path), tally, names),
            content_type="application/json",
            headers={"Vary": "Accept, Authorization"},
        )
    page_url = public_base(request) + raw_path_between(request)
    context = pages.history_context(
        found_now.with_input(request.path),
        lang,
        self_url=f"{page_url}?{request.query_string}" if request.query_string else page_url,
        json_url=page_url + "?format=json",
        inspector=access is not None,
        scans=tally,
        names=names,
        pins=proof_pins(request.app[LEDGER]),
        many_scans=request.app[SETTINGS].scan_warning_count,
    )
    response = aiohttp_jinja2.render_template("history.html", request, context)
    response.headers["Vary"] = "Accept, Accept-Language, Authorization"
    response.headers["Content-Security-Policy"] = pages.CONTENT_SECURITY_POLICY
    return response


@routes.get(pages.SCRIPT_PATH)
async def proof_script(request: web.Request) -> web.Response:
    """The page's proof checker; its URL names its content, so it is cached for good."""
    return web.Response(
        body=pages.SCRIPT_SOURCE,
        content_type="text/javascript",
        charset="utf-8",
        headers={"Cache-Control": "public, max-age=31536000, immutable"},
    )


for primary in ("01", "00", "414"):
    routes.get(f"/{primary}/{{rest:.+}}")(lookup)
