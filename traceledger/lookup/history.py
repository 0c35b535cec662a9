"""One item's trace history: every event that concerns it, with proofs, and its status.

An item's history gathers events recorded
- on the item itself, on its lot, and on its product class;
- on containers while the item was aggregated in them (AggregationEvent ADD to DELETE);
- upstream through transformations: the lots its lot was made from, recursively.
A serial's lot, when the QR code carries none, is read from the ILMD of the event that
commissioned it. Every event comes with an inclusion proof against one signed
checkpoint, so the whole answer can be verified offline.

With time-sharded logs (traceledger/shards.py) the walk runs over every shard, current
first: a key found in one shard (the lot a serial was made in, last year) keeps the walk
going in the others (this year's recall of that lot). An event is then identified by its
log's origin and its index there, and is proven against its own log's checkpoint.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

import asyncpg

from traceledger.accounts.provenance import provenance
from traceledger.errors import NotFoundError
from traceledger.log.checkpoints import SignedCheckpoint
from traceledger.log.cosigned import witness_names
from traceledger.log.reader import LogReader
from traceledger.log.shards import Shard
from traceledger.lookup.cache import CachedAnswer, HistoryCache
from traceledger.lookup.prebuilt import prebuildable, read_prebuilt
from traceledger.lookup.wording import local_iso, role_of
from traceledger.standards.epcis import utc_iso
from traceledger.standards.gs1 import GS1Key, parse_index_key
from traceledger.tlog.note import Verifier, b64encode

MAX_DEPTH = 6  # transformation and aggregation hops followed upstream
MAX_EVENTS = 2000  # an answer never grows beyond this many events
CONFIDENTIAL_FIELD = "traceledger:confidential"
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

    @property
    def id(self) -> EventId:
        return (self.log, self.idx)


class HistoryService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        reader: LogReader,
        *,
        verifier_key: str | None = None,
        cache: HistoryCache | None = None,
        checkpoint_max_age: float = 0.0,
        origin: str | None = None,
        past: Sequence[Shard] = (),
        prebuilt: bool = False,
    ) -> None:
        self._pool = pool
        self._reader = reader
        self._verifier_key = verifier_key
        # The current log's origin tags its events; by default the verifier key's name.
        if origin is None:
            origin = Verifier.parse(verifier_key).name if verifier_key is not None else ""
        self.origin = origin
        self.past = tuple(past)
        self.cache = cache if cache is not None else HistoryCache(0, 0)
        # Whether to look for answers built ahead (traceledger/prebuilt.py) before
        # assembling one: the public view of serialized items and lots only.
        self._prebuilt = prebuilt
        self._checkpoint_max_age = checkpoint_max_age
        self._latest: tuple[float, SignedCheckpoint] | None = None

    async def history(
        self, key: GS1Key, *, inspector: bool = False, all_logs: bool = False
    ) -> dict[str, Any]:
        """The item's history (possibly shared with other callers: do not mutate it).

        Without `all_logs`, only the current log's events: callers that go on to read
        events by index from the current database (trace, export) must never be handed
        an index of another log. `pending` and `status` still speak for every log.
        """
        answer = (await self.lookup(key, inspector=inspector)).answer
        if all_logs or not self.past:
            return answer
        return {**answer, "events": [e for e in answer["events"] if e["log"] == self.origin]}

    async def lookup(self, key: GS1Key, *, inspector: bool = False) -> CachedAnswer:
        """The cached answer while it is current (see history_cache), else a prebuilt one
        while it is current (see prebuilt), else a fresh one."""
        checkpoint = await self._checkpoint()
        slot = (key.canonical(), inspector)
        cached = self.cache.get(slot)
        if cached is not None and await self._still_current(cached, checkpoint.size):
            return cached
        found = None
        if self._prebuilt and not inspector and prebuildable(key):
            async with self._pool.acquire() as conn:
                found = await read_prebuilt(conn, slot[0], checkpoint.size, self.cache.now())
        if found is None:
            found = await self.assemble(key, checkpoint, inspector=inspector)
        self.cache.put(found)
        return found

    async def newest_checkpoint(self) -> SignedCheckpoint:
        """The newest checkpoint lookups may use (cosigned by the quorum, with witnesses)."""
        return await self._reader.checkpoint()

    async def _checkpoint(self) -> SignedCheckpoint:
        """The newest checkpoint, read at most once per `checkpoint_max_age` seconds. A
        new one is signed only once per checkpoint interval anyway, and so a cached
        answer to a popular item costs no database round trip at all."""
        now = self.cache.now()
        if self._latest is not None and now - self._latest[0] < self._checkpoint_max_age:
            return self._latest[1]
        checkpoint = await self._reader.checkpoint()
        self._latest = (now, checkpoint)
        return checkpoint

    async def _still_current(self, cached: CachedAnswer, size: int) -> bool:
        """Only the current log grows: past shards are frozen, so what the answer drew
        from them stays right, and only new current-log events can change it."""
        if size <= cached.current_at:
            return True
        if cached.pending:
            return False  # events it counted as pending are now covered by a checkpoint
        async with self._pool.acquire() as conn:
            changed = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM event_keys WHERE key = ANY($1::text[])"
                " AND idx >= $2 AND role <> 'lotMember')",
                cached.keys,
                cached.indexed_below,
            )
        if changed:
            return False
        cached.current_at = size
        return True

    async def assemble(
        self, key: GS1Key, checkpoint: SignedCheckpoint, *, inspector: bool = False
    ) -> CachedAnswer:
        """A fresh answer, its proofs against `checkpoint` (the current log's)."""
        async with contextlib.AsyncExitStack() as stack:
            conn = await stack.enter_async_context(self._pool.acquire())
            # Read before the walk: every event below it is indexed and so seen by the walk.
            indexed_below = await conn.fetchval("SELECT next_idx FROM index_state")
            sources: list[tuple[str, Any]] = [(self.origin, conn)]
            sources.extend(
                [(s.origin, await stack.enter_async_context(s.pool.acquire())) for s in self.past]
            )
            walk = Walk(sources)
            await walk.run(key)
        if not walk.events:
            raise NotFoundError(f"nothing is recorded about {key.canonical()}")
        checkpoints = {self.origin: checkpoint}
        for shard in self.past:
            if any(i[0] == shard.origin for i in walk.events):
                checkpoints[shard.origin] = await shard.reader.checkpoint()
        sizes = {origin: cp.size for origin, cp in checkpoints.items()}
        payloads = walk.payloads(sizes)
        covered = [i for i in walk.events if i[1] < sizes[i[0]] and i in payloads]
        proofs: dict[EventId, list[bytes]] = {}
        for origin, reader in self._readers():
            if origin in sizes:
                mine = sorted(i[1] for i in covered if i[0] == origin)
                found = await reader.inclusion_proofs(mine, sizes[origin])
                proofs.update(((origin, i), p) for i, p in found.items())
        erroneous = {(r.log, r.corrects) for r in walk.events.values() if r.corrects is not None}
        events = []
        for i in covered:
            row = walk.events[i]
            leaf, payload = payloads[i]
            via = walk.relation[i]
            role = role_of(row.keys, via.via or key.item_key().canonical())
            events.append(
                _event_json(row, via, leaf, payload, proofs[i], i in erroneous, inspector, role)
            )
        # At the same time, the older log's event first (it was recorded first).
        order = {origin: -n for n, (origin, _) in enumerate(self._readers())}
        events.sort(key=lambda e: (e["eventTime"], order[e["log"]], e["index"]))
        product, made = _product_and_origin(walk, payloads, key)
        pending = len(walk.events) - len(covered)
        answer = {
            "identifier": _identifier_json(key),
            "product": product,
            "origin": made,
            "status": _status(events, product),
            "events": events,
            "pending": pending,
            "treeSize": checkpoint.size,
            "checkpoint": checkpoint.note,
            # Who besides the log vouches for that checkpoint (c2sp.org/tlog-cosignature).
            "witnesses": witness_names(checkpoint.note),
        }
        if self._verifier_key is not None:
            answer["verifierKey"] = self._verifier_key
        # One checkpoint per log the events come from, the current log's first (its
        # checkpoint is also the top-level one, as before logs were sharded).
        keys = {self.origin: self._verifier_key}
        keys.update((s.origin, s.verifier.encode()) for s in self.past)
        answer["logs"] = [
            {"origin": name, "checkpoint": cp.note, "treeSize": cp.size}
            | ({"verifierKey": keys[name]} if keys[name] is not None else {})
            for name, cp in checkpoints.items()
        ]
        return CachedAnswer(
            (key.canonical(), inspector),
            list(walk.seen),
            indexed_below,
            checkpoint.size,
            pending,
            len(events),
            self.cache.now(),
            answer,
        )

    def _readers(self) -> list[tuple[str, LogReader]]:
        """Every log's reader, current first."""
        return [(self.origin, self._reader)] + [(s.origin, s.reader) for s in self.past]


async def events_naming(
    conn: Any,
    keys: list[str],
    limit: int = MAX_EVENTS,
    *,
    detail: bool = False,
    lot_members: bool = False,
) -> list[EventRow]:
    """Every indexed event naming any of `keys`, with all the keys it names, in time order.

    `detail` also brings each event's leaf, payload and sender, so a history needs no
    further round trips for them. `lot_members` also finds the events that made serials
    of a lot in `keys` (the way a forward trace goes from a lot to its serials).
    """
    rows = await conn.fetch(
        # LATERAL: fetch each matched event's other keys through the idx index, whatever
        # the planner believes about how many events the keys match. (S608: only
        # literal fragments are joined, never input.)
        "SELECT e.*, k2.all_keys, k2.all_roles"  # noqa: S608
        + (", en.leaf, en.payload, ent.name AS sender, ent.role AS sender_role" if detail else "")
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
            r["event_time"],
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
            who=None if not detail or r["sender"] is None else (r["sender"], r["sender_role"]),
            # Past shards may predate these columns (migration 0009).
            submitted_with=r.get("submitted_with") or "dsse",
            event_id_verified=r.get("event_id_verified"),
        )
        for r in rows
    ]


class Walk:
    """Breadth-first walk from an item over lots, containers and transformation inputs."""

    def __init__(self, sources: list[tuple[str, Any]]) -> None:
        """`sources`: (origin, connection) of every log, the current one first."""
        self.sources = sources
        self.events: dict[EventId, EventRow] = {}
        self.relation: dict[EventId, Via] = {}
        self.seen: dict[str, Via] = {}
        self.lot_of_item: str | None = None
        self.input_tree: dict[str, list[str]] = {}

    async def run(self, key: GS1Key) -> None:
        frontier: dict[str, Via] = {key.item_key().canonical(): Via("item", None)}
        lot = key.lot_key()
        if lot is not None and lot.canonical() != key.canonical():
            frontier[lot.canonical()] = Via("lot", lot.canonical())
        cls = key.class_key()
        if cls is not None and cls.canonical() != key.canonical():
            frontier[cls.canonical()] = Via("class", cls.canonical())
        depth = 0
        while frontier and depth <= MAX_DEPTH and len(self.events) < MAX_EVENTS:
            self.seen.update(frontier)
            rows = await self._events_naming(list(frontier))
            frontier = {}
            if lot is None and depth == 0 and key.serial is not None:
                frontier.update(self._lot_from_commissioning(rows))
            for row in rows:  # in time order, so an ADD is seen before its DELETE
                for k, role in row.keys:
                    if role == "lotMember":
                        continue  # another serial of the lot being made: not this item's
                    via = self.seen.get(k)
                    if via is None or not via.since <= row.event_time <= via.until:
                        continue
                    self.events.setdefault(row.id, row)
                    known = self.relation.get(row.id)
                    # An event naming several keys belongs to the one nearest the item
                    # (naming the item and its lot, it is the item's own event).
                    if known is None or (via.depth, _RANK[via.relation]) < (
                        known.depth,
                        _RANK[known.relation],
                    ):
                        self.relation[row.id] = via
                    self._next_hops(row, k, role, via, frontier)
            frontier = {k: v for k, v in frontier.items() if k not in self.seen}
            depth += 1

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

    def _lot_from_commissioning(self, rows: list[EventRow]) -> dict[str, Via]:
        """A serial's lot, from the event that created it with the lot in its ILMD."""
        for row in rows:
            lots = [k for k, role in row.keys if role == "lotMember"]
            if lots:
                self.lot_of_item = lots[0]
                return {lots[0]: Via("lot", lots[0])}
        return {}

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
            if parent is not None and row.action == "DELETE":
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


def _identifier_json(key: GS1Key) -> dict[str, Any]:
    return {
        "key": key.canonical(),
        "digitalLink": key.digital_link(),
        "level": key.level,
        "scheme": key.scheme,
        "gtin": key.key if key.scheme == "gtin" else None,
        "lot": key.lot,
        "serial": key.serial,
    }


def _public_event(event: Mapping[str, Any], inspector: bool) -> tuple[dict[str, Any], bool]:
    """The event as shown: fields its sender marked confidential are withheld."""
    hidden = event.get(CONFIDENTIAL_FIELD)
    if not hidden or inspector:
        return dict(event), bool(hidden)
    names = set(hidden) if isinstance(hidden, list) else set()
    return {k: v for k, v in event.items() if k not in names}, True


def _event_json(
    row: EventRow,
    via: Via,
    leaf: bytes,
    payload: bytes | None,
    proof: list[bytes],
    erroneous: bool,
    inspector: bool,
    role: str | None = None,
) -> dict[str, Any]:
    event: dict[str, Any] = json.loads(payload) if payload is not None else {}
    shown, confidential = _public_event(event, inspector)
    # The sender as named in the event's own log (each shard has its own registry).
    who = row.who if row.enterprise_id else None
    return {
        "log": row.log,
        "index": row.idx,
        "eventID": row.event_id,
        **({} if row.event_id_verified is None else {"eventIDVerified": row.event_id_verified}),
        "provenance": provenance(row.submitted_with),
        "type": row.event_type,
        "action": row.action,
        "bizStep": row.biz_step,
        "disposition": row.disposition,
        "eventTime": utc_iso(row.event_time),
        "eventTimeZoneOffset": shown.get("eventTimeZoneOffset"),
        "where": {"readPoint": row.read_point, "bizLocation": row.biz_location},
        "who": {"name": who[0], "role": who[1]} if who else None,
        "relation": via.relation,
        "via": via.via,
        # The part the key in `via` (the item's own key for relation item) plays in it.
        "role": role,
        "sources": [
            {"type": s.get("type"), "id": s.get("source")}
            for s in shown.get("sourceList") or ()
            if isinstance(s, Mapping)
        ],
        "destinations": [
            {"type": d.get("type"), "id": d.get("destination")}
            for d in shown.get("destinationList") or ()
            if isinstance(d, Mapping)
        ],
        "certifications": _certifications(shown),
        "ilmd": shown.get("ilmd"),
        # User extension fields (namespaced keys), e.g. a recall's reason.
        "extensions": {k: v for k, v in shown.items() if ":" in k and k != CONFIDENTIAL_FIELD},
        "erroneous": erroneous,
        "correctsIndex": row.corrects,
        "confidential": confidential,
        "leaf": b64encode(leaf),
        # The exact stored bytes make the event checkable against its leaf; withheld
        # when the sender marked fields confidential (the leaf still proves inclusion).
        "payload": b64encode(payload)
        if payload is not None and (inspector or not confidential)
        else None,
        "inclusionProof": [b64encode(h) for h in proof],
    }


def _certifications(event: Mapping[str, Any]) -> list[dict[str, Any]]:
    info = event.get("certificationInfo")
    items: Iterable[Any] = info if isinstance(info, list) else [info] if info else []
    out: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, str):
            out.append({"certificate": item})
        elif isinstance(item, Mapping):
            out.append(dict(item))
    return out


class _Provenance:
    """Who made the item, its lot and its inputs: facts of the events that created them."""

    def __init__(self, walk: Walk, payloads: Mapping[EventId, tuple[bytes, bytes | None]]) -> None:
        self._walk = walk
        self._payloads = payloads
        self._described: dict[frozenset[str], dict[str, Any]] = {}
        # Which events created which key, found once (the input tree asks about each key).
        self._created_by: dict[str, list[EventRow]] = {}
        for row in sorted(walk.events.values(), key=lambda r: (r.event_time, r.idx)):
            for k, role in row.keys:
                if (row.action == "ADD" and role in ("epc", "class")) or role in (
                    "output",
                    "outputClass",
                ):
                    self._created_by.setdefault(k, []).append(row)

    def describe(self, keys: set[str]) -> dict[str, Any]:
        """ILMD facts, producer, place and time of the events that created `keys`."""
        frozen = frozenset(keys)
        if frozen not in self._described:
            self._described[frozen] = self._describe(keys)
        return self._described[frozen]

    def _creating(self, keys: set[str]) -> list[EventRow]:
        rows = {r.id: r for k in keys for r in self._created_by.get(k, ())}
        return sorted(rows.values(), key=lambda r: (r.event_time, r.idx))

    def _describe(self, keys: set[str]) -> dict[str, Any]:
        facts: dict[str, Any] = {}
        first: EventRow | None = None
        offset = None
        for row in self._creating(keys):
            payload = self._payloads.get(row.id, (b"", None))[1]
            event = json.loads(payload) if payload else {}
            shown, _ = _public_event(event, inspector=False)
            if first is None:
                first, offset = row, shown.get("eventTimeZoneOffset")
            ilmd = shown.get("ilmd")
            if isinstance(ilmd, Mapping):
                for k, v in ilmd.items():
                    facts.setdefault(k.rsplit(":", 1)[-1].rsplit("#", 1)[-1], v)
        producer = first.who if first and first.enterprise_id else None
        return {
            "facts": facts,
            "producer": producer[0] if producer else None,
            "producerId": first.enterprise_id if first else None,
            "place": (first.biz_location or first.read_point) if first else None,
            # At the event's own offset, as its journey entry shows it.
            "commissionedAt": local_iso(first.event_time, offset) if first else None,
        }

    def inputs(self, of: str, seen: frozenset[str]) -> list[dict[str, Any]]:
        """The lots `of` was made from, recursively, each with what its creators said."""
        out = []
        for k in self._walk.input_tree.get(of, []):
            if k in seen:
                continue  # cycles are possible in bad data; never loop
            info = self.describe({k})
            out.append(
                {
                    "key": k,
                    "product": info["facts"].get("regulatedProductName")
                    or info["facts"].get("productName"),
                    "producer": info["producer"],
                    "country": info["facts"].get("countryOfOrigin"),
                    "inputs": self.inputs(k, seen | {k}),
                }
            )
        return out


def _product_and_origin(
    walk: Walk,
    payloads: Mapping[EventId, tuple[bytes, bytes | None]],
    key: GS1Key,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Product facts and origin from the events that created the item or its lot."""
    provenance = _Provenance(walk, payloads)
    own_keys = {key.item_key().canonical()}
    own_lot = key.lot_key()
    lot_key = own_lot.canonical() if own_lot is not None else walk.lot_of_item
    if lot_key:
        own_keys.add(lot_key)
    mine = provenance.describe(own_keys)
    # The same inputs are reached from the output lot and from each output serial.
    inputs = list(
        {
            i["key"]: i for k in sorted(own_keys) for i in provenance.inputs(k, frozenset(own_keys))
        }.values()
    )
    origin = {
        "producer": mine["producer"],
        "country": mine["facts"].get("countryOfOrigin"),
        "place": mine["place"],
        "commissionedAt": mine["commissionedAt"],
        "inputs": inputs,
    }
    return _product(key, mine, lot_key), origin


def _product(key: GS1Key, mine: Mapping[str, Any], lot_key: str | None) -> dict[str, Any]:
    """The product card: names, lot, dates and producer from the creating events' facts."""
    facts = mine["facts"]
    return {
        "name": facts.get("regulatedProductName")
        or facts.get("productName")
        or facts.get("descriptionShort"),
        "gtin": key.key if key.scheme == "gtin" else None,
        "lot": key.lot
        or facts.get("lotNumber")
        or (lot_key.rsplit("/", 1)[-1] if lot_key else None),
        "productionDate": facts.get("productionDate") or facts.get("harvestStartDate"),
        "expiryDate": facts.get("itemExpirationDate") or facts.get("bestBeforeDate"),
        "originCountry": facts.get("countryOfOrigin"),
        "producer": {"name": mine["producer"], "enterpriseId": mine["producerId"]}
        if mine["producer"]
        else None,
        "facts": facts,
    }


def _extension(event: Mapping[str, Any], name: str) -> Any:
    """An extension field by local name, whatever namespace prefix the sender used."""
    for key, value in event.get("extensions", {}).items():
        if key.rsplit(":", 1)[-1] == name:
            return value
    return None


def _status(events: list[dict[str, Any]], product: Mapping[str, Any]) -> dict[str, Any]:
    valid = [e for e in events if not e["erroneous"] and e["correctsIndex"] is None]

    def who(e: Mapping[str, Any]) -> str | None:
        return e["who"]["name"] if e["who"] else None

    recalls = [
        {
            "log": e["log"],
            "index": e["index"],
            "eventTime": e["eventTime"],
            "by": who(e),
            "via": e["via"],
            "reason": _extension(e, "recallReason"),
        }
        for e in valid
        if e["disposition"] == "recalled"
    ]
    inspections = [
        {
            "log": e["log"],
            "index": e["index"],
            "eventTime": e["eventTime"],
            "outcome": e["disposition"]
            if e["disposition"] in ("conformant", "non_conformant")
            else None,
            "by": who(e),
            "where": e["where"]["bizLocation"] or e["where"]["readPoint"],
            "via": e["via"],
        }
        for e in valid
        if e["bizStep"] == "inspecting"
    ]
    expiry = product.get("expiryDate")
    expired = False
    if isinstance(expiry, str):
        try:
            expired = date.fromisoformat(expiry[:10]) < datetime.now(UTC).date()
        except ValueError:
            expired = False
    own = [e for e in valid if e["relation"] in ("item", "lot", "class", "container")]
    return {
        "recalled": bool(recalls),
        "recalls": recalls,
        "inspections": inspections,
        "expired": expired,
        "expiryDate": expiry,
        "destroyed": any(e["disposition"] == "destroyed" for e in own),
        "returned": any(e["disposition"] == "returned" for e in own),
    }
