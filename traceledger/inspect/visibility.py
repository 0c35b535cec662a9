"""Who may read which events: the one rule every event query, export and subscription uses.

Inspectors and regulators see every event. An enterprise sees the events it signed, the
events naming goods under its own GS1 company prefixes, and the events naming goods the
log shows it held (custody as the trust rules give it: its own receipts, shipments by a
holder naming it the destination, with whatever was packed in them) logged since it
held them (log order: a receipt's eventTime is its signer's word, and a backdated
receipt must not open what was logged before it); and, from then on, the recalls and
verdicts on the lots of those goods. Fields another enterprise marked confidential are
withheld from it. Nothing else reads events on an enterprise's behalf.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from traceledger.accounts.provenance import provenance
from traceledger.inspect.holding import custody_gained, parties_for
from traceledger.lookup.walk import EventRow, events_naming
from traceledger.standards.epcis import CONFIDENTIAL_FIELD, NAMING_FIELDS
from traceledger.standards.gs1 import GS1Key
from traceledger.trust.rules import RECEIVING_STEPS, SHIPPING_STEPS, VERDICT_DISPOSITIONS

# Never withheld, so a shown event stays a valid EPCIS event.
_ESSENTIAL = NAMING_FIELDS | {"eventTimeZoneOffset"}
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


# Bounds on learning what an enterprise held (one viewer is built per query or delivery).
MAX_HELD = 10_000  # keys; beyond them, the oldest custody is what is seen
CONTAINER_DEPTH = 4  # pallets of cases of cartons of items
_DESTINATION_AIS = ("414", "417")  # a shipment's destination: a location or a party


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who asks: `enterprise_id` None sees everything (inspectors, regulators). `held`:
    goods the log shows it held, and since when; `lots`: the lots of those goods, whose
    recalls and verdicts it sees from the same time."""

    enterprise_id: int | None = None
    prefixes: tuple[str, ...] = ()
    held: tuple[tuple[str, int], ...] = ()  # (key, log index from which it is seen)
    lots: tuple[tuple[str, int], ...] = ()

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
    prefixes = tuple(r["prefix"] for r in rows)
    held, lots = await _held(conn, enterprise_id, prefixes)
    return Viewer(enterprise_id, prefixes, tuple(sorted(held.items())), tuple(sorted(lots.items())))


async def _held(
    conn: Any, enterprise_id: int, prefixes: tuple[str, ...]
) -> tuple[dict[str, int], dict[str, int]]:
    """What the log shows the enterprise held, judged by the trust rules over the events
    naming those goods and what was packed in them."""
    lows = [f"{ai}/{p}" for ai in _DESTINATION_AIS for p in prefixes if p.isdigit()]
    seeds = await conn.fetch(
        _CUSTODY_SEEDS,
        enterprise_id,
        list(RECEIVING_STEPS),
        list(SHIPPING_STEPS),
        lows,
        [low[:-1] + chr(ord(low[-1]) + 1) for low in lows],  # just above every key from `low`
        list(GOODS_ROLES),
        MAX_HELD,
    )
    frontier = {r["key"] for r in seeds}
    rows: dict[int, EventRow] = {}
    seen: set[str] = set()
    for _ in range(CONTAINER_DEPTH):
        if not frontier or len(seen) >= MAX_HELD:
            break
        seen |= frontier
        found = await events_naming(conn, sorted(frontier), limit=MAX_HELD)
        rows.update((r.idx, r) for r in found)
        frontier = {k for r in found for k in _packed_in(r, seen)} - seen
    if not rows:
        return {}, {}
    return custody_gained(rows.values(), await parties_for(conn, rows.values()), enterprise_id)


# The goods of the enterprise's own receipts and of shipments naming it the destination
# (through the primary key's key range, so no scan of every shipment).
_CUSTODY_SEEDS = """
    SELECT k.key FROM events e JOIN event_keys k ON k.idx = e.idx
    WHERE e.enterprise_id = $1 AND e.biz_step = ANY($2::text[]) AND k.role = ANY($6::text[])
    UNION
    SELECT k.key FROM unnest($4::text[], $5::text[]) r(low, high)
    JOIN event_keys d ON d.key >= r.low AND d.key < r.high AND d.role = 'destination'
    JOIN events e ON e.idx = d.idx AND e.biz_step = ANY($3::text[])
    JOIN event_keys k ON k.idx = d.idx AND k.role = ANY($6::text[])
    LIMIT $7
"""


def _packed_in(row: EventRow, containers: set[str]) -> list[str]:
    """What this event packs into any of `containers`."""
    if row.event_type != "AggregationEvent" or not any(
        role == "parent" and k in containers for k, role in row.keys
    ):
        return []
    return [k for k, role in row.keys if role in ("child", "childClass")]


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
    held = " OR ".join(
        _since_sql(viewer.held, None, arg)
        + _since_sql(viewer.lots, (VERDICT_DISPOSITIONS, "inspecting"), arg)
    )
    return f"(e.enterprise_id = {own} OR {goods}{' OR ' + held if held else ''})"


def _since_sql(
    keys: tuple[tuple[str, int], ...],
    only: tuple[frozenset[str], str] | None,
    arg: Callable[[object], str],
) -> list[str]:
    """Events naming any of `keys` as goods logged from when each was held (with `only`:
    just the recalls and verdicts among them). Probed per event, as above."""
    if not keys:
        return []
    names, times = arg([k for k, _ in keys]), arg([t for _, t in keys])
    which = ""
    if only is not None:
        which = (
            f" AND (e.disposition = ANY({arg(sorted(only[0]))}::text[])"
            f" OR e.biz_step = {arg(only[1])})"
        )
    return [
        "EXISTS (SELECT 1 FROM event_keys h WHERE h.idx = e.idx"  # noqa: S608 - placeholders only
        f" AND h.role = ANY({arg(list(GOODS_ROLES))}::text[]) AND h.key = ANY({names}::text[])"
        f" AND e.idx >= ({times}::bigint[])[array_position({names}::text[], h.key)]"
        f"{which} OFFSET 0)"
    ]


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
