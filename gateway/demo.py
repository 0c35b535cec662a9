"""`traceledger demo`: load the multi-party import scenario, then say what to try.

The scenario (traceledger.scenario) goes through the real signed capture path. Its
times are anchored to when the demo parties were first registered, so every later start
rebuilds byte-identical signed documents and the ledger answers them as replays: the
story is loaded once, whatever the number of restarts.
"""

from __future__ import annotations

import importlib
import logging

from aiohttp import web

from gateway.keys import CAPTURE, LEDGER, SETTINGS
from traceledger.demo import scenario
from traceledger.standards.epcis import now_utc

log = logging.getLogger(__name__)

# Where the demo is served (e.g. "http://127.0.0.1:8080"), set by the CLI; a configured
# public URL wins.
DEMO_BASE = web.AppKey("demo_base", str)
DEFAULT_BASE = "http://127.0.0.1:8080"


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
        "  demo keys derive from a public seed: anyone can sign as these parties, "
        "so keep demo data out of a real ledger"
    )
    return "\n".join(lines)


async def load_demo(app: web.Application) -> None:
    """on_startup hook: register the parties, capture the story, print the banner."""
    pool = app[LEDGER].pool
    await scenario.register(scenario.PARTIES, pool)
    anchor = await scenario.registered_at(pool, scenario.PARTIES[0].name)
    story = scenario.build(anchor or now_utc())
    await scenario.load(story, pool, app[CAPTURE])
    base = base_url(app)
    print(banner(story, base))
    label, path = story.highlights[0]
    qr = _terminal_qr(f"{base}/{path}")
    if qr is not None:
        print(f"  scan the {label}:\n{qr}")
