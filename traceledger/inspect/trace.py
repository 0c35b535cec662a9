"""Tracing for inspectors and regulators: where a lot came from, and where it went.

Origin walks upstream (the item's lot, its containers, transformation inputs,
recursively); forward trace walks downstream (a lot's serials, the containers they
were packed into, the lots made from them, recursively) and says who received any of
it and who still holds it: the scope of a recall. Both are depth-limited and never
visit a key twice, so cyclic or malicious data cannot make them loop.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

import asyncpg

from traceledger.errors import NotFoundError, RangeError
from traceledger.inspect.catalogs.matching import catalog_hits
from traceledger.inspect.holding import ITEM_ROLES, RECEIVING_STEPS, Holding, holdings
from traceledger.lookup.history import EventRow, HistoryService, events_naming
from traceledger.standards.gs1 import GS1Key, parse_index_key

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
        history = await self._history.history(key, inspector=True)
        nodes: dict[str, dict[str, Any]] = {}
        edges: list[dict[str, Any]] = []
        for event in history["events"]:
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
            "treeSize": history["treeSize"],
            "checkpoint": history["checkpoint"],
        }

    async def forward(self, key: GS1Key, depth: int = MAX_DEPTH) -> dict[str, Any]:
        """Everything downstream of a lot or item, and who received and still holds it."""
        async with self._pool.acquire() as conn:
            scope = await forward_scope(conn, key, depth)
            names = await _names(conn, {r.enterprise_id for r in scope.events.values()})
        return _forward_answer(scope, names)

    async def recalls(self, limit: int = 50) -> list[dict[str, Any]]:
        """Recall events still in force, newest first, each with its forward-trace scope."""
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT e.idx, e.event_time, en.name,"
                " array_agg(k.key) FILTER (WHERE k.role IN ('epc', 'class')) AS keys"
                " FROM events e JOIN event_keys k USING (idx)"
                " LEFT JOIN enterprises en ON en.id = e.enterprise_id"
                " WHERE e.disposition = 'recalled' AND e.corrects IS NULL"
                " AND NOT EXISTS (SELECT 1 FROM events d WHERE d.corrects = e.idx)"
                " GROUP BY e.idx, en.name ORDER BY e.event_time DESC LIMIT $1",
                limit,
            )
        out = []
        for r in rows:
            scopes = []
            for k in r["keys"] or []:
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
                    "index": r["idx"],
                    "eventTime": r["event_time"].isoformat(),
                    "by": r["name"],
                    "scope": scopes,
                }
            )
        return out


@dataclass
class Scope:
    """A forward trace: the keys reached (with how), the events naming them, and whether
    a limit cut the walk short."""

    key: GS1Key
    nodes: dict[str, _Node]
    events: dict[int, EventRow]
    truncated: bool

    def holdings(self) -> list[Holding]:
        """Who holds any of the goods reached, as the events tell."""
        return holdings(self.events.values(), set(self.nodes))


async def forward_scope(
    conn: Any, key: GS1Key, depth: int = MAX_DEPTH, *, upto: int | None = None
) -> Scope:
    """Walk downstream from a lot or item: its serials, the containers they went into, the
    products made from them, recursively, at most `depth` steps and MAX_KEYS keys. With
    `upto`, as the log stood at that index (a recall's scope when it was logged)."""
    check_depth(depth)
    start = key.item_key().canonical()
    nodes: dict[str, _Node] = {start: _Node(start, "item" if key.serial else "lot", 0, None)}
    events: dict[int, EventRow] = {}
    frontier = [start]
    truncated = False
    level = 0
    while frontier and level <= depth:
        if len(nodes) > MAX_KEYS:
            truncated = True
            break
        rows = await events_naming(conn, frontier, limit=MAX_KEYS * 4, lot_members=True)
        wanted = set(frontier)
        frontier = []
        for row in rows:
            if upto is not None and row.idx > upto:
                continue
            events[row.idx] = row
            for k, role in row.keys:
                if k in wanted:
                    nodes[k].events.add(row.idx)
                    frontier += _downstream(row, k, role, nodes, level)
        level += 1
    if frontier:
        truncated = True
    if len(nodes) == 1 and not events:
        raise NotFoundError(f"nothing is recorded about {start}")
    return Scope(key, nodes, events, truncated)


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
        named = [k for k, r in row.keys if k in nodes and r in ITEM_ROLES]
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
        "truncated": scope.truncated,
    }
