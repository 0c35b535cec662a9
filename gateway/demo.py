"""`traceledger demo`: load the multi-party import scenario, then say what to try.

The scenario (traceledger.scenario) goes through the real signed capture path. Its
times are anchored to when the demo parties were first registered, so every later start
rebuilds byte-identical signed documents and the ledger answers them as replays: the
story is loaded once, whatever the number of restarts.

Every party registers a recall endpoint served by the demo process itself
(`POST /demo/recall-inbox/{enterprise id}`), so the first start shows the recall notices
arriving: each is checked (its GS1-Signature and the recall's inclusion proof) and
printed, as a retailer's own system would receive it.
"""

from __future__ import annotations

import importlib
import json
import logging
from typing import Any

from aiohttp import web

from gateway.keys import CAPTURE, LEDGER, SETTINGS
from traceledger.audit.pushed import verify_pushed
from traceledger.demo import scenario
from traceledger.errors import IntegrityError
from traceledger.inspect.recall_notices import set_endpoint
from traceledger.inspect.webhooks import SIGNATURE_HEADER, signature_valid
from traceledger.standards.epcis import now_utc

log = logging.getLogger(__name__)

# Where the demo is served (e.g. "http://127.0.0.1:8080"), set by the CLI; a configured
# public URL wins.
DEMO_BASE = web.AppKey("demo_base", str)
DEFAULT_BASE = "http://127.0.0.1:8080"
# Where this process can reach itself (plain http to this machine), for the recall inbox;
# unset when the demo listens only on an address other than this machine's loopback.
DEMO_INBOX = web.AppKey("demo_inbox", str)
INBOX = "/demo/recall-inbox/{enterprise}"


def base_url(app: web.Application) -> str:
    configured = app[SETTINGS].public_url
    return (configured or app.get(DEMO_BASE) or DEFAULT_BASE).rstrip("/")


def _terminal_qr(data: str) -> str | None:
    """A QR code as terminal text, when the QR module is installed; None otherwise."""
    try:
        qr = importlib.import_module("traceledger.standards.qr")
    except ImportError:
        return None
    render = getattr(qr, "terminal", None)
    if render is None:
        return None
    try:
        text = render(data)
    except Exception:  # a decoration: the demo runs without it
        log.warning("could not draw the QR code", exc_info=True)
        return None
    return text if isinstance(text, str) else None


def banner(story: scenario.Scenario, base: str) -> str:
    width = max(len(label) for label, _ in story.highlights)
    lines = [
        f"demo: {len(story.steps)} signed EPCIS documents from {len(story.parties)} parties "
        "(New Zealand milk powder imported through Shanghai)"
    ]
    lines += [f"  {p.name}  [{p.role}, GS1 prefix {', '.join(p.prefixes)}]" for p in story.parties]
    lines.append("  try (a browser shows the page; add ?format=json for the verifiable history):")
    lines += [f"    {label:<{width}}  {base}/{path}" for label, path in story.highlights]
    lines.append(
        "  recall notices: every party's recall endpoint is this process's "
        "/demo/recall-inbox/<id>; each notice is checked and printed here as it arrives, "
        f"and inspectors see who was told at {base}/v1/recalls/<index>/notices"
    )
    lines.append(
        "  demo keys derive from a public seed: anyone can sign as these parties, "
        "so keep demo data out of a real ledger"
    )
    return "\n".join(lines)


async def _register_inboxes(app: web.Application) -> None:
    """Every party's recall notices go to this process's inbox."""
    inbox = app.get(DEMO_INBOX)
    if inbox is None:
        return
    async with app[LEDGER].pool.acquire() as conn:
        for row in await conn.fetch("SELECT id FROM enterprises WHERE role = 'enterprise'"):
            url = inbox.rstrip("/") + INBOX.format(enterprise=row["id"])
            await set_endpoint(conn, row["id"], url, None)


async def recall_inbox(request: web.Request) -> web.Response:
    """A demo party's recall endpoint: check the notice, print it, answer 200."""
    body = await request.read()
    ledger = request.app[LEDGER]
    async with ledger.pool.acquire() as conn:
        secret = await conn.fetchval(
            "SELECT secret FROM recall_endpoints WHERE enterprise_id = $1",
            int(request.match_info["enterprise"]),
        )
    signed = secret is not None and signature_valid(
        secret, body, request.headers.get(SIGNATURE_HEADER)
    )
    if not signed:
        raise web.HTTPUnauthorized(text="the GS1-Signature does not verify")
    notice = json.loads(body)
    print(describe_notice(notice, proven=_proven(notice, request)), flush=True)
    return web.Response(text="received")


def _proven(notice: dict[str, Any], request: web.Request) -> str:
    try:
        report = verify_pushed(
            notice["traceledger:log"], [notice["recall"]["event"]], request.app[LEDGER].verifier
        )
    except (IntegrityError, KeyError, TypeError) as exc:
        return f"NOT proven: {exc}"
    return f"proven in the log (checkpoint of size {report.checkpoint.size})"


def describe_notice(notice: dict[str, Any], proven: str) -> str:
    recall = notice["recall"]
    what = "recall" if recall["kind"] == "recalled" else "non-conformant verdict"
    lines = [
        f"recall notice for {notice['holder']['name']}: {what} by {recall['recordedBy']}",
        f"    log index {recall['index']}; signature verified; {proven}",
        *(
            f"    you hold {a['digitalLink'] or a['key']} since {a['heldSince']}"
            for a in notice["affected"]
        ),
        f"    acknowledge: POST {notice['acknowledge']['url']} with the notice's ackToken",
    ]
    return "\n".join(lines)


def demo_inbox(host: str, port: int) -> str | None:
    """The URL this process reaches itself at for the recall inbox, if it listens on this
    machine's loopback (every address, or loopback itself)."""
    if host in ("", "0.0.0.0", "::", "127.0.0.1", "localhost", "::1"):  # noqa: S104 - a check
        return f"http://127.0.0.1:{port}" if host != "::1" else f"http://[::1]:{port}"
    return None


def setup_demo(app: web.Application, base: str, inbox: str | None) -> None:
    """What `traceledger demo` adds to the service: the story at start, the inbox."""
    app[DEMO_BASE] = base
    if inbox is not None:
        app[DEMO_INBOX] = inbox
        app.router.add_post(INBOX, recall_inbox)
    app.on_startup.append(load_demo)


async def load_demo(app: web.Application) -> None:
    """on_startup hook: register the parties and their recall inboxes, capture the story,
    print the banner."""
    pool = app[LEDGER].pool
    await scenario.register(scenario.PARTIES, pool)
    await _register_inboxes(app)
    anchor = await scenario.registered_at(pool, scenario.PARTIES[0].name)
    story = scenario.build(anchor or now_utc())
    await scenario.load(story, pool, app[CAPTURE])
    base = base_url(app)
    print(banner(story, base))
    label, path = story.highlights[0]
    qr = _terminal_qr(f"{base}/{path}")
    if qr is not None:
        print(f"  scan the {label}:\n{qr}")
