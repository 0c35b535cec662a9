"""Who holds goods now, as the log tells: the "holders" of a forward trace and the
enterprises a recall notice goes to.

Custody is gained the way the trust rules say (traceledger/trust/rules.py): by a believed
receipt (the goods received and whatever was packed in them) or by being the destination
of a shipment by their holder (what that holder held). It is lost when the holder records
the goods leaving it (shipped on, sold, dispensed, decommissioned or destroyed), by a
claim the rules believe. Several enterprises may hold parts of one lot at once; a
serialized item or a container is in one place at a time. Claims the rules do not believe
(a competitor "receiving" nothing it was sent is still believed as its own account, but
destroying or packing goods it never held is not) move nothing.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime

from traceledger.accounts.parties import load_parties
from traceledger.lookup.walk import EventRow
from traceledger.standards.gs1 import parse_index_key
from traceledger.store.conn import Conn
from traceledger.trust import rules
from traceledger.trust.claims import Claim
from traceledger.trust.parties import Party
from traceledger.trust.roles import WHAT
from traceledger.trust.rules import Judge, Verdict

# Steps after which the goods are no longer with the one who recorded them.
LEAVING_STEPS = frozenset(
    {
        "shipping",
        "departing",
        "retail_selling",
        "destroying",
        "dispensing",
        "decommissioning",
        "loading",
        "void_shipping",
    }
)
LEAVING_DISPOSITIONS = frozenset({"destroyed", "retail_sold", "dispensed"})
# What the trust rules count as receiving; the roles in which an event names goods.
RECEIVING_STEPS = rules.RECEIVING_STEPS
ITEM_ROLES = WHAT
NOT_JUDGED = Verdict(False, rules.UNSIGNED, "not judged")


@dataclass(frozen=True, slots=True)
class Holding:
    """`enterprise_id` has held `key` since the event `received` gave it custody (its own
    receipt, or a shipment naming it the destination)."""

    enterprise_id: int
    key: str
    received: EventRow

    @property
    def since(self) -> datetime:
        return self.received.event_time


def claim_of(row: EventRow) -> Claim:
    """The claim an indexed event makes (events of the current log: ids are indexes)."""
    return row.claim(row.idx, row.enterprise_id, row.corrects)


def _leaves(row: EventRow) -> bool:
    return row.biz_step in LEAVING_STEPS or row.disposition in LEAVING_DISPOSITIONS


def _one_thing(key: str) -> bool:
    """A serialized item or a container is in one place at a time; a lot or a class may
    be spread over many holders."""
    parsed = parse_index_key(key)
    return parsed is None or parsed.level == "instance"


@dataclass(slots=True)
class Custody:
    """Claims judged in time order (trust rules), and who holds what after them."""

    verdicts: dict[Hashable, Verdict] = field(default_factory=dict)
    held: dict[str, dict[int, EventRow]] = field(default_factory=dict)  # key -> party -> event

    @classmethod
    def of(cls, events: Iterable[EventRow], parties: Mapping[int, Party]) -> Custody:
        rows = sorted(events, key=lambda r: (r.event_time, r.idx))
        # An error declaration and the event it retracts move nothing (the index links a
        # declaration only to its own signer's events, or an authority's to anyone's: the
        # trust rule for corrections); a corrective event, captured as any other, speaks.
        erroneous = {r.corrects for r in rows if r.corrects is not None}
        judge = Judge(parties)
        custody = cls(judge.verdicts)
        for row in rows:
            verdict = judge.judge(claim_of(row))
            if verdict.believed and not row.declaration and row.idx not in erroneous:
                custody._record(row, judge, verdict.refused)
        return custody

    def verdict(self, idx: int) -> Verdict:
        return self.verdicts.get(idx, NOT_JUDGED)

    def believed(self, idx: int) -> bool:
        return self.verdict(idx).believed

    def about(self, idx: int, key: str) -> bool:
        """Whether the claim is believed about the goods `key` (a custody claim is believed
        about the goods its signer held only)."""
        return self.verdict(idx).about(key)

    def _record(self, row: EventRow, judge: Judge, refused: frozenset[str]) -> None:
        if _leaves(row) and row.enterprise_id is not None:
            goods = [k for k, role in row.keys if role in WHAT and k not in refused]
            for key in judge.custody.within(goods):
                holders = self.held.get(key, {})
                if _one_thing(key):
                    holders.clear()
                else:
                    holders.pop(row.enterprise_id, None)
        for party, keys in judge.moved.items():
            for key in keys:
                if _one_thing(key):
                    self.held[key] = {party: row}
                else:
                    self.held.setdefault(key, {}).setdefault(party, row)

    def holdings(self, keys: set[str]) -> list[Holding]:
        """Who holds which of `keys`, oldest holding first."""
        found = [
            Holding(party, key, row)
            for key, holders in self.held.items()
            if key in keys
            for party, row in holders.items()
        ]
        return sorted(found, key=lambda h: (h.since, h.key, h.enterprise_id))


def holdings(
    events: Iterable[EventRow], keys: set[str], parties: Mapping[int, Party]
) -> list[Holding]:
    """Who holds which of `keys`, from the events naming them (any order)."""
    return Custody.of(events, parties).holdings(keys)


async def parties_for(conn: Conn, events: Iterable[EventRow]) -> dict[int, Party]:
    """The parties custody is judged for: every signer, and every registered enterprise a
    shipment names as its destination (it holds what it was sent before it says so)."""
    rows = list(events)
    ids = {r.enterprise_id for r in rows if r.enterprise_id is not None}
    candidates: set[str] = set()
    for row in rows:
        for key, role in row.keys:
            parsed = parse_index_key(key) if role == "destination" else None
            if parsed is not None:
                # A company prefix starts at the key's first or second digit (indicator).
                digits = parsed.key
                candidates |= {digits[s:e] for s in (0, 1) for e in range(s + 4, s + 13)}
    if candidates:
        found = await conn.fetch(
            "SELECT DISTINCT enterprise_id FROM enterprise_prefixes WHERE prefix = ANY($1::text[])",
            sorted(candidates),
        )
        ids |= {r["enterprise_id"] for r in found}
    return await load_parties(conn, ids)


def custody_gained(
    events: Iterable[EventRow], parties: Mapping[int, Party], party: int
) -> tuple[dict[str, int], dict[str, int]]:
    """From which log index on `party` held each key by the trust rules (its own
    receipts, shipments by a holder naming it the destination), with whatever was packed
    in it; and the lots of what it held, from the same indexes (a recall of a lot is
    about its serials). Log order, not event time: a receipt's eventTime is its signer's
    word, and a backdated one must not open what was logged before it."""
    judge = Judge(parties)
    held: dict[str, int] = {}
    for row in sorted(events, key=lambda r: (r.event_time, r.idx)):
        judge.judge(claim_of(row))
        for key in judge.moved.get(party, ()):
            _earliest(held, key, row.idx)
    custody = judge.custody
    lots: dict[str, int] = {}
    for key, since in list(held.items()):
        for inside in custody.within([key]):
            _earliest(held, inside, since)
            for lot in (custody.lot_of.get(inside), _lot_key(inside)):
                if lot is not None:
                    _earliest(lots, lot, since)
    return held, lots


def _earliest(found: dict[str, int], key: str, since: int) -> None:
    if key not in found or found[key] > since:
        found[key] = since


def _lot_key(key: str) -> str | None:
    parsed = parse_index_key(key)
    lot = parsed.lot_key() if parsed is not None else None
    return lot.canonical() if lot is not None else None
