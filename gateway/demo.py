"""Demo data so a new user sees a populated log at once.

Until signed EPCIS capture lands, the demo appends a small supply-chain story as plain
EPCIS 2.0 event documents straight into the log.
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime, timedelta

from aiohttp import web

from gateway.keys import LEDGER
from traceledger.sequencer import Entry

_STEPS = [
    ("commissioning", "active", "urn:epc:id:sgln:0614141.00001.0"),
    ("packing", "in_progress", "urn:epc:id:sgln:0614141.00001.0"),
    ("shipping", "in_transit", "urn:epc:id:sgln:0614141.00001.0"),
    ("arriving", "in_progress", "urn:epc:id:sgln:4012345.00005.0"),
    ("inspecting", "conformant", "urn:epc:id:sgln:4012345.00005.0"),
    ("receiving", "in_progress", "urn:epc:id:sgln:0012345.11111.0"),
    ("retail_selling", "retail_sold", "urn:epc:id:sgln:0012345.22222.0"),
]


def demo_entries(serials: int = 40) -> list[Entry]:
    start = datetime(2026, 9, 1, 8, 0, tzinfo=UTC)
    entries = []
    for serial in range(1, serials + 1):
        epc = f"urn:epc:id:sgtin:0614141.107346.{serial}"
        for step, (biz_step, disposition, location) in enumerate(_STEPS):
            event = {
                "type": "ObjectEvent",
                "eventTime": (start + timedelta(days=step, minutes=serial)).isoformat(),
                "eventTimeZoneOffset": "+00:00",
                "action": "ADD" if step == 0 else "OBSERVE",
                "epcList": [epc],
                "bizStep": biz_step,
                "disposition": disposition,
                "readPoint": {"id": location},
            }
            payload = json.dumps(event, sort_keys=True, separators=(",", ":")).encode()
            entries.append(Entry(hashlib.sha256(payload).digest(), payload))
    return entries


async def load_demo(app: web.Application) -> None:
    """Append the demo story once; later starts find it by identity and add nothing."""
    await app[LEDGER].sequencer.append(demo_entries())
