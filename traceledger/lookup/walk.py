"""The walk over the event index that gathers an item's history.

From the item it reaches its lot, the containers it was packed in (from ADD to DELETE)
and, upstream through transformations, the lots it was made from, recursively, within
a budget of depth, events and keys. See `Walk` for its two passes.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from traceledger.log.reader import redacted_digests, redacted_sql
from traceledger.standards.epcis import aware
from traceledger.standards.gs1 import GS1Key, parse_index_key
from traceledger.trust.claims import Claim
from traceledger.trust.roles import WHAT, WHERE, WHO
from traceledger.trust.rules import Verdict

MAX_DEPTH = 6  # transformation and aggregation hops followed upstream
MAX_EVENTS = 2000  # an answer never grows beyond this many events
MAX_NODES = 10_000  # nor does a walk visit more keys than this
PLACES_AND_PARTIES = frozenset({"gln", "pgln"})
_RANK = {"item": 0, "lot": 1, "class": 2, "container": 3, "input": 4}
FOREVER = datetime.max.replace(tzinfo=UTC)
BEGINNING = datetime.min.replace(tzinfo=UTC)


# An event wherever it was logged: (its log's origin, its index in that log).
EventId = tuple[str, int]


@dataclass(slots=True)
class Via:
    """Why events on `key` belong to the history, and during which time."""

    relation: str  # item, lot, class, container, input
    via: str | None
    since: datetime = BEGINNING
    until: datetime = FOREVER
    depth: int = 0


@dataclass(slots=True)
class EventRow:
    idx: int
    event_id: str
    event_type: str
    event_time: datetime
    action: str | None
    biz_step: str | None
    disposition: str | None
    read_point: str | None
    biz_location: str | None
    enterprise_id: int | None
    corrects: int | None
    keys: list[tuple[str, str]] = field(default_factory=list)  # (key, role)
    # With detail: the stored leaf and payload, and the sender's (name, role).
    leaf: bytes | None = None
    payload: bytes | None = None
    who: tuple[str, str] | None = None
    log: str = ""  # the origin of the log (shard) it was read from
    submitted_with: str = "dsse"  # see traceledger/accounts/provenance.py
    event_id_verified: bool | None = None  # an ni: eventID that is (not) its hash
    declaration: bool = False  # it carries an EPCIS errorDeclaration
    # With detail, a version-2 leaf's: its fields' salts and redacted fields' digests.
    salted: tuple[bytes, Mapping[str, bytes]] | None = None

    @property
    def id(self) -> EventId:
        return (self.log, self.idx)

    def claim(self, id: Hashable, signer: int | None, corrects: Hashable | None) -> Claim:
        """What this event claims, for the trust rules, under the ids the caller uses."""
        return Claim(
            id,
            signer,
            self.event_time,
            self.event_type,
            self.action,
            self.biz_step,
            self.disposition,
            tuple(self.keys),
            self.declaration,
            corrects,
        )


async def events_naming(
    conn: Any,
    keys: list[str],
    limit: int = MAX_EVENTS,
    *,
    detail: bool = False,
    lot_members: bool = False,
) -> list[EventRow]:
    """Every indexed event naming any of `keys`, with all the keys it names, in time order.

    `detail` also brings each event's leaf, payload, sender and (version-2 leaves) its
    fields' salts and redacted fields' digests, read with the payload so the two always
    fit, and a history needs no further round trips for them. `lot_members` also finds
    the events that made serials of a lot in `keys` (the way a forward trace goes from a
    lot to its serials).
    """
    rows = await conn.fetch(
        # LATERAL: fetch each matched event's other keys through the idx index, whatever
        # the planner believes about how many events the keys match. (S608: only
        # literal fragments are joined, never input.)
        "SELECT e.*, k2.all_keys, k2.all_roles"  # noqa: S608
        + (
            ", en.leaf, en.payload, ent.name AS sender, ent.role AS sender_role, en.salts,"
            f" {redacted_sql('m')} AS redacted"
            if detail
            else ""
        )
        # A lotMember key names the lot a serial was made in: the lot's other serials'
        # commissioning events are not the lot's history (a lot of 10,000 would drag in
        # 10,000 events).
        + " FROM (SELECT DISTINCT idx FROM event_keys WHERE key = ANY($1::text[])"
        + ("" if lot_members else " AND role <> 'lotMember'")
        + ") m"
        " JOIN events e ON e.idx = m.idx"
        + (
            " JOIN entries en ON en.idx = m.idx"
            " LEFT JOIN enterprises ent ON ent.id = e.enterprise_id"
            if detail
            else ""
        )
        + " CROSS JOIN LATERAL (SELECT array_agg(k.key) AS all_keys,"
        "                            array_agg(k.role) AS all_roles"
        "                     FROM event_keys k WHERE k.idx = m.idx) k2"
        " ORDER BY e.event_time, e.idx LIMIT $2",
        keys,
        limit,
    )
    return [
        EventRow(
            r["idx"],
            r["event_id"],
            r["event_type"],
            aware(r["event_time"]),
            r["action"],
            r["biz_step"],
            r["disposition"],
            r["read_point"],
            r["biz_location"],
            r["enterprise_id"],
            r["corrects"],
            list(zip(r["all_keys"], r["all_roles"], strict=True)),
            leaf=bytes(r["leaf"]) if detail else None,
            payload=None if not detail or r["payload"] is None else bytes(r["payload"]),
            salted=_salted(r) if detail else None,
            who=None if not detail or r["sender"] is None else (r["sender"], r["sender_role"]),
            # Past shards may predate these columns (migration 0009).
            submitted_with=r.get("submitted_with") or "dsse",
            event_id_verified=r.get("event_id_verified"),
            declaration=bool(r.get("declaration")),
        )
        for r in rows
    ]


def _salted(row: Any) -> tuple[bytes, dict[str, bytes]] | None:
    """A version-2 event's salts and its redacted fields' digests (tlog/disclosure.py)."""
    if row["salts"] is None:
        return None
    return bytes(row["salts"]), redacted_digests(row["redacted"])


class Walk:
    """Breadth-first walk from an item over its lot, containers and transformation inputs,
    following the goods (roles in trust.roles.WHAT) only: an event naming the item as a
    place or a party is not about the item.

    A walk runs twice. First over the index (`run`), following every claim, to gather
    every event that could belong to the history; then, once those events are judged
    (traceledger/trust), over the gathered rows again (`replay`) following believed
    claims only. Both passes share `_step`, so they attach events the same way.
    """

    def __init__(
        self,
        sources: list[tuple[str, Any]],
        verdict: Callable[[EventRow], Verdict] | None = None,
    ) -> None:
        """`sources`: (origin, connection) of every log, the current one first; `verdict`
        (for the replay) what the trust rules concluded about each row."""
        self.sources = sources
        self.verdict = verdict
        self.events: dict[EventId, EventRow] = {}
        self.relation: dict[EventId, Via] = {}
        self.roles: dict[EventId, str] = {}
        self.named: dict[EventId, str] = {}  # the key each event was attached by
        self.retracted: set[EventId] = set()  # declared erroneous by a believed declaration
        self.seen: dict[str, Via] = {}
        self.lot_of_item: str | None = None
        self.input_tree: dict[str, list[str]] = {}
        self.truncated = 0  # keys left unwalked for the budget
        # What the start key may be in an event: goods; for a place's or party's own page,
        # also where events happened and who took part.
        self.own_roles = WHAT

    def _start(self, key: GS1Key) -> dict[str, Via]:
        if key.scheme in PLACES_AND_PARTIES:
            self.own_roles = WHAT | WHERE | WHO
        return self._start_goods(key)

    def _start_goods(self, key: GS1Key) -> dict[str, Via]:
        frontier: dict[str, Via] = {key.item_key().canonical(): Via("item", None)}
        lot = key.lot_key()
        if lot is not None and lot.canonical() != key.canonical():
            frontier[lot.canonical()] = Via("lot", lot.canonical())
        cls = key.class_key()
        if cls is not None and cls.canonical() != key.canonical():
            frontier[cls.canonical()] = Via("class", cls.canonical())
        return frontier

    async def run(self, key: GS1Key) -> None:
        frontier, depth = self._start(key), 0
        while frontier and self._within_budget(frontier, depth):
            rows = await self._events_naming(list(frontier))
            frontier = self._step(key, rows, frontier, depth)
            depth += 1

    def replay(self, key: GS1Key, rows: Iterable[EventRow]) -> None:
        """The walk again over rows already read, following believed claims only."""
        rows = list(rows)
        by_key: dict[str, list[EventRow]] = {}
        for row in rows:
            for k in {k for k, role in row.keys if role != "lotMember"}:
                by_key.setdefault(k, []).append(row)
        order = {origin: -n for n, (origin, _) in enumerate(self.sources)}
        if self.verdict is not None:
            self.retracted = {
                (r.log, r.corrects)
                for r in rows
                if r.declaration and r.corrects is not None and self.verdict(r).believed
            }
        frontier, depth = self._start(key), 0
        while frontier and self._within_budget(frontier, depth):
            found = {r.id: r for k in frontier for r in by_key.get(k, ())}
            ordered = sorted(found.values(), key=lambda r: (r.event_time, order[r.log], r.idx))
            frontier = self._step(key, ordered, frontier, depth)
            depth += 1

    def _within_budget(self, frontier: Mapping[str, Via], depth: int) -> bool:
        if depth <= MAX_DEPTH and len(self.events) < MAX_EVENTS and len(self.seen) < MAX_NODES:
            return True
        self.truncated = len(frontier)
        return False

    def _step(
        self, key: GS1Key, rows: list[EventRow], frontier: dict[str, Via], depth: int
    ) -> dict[str, Via]:
        """Attach `rows` (naming the `frontier` keys) and return the next frontier."""
        self.seen.update(frontier)
        hops: dict[str, Via] = {}
        if key.lot is None and depth == 0 and key.serial is not None:
            hops.update(self._lot_from_commissioning(key.item_key().canonical(), rows))
        for row in rows:  # in time order, so an ADD is seen before its DELETE
            verdict = self.verdict(row) if self.verdict is not None else None
            for k, role in row.keys:
                if verdict is not None and not verdict.about(k):
                    continue
                via = self.seen.get(k)
                roles = self.own_roles if via is not None and via.relation == "item" else WHAT
                if role not in roles or via is None or not via.since <= row.event_time <= via.until:
                    continue
                self._attach(row, via, role, k)
                if not self._void(row):
                    self._next_hops(row, k, role, via, hops)
        return {k: v for k, v in hops.items() if k not in self.seen}

    def _void(self, row: EventRow) -> bool:
        """In the replay: an event declared erroneous did not happen, and a declaration
        repeats what it retracts; neither leads anywhere (a container, an input)."""
        return self.verdict is not None and (row.declaration or row.id in self.retracted)

    def _attach(self, row: EventRow, via: Via, role: str, key: str) -> None:
        self.events.setdefault(row.id, row)
        known = self.relation.get(row.id)
        # An event naming several keys belongs to the one nearest the item (naming the
        # item and its lot, it is the item's own event).
        if known is None or (via.depth, _RANK[via.relation]) < (known.depth, _RANK[known.relation]):
            self.relation[row.id] = via
            self.roles[row.id] = role
            self.named[row.id] = key

    async def _events_naming(self, keys: list[str]) -> list[EventRow]:
        """The events naming `keys` in every log, tagged with their log, in time order
        (then the older log first, then by index)."""
        rows: list[EventRow] = []
        for n, (origin, conn) in enumerate(self.sources):
            for row in await events_naming(conn, keys, detail=True):
                row.log = origin
                rows.append(row)
            if n == 0 and len(self.sources) == 1:
                return rows  # already in order
        order = {origin: -n for n, (origin, _) in enumerate(self.sources)}
        rows.sort(key=lambda r: (r.event_time, order[r.log], r.idx))
        return rows

    def _lot_from_commissioning(self, item: str, rows: list[EventRow]) -> dict[str, Via]:
        """A serial's lot, from the (believed) event that commissioned it with the lot in
        its ILMD. The first pass follows every candidate; the replay, the first believed."""
        lots: dict[str, Via] = {}
        for row in rows:
            if row.event_type != "ObjectEvent" or row.action != "ADD":
                continue
            if (item, "epc") not in row.keys:
                continue
            if self.verdict is not None and not self.verdict(row).about(item):
                continue
            if self._void(row):
                continue
            for lot in (k for k, role in row.keys if role == "lotMember"):
                self.lot_of_item = self.lot_of_item or lot
                lots.setdefault(lot, Via("lot", lot))
            if lots and self.verdict is not None:
                break
        return lots

    def _next_hops(
        self, row: EventRow, key: str, role: str, via: Via, hops: dict[str, Via]
    ) -> None:
        """Add to `hops` the keys this event leads to (containers, transformation inputs)."""
        if row.event_type == "AggregationEvent" and role in ("child", "childClass"):
            parent = next((k for k, r in row.keys if r == "parent"), None)
            if parent is not None and row.action in ("ADD", "OBSERVE") and parent not in hops:
                hops[parent] = Via(
                    "container", parent, since=row.event_time, until=FOREVER, depth=via.depth + 1
                )
            # The gathering pass cannot tell a believed DELETE from a backdated forgery, so
            # only the replay closes a container's window.
            if parent is not None and row.action == "DELETE" and self.verdict is not None:
                # The item left the container: its later events are not the item's.
                held = hops.get(parent) or self.seen.get(parent)
                if held is not None and held.relation == "container":
                    held.until = min(held.until, row.event_time)
        if row.event_type == "TransformationEvent" and role in ("output", "outputClass"):
            inputs = [k for k, r in row.keys if r in ("input", "inputClass")]
            self.input_tree.setdefault(key, []).extend(
                i for i in inputs if i not in self.input_tree.get(key, [])
            )
            for k in inputs:
                hops[k] = Via("input", k, depth=via.depth + 1)
                ik = parse_index_key(k)
                # An input serial brings its lot with it.
                lot = ik.lot_key() if ik is not None else None
                if lot is not None and lot.canonical() != k:
                    hops[lot.canonical()] = Via("input", lot.canonical(), depth=via.depth + 1)

    def payloads(self, sizes: Mapping[str, int]) -> dict[EventId, tuple[bytes, bytes | None]]:
        """(leaf, payload) of every event the walk found within its log's tree of `sizes`."""
        return {
            i: (r.leaf, r.payload)
            for i, r in self.events.items()
            if i[1] < sizes.get(i[0], 0) and r.leaf
        }
