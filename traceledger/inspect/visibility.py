"""Who may read which events: the one rule every event query, export and subscription uses.

Inspectors and regulators see every event. An enterprise sees the events it signed and
the events naming goods under its own GS1 company prefixes; fields another enterprise
marked confidential are withheld from it.

TODO(issue 11): the trust package (traceledger/trust/) decides who may read what. Once it
is merged, an enterprise also sees events about goods the log shows it held (received, or
a shipment's destination) from the time it held them, recalls and verdicts on those goods
included. Switch `viewer_for` and `visible_sql` to that rule there; nothing else reads
events on an enterprise's behalf.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from traceledger.accounts.provenance import provenance
from traceledger.standards.gs1 import GS1Key

CONFIDENTIAL_FIELD = "traceledger:confidential"
# Never withheld, so a shown event stays a valid EPCIS event.
_ESSENTIAL = frozenset({"type", "eventTime", "eventTimeZoneOffset", "eventID", "action"})
# The "what" of an event: an enterprise sees events naming its goods in these roles of
# event_keys (not merely its locations or parties, which say where, not whose).
GOODS_ROLES = (
    "epc",
    "child",
    "input",
    "output",
    "parent",
    "class",
    "childClass",
    "inputClass",
    "outputClass",
    "lotMember",
)

# Where the GS1 company prefix sits in an index key: (Digital Link primary key AI, whether
# one indicator/extension digit comes first). Mirrors GS1Key.owned_by for every scheme.
_KEY_LAYOUT = (
    ("01", True),  # GTIN (and UPUI)
    ("8006", True),  # ITIP
    ("00", True),  # SSCC
    ("8003", True),  # GRAI
    ("414", False),  # GLN
    ("417", False),  # PGLN
    ("8004", False),  # GIAI
    ("8010", False),  # CPID
    ("8017", False),  # GSRN-P
    ("8018", False),  # GSRN
    ("253", False),  # GDTI
    ("255", False),  # GCN
    ("401", False),  # GINC
    ("402", False),  # GSIN
)


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who asks: `enterprise_id` None sees everything (inspectors, regulators)."""

    enterprise_id: int | None = None
    prefixes: tuple[str, ...] = ()

    def sees_everything(self) -> bool:
        return self.enterprise_id is None

    def owns(self, key: GS1Key) -> bool:
        return any(key.owned_by(p) for p in self.prefixes)


async def viewer_for(conn: Any, enterprise_id: int | None) -> Viewer:
    """The viewer for a token or a stored query: everything for officials (None), else the
    enterprise's scope as registered now."""
    if enterprise_id is None:
        return Viewer()
    rows = await conn.fetch(
        "SELECT prefix FROM enterprise_prefixes WHERE enterprise_id = $1 ORDER BY prefix",
        enterprise_id,
    )
    return Viewer(enterprise_id, tuple(r["prefix"] for r in rows))


def owned_key_patterns(prefixes: Iterable[str]) -> list[str]:
    """SQL LIKE patterns of the index keys under these company prefixes (digits only)."""
    out: list[str] = []
    for prefix in prefixes:
        if not (prefix.isascii() and prefix.isdigit()):
            raise ValueError(f"a company prefix is digits, got {prefix!r}")
        out += [f"{ai}/{'_' if indicator else ''}{prefix}%" for ai, indicator in _KEY_LAYOUT]
    return out


def visible_sql(viewer: Viewer, arg: Callable[[object], str]) -> str | None:
    """A WHERE condition on `events e` keeping what `viewer` may read (None: everything).

    `arg` binds a value and returns its placeholder, so only fixed SQL is written here.
    """
    if viewer.sees_everything():
        return None
    own = arg(viewer.enterprise_id)
    patterns = owned_key_patterns(viewer.prefixes)
    # Probed per event through event_keys_idx while the page fills. "OFFSET 0" keeps
    # PostgreSQL from turning the EXISTS into a hash of every matching key in the table,
    # which costs a full scan of event_keys on every page.
    goods = (
        "EXISTS (SELECT 1 FROM event_keys o WHERE o.idx = e.idx"  # noqa: S608 - placeholders only
        f" AND o.role = ANY({arg(list(GOODS_ROLES))}::text[])"
        f" AND o.key LIKE ANY({arg(patterns)}::text[]) OFFSET 0)"
        if patterns
        else "false"
    )
    return f"(e.enterprise_id = {own} OR {goods})"


def shown_event(
    payload: bytes, viewer: Viewer, signer: int | None
) -> tuple[bytes, dict[str, Any] | None]:
    """The event as this viewer may see it: fields its sender marked confidential are
    withheld from other enterprises. Returns the bytes, and the parsed event if changed."""
    if viewer.sees_everything() or signer == viewer.enterprise_id:
        return payload, None
    return shown_to_other_enterprises(payload)


def shown_to_other_enterprises(payload: bytes) -> tuple[bytes, dict[str, Any] | None]:
    """The event as any enterprise but its signer sees it; the parsed event if changed."""
    if CONFIDENTIAL_FIELD.encode() not in payload:
        return payload, None
    event = json.loads(payload)
    hidden = event.get(CONFIDENTIAL_FIELD) if isinstance(event, dict) else None
    if not isinstance(hidden, list):
        return payload, None
    names = {h for h in hidden if isinstance(h, str)} - _ESSENTIAL
    kept = {k: v for k, v in event.items() if k not in names}
    return json.dumps(kept, ensure_ascii=False, separators=(",", ":")).encode(), kept


def annotated(
    payload: bytes, verified: bool | None, submitted_with: str | None, *, always: bool = False
) -> bytes:
    """The event with what answers add to it: `eventIDVerified` (is an ni: eventID the
    event's own hash?) and `provenance` (signed by the enterprise, or a token).

    EPCIS query answers show events as captured, so there only what needs saying is
    added (`always` off): a hash eventID that is not the event's hash, and how an event
    that came without a DSSE envelope was sent.
    """
    extra: dict[str, object] = {}
    if verified is not None and (always or not verified):
        extra["eventIDVerified"] = verified
    if always or (submitted_with or "dsse") != "dsse":
        extra["provenance"] = provenance(submitted_with)
    if not extra:
        return payload
    tail = json.dumps(extra, ensure_ascii=False, separators=(",", ":")).encode()
    # A stored event is a non-empty JSON object: splice the members in before its "}".
    return payload.rstrip()[:-1] + b"," + tail[1:]
