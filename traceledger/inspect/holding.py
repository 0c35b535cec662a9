"""Who holds goods now, as the recorded events tell: the "holders" of a forward trace and
the enterprises a recall notice goes to.

An enterprise holds an identifier once it records receiving it (or an arrival, an
acceptance, storing it...) and until it records shipping it on, selling, dispensing,
decommissioning or destroying it. Several enterprises may hold parts of one lot at once.

TODO(issue 11): custody "by the log" is decided by the trust package
(traceledger/trust/). Once it is merged, `holdings` asks it instead; the forward trace and
recall notices call nothing else to learn who holds what.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from traceledger.lookup.history import EventRow
from traceledger.standards.gs1 import parse_index_key

# Steps after which the goods are no longer where they were received.
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
RECEIVING_STEPS = frozenset(
    {"receiving", "arriving", "accepting", "storing", "stocking", "unloading"}
)
# Roles in which an event is about the goods themselves (not a place or a party).
ITEM_ROLES = frozenset(
    {
        "epc",
        "class",
        "parent",
        "child",
        "childClass",
        "input",
        "inputClass",
        "output",
        "outputClass",
    }
)


@dataclass(frozen=True, slots=True)
class Holding:
    """`enterprise_id` has held `key` since the receiving event `received`."""

    enterprise_id: int
    key: str
    received: EventRow

    @property
    def since(self) -> datetime:
        return self.received.event_time


def _leaves(row: EventRow) -> bool:
    return row.biz_step in LEAVING_STEPS or row.disposition in LEAVING_DISPOSITIONS


def _one_thing(key: str) -> bool:
    """A serialized item or a container is in one place at a time; a lot or a class may
    be spread over many holders."""
    parsed = parse_index_key(key)
    return parsed is None or parsed.level == "instance"


class _Custody:
    """The holders of each key and what each container holds, event by event."""

    def __init__(self) -> None:
        self.held: dict[str, dict[int, EventRow]] = {}  # key -> enterprise -> receipt
        self.packed: dict[str, set[str]] = {}  # container -> keys packed in it

    def inside(self, keys: list[str]) -> set[str]:
        """The keys and everything packed in them, however deep."""
        found, todo = set(), list(keys)
        while todo:
            key = todo.pop()
            if key not in found:
                found.add(key)
                todo += self.packed.get(key, ())
        return found

    def record(self, row: EventRow, goods: list[str], enterprise: int) -> None:
        if row.event_type == "AggregationEvent" and row.action in ("ADD", "DELETE"):
            for parent in (k for k, r in row.keys if r == "parent"):
                children = {k for k, r in row.keys if r in ("child", "childClass")}
                inside = self.packed.setdefault(parent, set())
                inside |= children if row.action == "ADD" else set()
                inside -= children if row.action == "DELETE" else set()
        if _leaves(row):
            for key in self.inside(goods):
                holders = self.held.get(key, {})
                if _one_thing(key):
                    holders.clear()
                else:
                    holders.pop(enterprise, None)
        elif row.biz_step in RECEIVING_STEPS:
            for key in goods:
                if _one_thing(key):
                    self.held[key] = {enterprise: row}
                else:
                    self.held.setdefault(key, {}).setdefault(enterprise, row)


def holdings(events: Iterable[EventRow], keys: set[str]) -> list[Holding]:
    """Who holds which of `keys`, from the events naming them (any order), oldest holding
    first. Only receiving and leaving events move custody: a recall, an inspection or a
    hold says nothing about where goods are. A serialized item or container has one
    holder, its last receiver until anyone records it leaving (shipped, sold, destroyed);
    a lot may have many, each until it records the lot leaving itself. Shipping a
    container ships what was packed in it. Events without a registered signer say
    nothing about custody."""
    rows = sorted(events, key=lambda r: (r.event_time, r.idx))
    # An error declaration and the event it declares wrong say nothing; a corrective
    # event, captured as any other, speaks for them.
    erroneous = {r.corrects for r in rows if r.corrects is not None}
    custody = _Custody()
    for row in rows:
        if row.enterprise_id is None or row.corrects is not None or row.idx in erroneous:
            continue
        goods = [k for k, role in row.keys if role in ITEM_ROLES]
        custody.record(row, goods, row.enterprise_id)
    found = [
        Holding(enterprise, key, row)
        for key, holders in custody.held.items()
        if key in keys
        for enterprise, row in holders.items()
    ]
    return sorted(found, key=lambda h: (h.since, h.key, h.enterprise_id))
