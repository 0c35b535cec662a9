"""Tracing for inspectors and regulators: where a lot came from, and where it went.

Origin walks upstream (the item's lot, its containers, transformation inputs,
recursively); forward trace walks downstream (a lot's serials, the containers they
were packed into, the lots made from them, recursively) and says who received any of
it and who still holds it: the scope of a recall. Both are depth-limited and never
visit a key twice, so cyclic or malicious data cannot make them loop.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from traceledger.errors import NotFoundError, RangeError
from traceledger.inspect.catalogs.matching import catalog_hits
from traceledger.inspect.entitlement import recalls_in_force
from traceledger.inspect.holding import RECEIVING_STEPS, Custody, Holding, parties_for
from traceledger.lookup.history import EventRow, HistoryService, events_naming
from traceledger.standards.gs1 import GS1Key, parse_index_key
from traceledger.trust.roles import WHAT

MAX_DEPTH = 6
MAX_KEYS = 20_000  # a trace answer never grows beyond this many identifiers
CHILD_ROLES = ("child", "childClass")
INPUT_ROLES = ("input", "inputClass")
OUTPUT_ROLES = ("output", "outputClass")


def check_depth(depth: int) -> int:
    if not 1 <= depth <= MAX_DEPTH:
        raise RangeError(f"depth must be between 1 and {MAX_DEPTH}")
    return depth


@dataclass
class _Node:
    key: str
    kind: str  # item, lot, serial, container, product (made from it)
    depth: int
    via: str | None
    events: set[int] = field(default_factory=set)


class TraceService:
    def __init__(self, pool: asyncpg.Pool, history: HistoryService) -> None:
        self._pool = pool
        self._history = history

    async def origin(self, key: GS1Key, depth: int = MAX_DEPTH) -> dict[str, Any]:
        """The upstream graph of a lot or item, from its verifiable history."""
        check_depth(depth)
        history = await self._history.history(key, inspector=True, proofs=False)
        nodes: dict[str, dict[str, Any]] = {}
        edges: list[dict[str, Any]] = []
        # Inspector histories also list claims the trust rules do not believe: they are
        # shown apart, with the rule each broke, and never shape the graph.
        believed = [e for e in history["events"] if e.get("entitled", True) is True]
        for event in believed:
            node_key = event["via"] or history["identifier"]["key"]
            node = nodes.setdefault(
                node_key,
                {
                    "key": node_key,
                    "relation": event["relation"],
                    "events": [],
                    "producer": None,
                    "place": None,
                    "country": None,
                    "certifications": [],
                    "inspections": [],
                    "shipments": [],
                },
            )
            node["events"].append(event["index"])
            node["certifications"] += event["certifications"]
            if event["action"] == "ADD" or event["type"] == "TransformationEvent":
                node["producer"] = node["producer"] or (event["who"] or {}).get("name")
                node["place"] = (
                    node["place"] or event["where"]["bizLocation"] or (event["where"]["readPoint"])
                )
                ilmd = event.get("ilmd") or {}
                country = next(
                    (v for k, v in ilmd.items() if k.rsplit(":", 1)[-1] == "countryOfOrigin"), None
                )
                node["country"] = node["country"] or country
            if event["bizStep"] == "inspecting":
                node["inspections"].append(
                    {
                        "index": event["index"],
                        "outcome": event["disposition"],
                        "by": (event["who"] or {}).get("name"),
                        "eventTime": event["eventTime"],
                    }
                )
            if (
                event["sources"]
                or event["destinations"]
                or event["bizStep"] in ("shipping", "receiving", "arriving")
            ):
                node["shipments"].append(
                    {
                        "index": event["index"],
                        "bizStep": event["bizStep"],
                        "eventTime": event["eventTime"],
                        "from": event["sources"],
                        "to": event["destinations"],
                        "at": event["where"]["bizLocation"],
                    }
                )
            if event["relation"] == "container":
                edges.append(
                    {
                        "from": history["identifier"]["key"],
                        "to": event["via"],
                        "type": "aggregation",
                        "index": event["index"],
                    }
                )

        def walk_inputs(of: str, inputs: list[dict[str, Any]], level: int) -> None:
            for item in inputs:
                edges.append({"from": item["key"], "to": of, "type": "transformation"})
                if level < depth:
                    walk_inputs(item["key"], item["inputs"], level + 1)

        walk_inputs(history["identifier"]["key"], history["origin"]["inputs"], 1)
        async with self._pool.acquire() as conn:
            hits = await catalog_hits(conn, list(nodes), None)
        unique_edges = list(
            {(e["from"], e["to"], e["type"], e.get("index")): e for e in edges}.values()
        )
        return {
            "identifier": history["identifier"],
            "product": history["product"],
            "origin": history["origin"],
            "status": history["status"],
            "nodes": list(nodes.values()),
            "edges": unique_edges,
            # High-risk and port special-control catalog entries any node matches.
            "catalogHits": hits,
            "notBelieved": [
                {
                    "index": e["index"],
                    "eventTime": e["eventTime"],
                    "by": (e["who"] or {}).get("name"),
                    "relation": e["relation"],
                    "via": e["via"],
                    "disposition": e["disposition"],
                    "bizStep": e["bizStep"],
                    "rule": e.get("rule"),
                    "reason": e.get("reason"),
                }
                for e in history["events"]
                if e.get("entitled", True) is not True
            ],
            "truncated": history.get("truncated", False),
            "treeSize": history["treeSize"],
            "checkpoint": history["checkpoint"],
        }

    async def forward(self, key: GS1Key, depth: int = MAX_DEPTH) -> dict[str, Any]:
        """Everything downstream of a lot or item, and who received and still holds it."""
        async with self._pool.acquire() as conn:
            scope = await forward_scope(conn, key, depth)
            signers = {r.enterprise_id for r in scope.events.values()}
            signers |= {r.enterprise_id for r in scope.unbelieved.values()}
            signers |= {h.enterprise_id for h in scope.holdings()}
            names = await _names(conn, signers)
        return _forward_answer(scope, names)

    async def recalls(self, limit: int = 50) -> dict[str, Any]:
        """Recalls in force whose signer was entitled (the goods' owner or an authority),
        newest first, each with its forward-trace scope; apart, recalls the trust rules do
        not believe, with the rule each broke (they reach nobody)."""
        async with self._pool.acquire() as conn:
            believed, refused = await recalls_in_force(conn, limit)
        out = []
        for recall in believed:
            scopes = []
            for k in recall.goods:
                key = parse_index_key(k)
                if key is None:
                    continue
                scope = await self.forward(key)
                scopes.append(
                    {
                        "key": k,
                        "serials": len(scope["serials"]),
                        "containers": len(scope["containers"]),
                        "products": [p["key"] for p in scope["products"]],
                        "receivedBy": scope["receivedBy"],
                        "holders": scope["holders"],
                        "truncated": scope["truncated"],
                    }
                )
            out.append(
                {
                    "index": recall.idx,
                    "eventTime": recall.event_time.isoformat(),
                    "by": recall.signer_name,
                    "scope": scopes,
                }
            )
        return {
            "recalls": out,
            "notBelieved": [
                {
                    "index": r.idx,
                    "eventTime": r.event_time.isoformat(),
                    "by": r.signer_name,
                    "goods": list(r.goods),
                }
                | r.verdict.to_json()
                for r in refused
            ],
        }


@dataclass
class Scope:
    """A forward trace: the keys reached (with how), the believed events naming them as
    goods, the claims met on the way that the trust rules do not believe, custody as the
    believed claims give it, and whether a limit cut the walk short."""

    key: GS1Key
    nodes: dict[str, _Node]
    events: dict[int, EventRow]
    truncated: bool
    custody: Custody = field(default_factory=Custody)
    unbelieved: dict[int, EventRow] = field(default_factory=dict)

    def holdings(self) -> list[Holding]:
        """Who holds any of the goods reached, as the believed claims tell."""
        return self.custody.holdings(set(self.nodes))


class _Reach:
    """The keys reached downstream from a start key, level by level. Like the history's
    walk it runs twice: over the index following every claim (`gather`), then, once the
    gathered events are judged, over them again following believed claims only
    (`replay`): a transformation or a packing nobody believes carries nothing on."""

    def __init__(self, key: GS1Key) -> None:
        self.start = key.item_key().canonical()
        self.nodes = {self.start: _Node(self.start, "item" if key.serial else "lot", 0, None)}
        self.events: dict[int, EventRow] = {}
        self.truncated = False

    async def gather(self, conn: Any, depth: int, upto: int | None) -> None:
        async def naming(frontier: list[str]) -> list[EventRow]:
            rows = await events_naming(conn, frontier, limit=MAX_KEYS * 4, lot_members=True)
            return [r for r in rows if upto is None or r.idx <= upto]

        await self._levels(depth, naming, None)

    async def replay(
        self, rows: Iterable[EventRow], depth: int, believed: Callable[[int, str], bool]
    ) -> None:
        by_key: dict[str, dict[int, EventRow]] = {}
        for row in rows:
            for k, _ in row.keys:
                by_key.setdefault(k, {})[row.idx] = row

        async def naming(frontier: list[str]) -> list[EventRow]:
            found = {i: r for k in frontier for i, r in by_key.get(k, {}).items()}
            return sorted(found.values(), key=lambda r: (r.event_time, r.idx))

        await self._levels(depth, naming, believed)

    async def _levels(
        self,
        depth: int,
        naming: Callable[[list[str]], Awaitable[list[EventRow]]],
        believed: Callable[[int, str], bool] | None,
    ) -> None:
        frontier, level = [self.start], 0
        while frontier and level <= depth:
            if len(self.nodes) > MAX_KEYS:
                break
            frontier = self._step(await naming(frontier), set(frontier), level, believed)
            level += 1
        self.truncated = bool(frontier)

    def _step(
        self,
        rows: list[EventRow],
        wanted: set[str],
        level: int,
        believed: Callable[[int, str], bool] | None,
    ) -> list[str]:
        """Attach the rows naming `wanted` keys as goods (and, replaying, believed about
        them); the keys they lead on to."""
        following: list[str] = []
        for row in rows:
            for k, role in row.keys:
                # Goods only: an event naming the key as a place or a party is not about it.
                if k not in wanted or (role not in WHAT and role != "lotMember"):
                    continue
                if believed is None or believed(row.idx, k):
                    self.events[row.idx] = row
                    self.nodes[k].events.add(row.idx)
                    following += _downstream(row, k, role, self.nodes, level)
        return following


async def forward_scope(
    conn: Any, key: GS1Key, depth: int = MAX_DEPTH, *, upto: int | None = None
) -> Scope:
    """Walk downstream from a lot or item: its serials, the containers they went into, the
    products made from them, recursively, at most `depth` steps and MAX_KEYS keys. With
    `upto`, as the log stood at that index (a recall's scope when it was logged)."""
    check_depth(depth)
    gathered = _Reach(key)
    await gathered.gather(conn, depth, upto)
    rows = list(gathered.events.values())
    custody = Custody.of(rows, await parties_for(conn, rows))
    reach = _Reach(key)
    await reach.replay(rows, depth, custody.about)
    if not gathered.events:
        raise NotFoundError(f"nothing is recorded about {reach.start}")
    # Claims not believed about the goods they were found by (a custody claim is believed
    # about the goods its signer held only).
    unbelieved = {
        i: r
        for i, r in gathered.events.items()
        if not all(custody.about(i, k) for k in _goods_reached(r, gathered.nodes))
    }
    truncated = gathered.truncated or reach.truncated
    return Scope(key, reach.nodes, reach.events, truncated, custody, unbelieved)


def _goods_reached(row: EventRow, nodes: dict[str, _Node]) -> list[str]:
    return [k for k, role in row.keys if k in nodes and (role in WHAT or role == "lotMember")]


def _downstream(
    row: EventRow, key: str, role: str, nodes: dict[str, _Node], level: int
) -> list[str]:
    """Keys this event carries the goods on to: serials, containers, products."""
    found: list[tuple[str, str]] = []
    if role == "lotMember":
        found = [(k, "serial") for k, r in row.keys if r in ("epc", "output")]
    elif row.event_type == "AggregationEvent" and role in CHILD_ROLES and row.action == "ADD":
        found = [(k, "container") for k, r in row.keys if r == "parent"]
    elif row.event_type == "TransformationEvent" and role in INPUT_ROLES:
        found = [(k, "product") for k, r in row.keys if r in OUTPUT_ROLES]
    new = []
    for k, kind in found:
        if k not in nodes:
            nodes[k] = _Node(k, kind, level + 1, key)
            new.append(k)
    return new


async def _names(conn: Any, ids: Iterable[int | None]) -> dict[int, str]:
    wanted = [i for i in ids if i is not None]
    rows = await conn.fetch("SELECT id, name FROM enterprises WHERE id = ANY($1::bigint[])", wanted)
    return {r["id"]: r["name"] for r in rows}


def _forward_answer(scope: Scope, names: dict[int, str]) -> dict[str, Any]:
    nodes, events = scope.nodes, scope.events
    receipts: dict[tuple[str | None, str | None], dict[str, Any]] = {}
    for row in sorted(events.values(), key=lambda r: (r.event_time, r.idx)):
        party = names.get(row.enterprise_id) if row.enterprise_id else None
        place = row.biz_location or row.read_point
        named = [k for k, r in row.keys if k in nodes and r in WHAT]
        if row.biz_step in RECEIVING_STEPS and named:
            spot = receipts.setdefault(
                (place, party),
                {
                    "location": place,
                    "party": party,
                    "events": [],
                    "first": row.event_time,
                },
            )
            spot["events"].append(row.idx)
    holders = [
        {
            "key": h.key,
            "location": h.received.biz_location or h.received.read_point,
            "party": names.get(h.enterprise_id),
            "enterpriseId": h.enterprise_id,
            "since": h.since.isoformat(),
            "index": h.received.idx,
        }
        for h in scope.holdings()
    ]

    def of(kind: str) -> list[dict[str, Any]]:
        return [
            {"key": n.key, "depth": n.depth, "via": n.via, "events": sorted(n.events)}
            for n in nodes.values()
            if n.kind == kind
        ]

    key = scope.key
    return {
        "identifier": {"key": key.item_key().canonical(), "digitalLink": key.digital_link()},
        "serials": of("serial"),
        "containers": of("container"),
        "products": of("product"),
        "receivedBy": [
            {**r, "first": r["first"].isoformat(), "events": sorted(r["events"])}
            for r in receipts.values()
        ],
        "holders": sorted(holders, key=lambda h: (h["key"], h["enterpriseId"])),
        "events": sorted(events),
        # Claims about these goods the trust rules do not believe: kept out of the trace.
        "notBelieved": [
            {
                "index": i,
                "by": names.get(row.enterprise_id) if row.enterprise_id else None,
                "enterpriseId": row.enterprise_id,
                "eventTime": row.event_time.isoformat(),
            }
            | scope.custody.verdict(i).to_json()
            | {"entitled": False}
            for i, row in sorted(scope.unbelieved.items())
        ],
        "truncated": scope.truncated,
    }
