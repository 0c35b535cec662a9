"""Arrivals at catalog ports with their products, catalog matches and spot-check decisions.

Everything a decision depends on (the catalog versions in force, the products' creating
events and their country of origin) is read from entries *before* the arrival, so a
decision is a pure function of signed, recorded data."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import asyncpg

from traceledger.ingest.catalogs.document import (
    PORT_PATH,
)
from traceledger.inspect.catalogs.matching import (
    EntryCache,
    find_matches,
    match_json,
    product_facts,
)
from traceledger.inspect.catalogs.sampling import (
    DEFAULT_BASE_RATE,
    SAMPLING_METHOD,
    first_covering_checkpoint,
    sampling_draw,
)
from traceledger.inspect.catalogs.versions import (
    CatalogVersion,
    in_force,
    load_versions,
)
from traceledger.standards.epcis import utc_iso
from traceledger.store.conn import Conn
from traceledger.tlog.leaf import Leaf
from traceledger.tlog.note import b64encode

ARRIVAL_STEPS = ("arriving", "receiving")


# The identifiers an arrival is about (the places and parties it names are not sampled).
UNIT_ROLES = ("epc", "parent", "child", "class", "childClass")


MAX_CONTAINER_DEPTH = 4  # pallets of cases of cartons of items


class ArrivalSampler:
    """Arrivals at catalog ports, each with its catalog matches and spot-check decision."""

    def __init__(self, pool: asyncpg.Pool, *, base_rate: float = DEFAULT_BASE_RATE) -> None:
        if not 0 <= base_rate <= 1:
            raise ValueError("the base sampling rate must be between 0 and 1")
        self._pool = pool
        self._base_rate = base_rate

    async def arrivals(
        self,
        *,
        since: datetime | None = None,
        until: datetime | None = None,
        port: str | None = None,
        limit: int = 100,
    ) -> dict[str, Any]:
        """Arrivals at catalog ports with their products, catalog matches and sampling."""
        async with self._pool.acquire() as conn:
            versions = await load_versions(conn)
            ports = sorted({p for v in versions for p in v.ports})
            if port is not None:
                ports = [p for p in ports if p == port]
            rows: list[asyncpg.Record] = []
            if ports:
                rows = await conn.fetch(
                    "SELECT e.idx, e.event_id, e.event_time, e.biz_step, e.read_point,"
                    " e.biz_location, en.leaf,"
                    " EXISTS (SELECT 1 FROM events d WHERE d.corrects = e.idx) AS erroneous"
                    " FROM events e JOIN entries en ON en.idx = e.idx"
                    " WHERE e.biz_step = ANY($1::text[]) AND e.corrects IS NULL"
                    " AND ($3::timestamptz IS NULL OR e.event_time >= $3)"
                    " AND ($4::timestamptz IS NULL OR e.event_time < $4)"
                    " AND (substring(e.biz_location FROM '^414/[0-9]{13}') = ANY($2::text[])"
                    "   OR substring(e.read_point FROM '^414/[0-9]{13}') = ANY($2::text[]))"
                    " ORDER BY e.event_time, e.idx LIMIT $5",
                    list(ARRIVAL_STEPS),
                    ports,
                    since,
                    until,
                    limit + 1,
                )
            cache = EntryCache(conn)
            notes: dict[str, str] = {}
            arrivals = []
            for row in rows[:limit]:
                arrival = await self._arrival(conn, row, versions, set(ports), cache, notes)
                if arrival is not None:
                    arrivals.append(arrival)
        return {
            "arrivals": arrivals,
            "truncated": len(rows) > limit,
            "checkpoints": notes,
            "sampling": {"method": SAMPLING_METHOD, "defaultBaseRate": self._base_rate},
        }

    async def _arrival(
        self,
        conn: Conn,
        row: asyncpg.Record,
        versions: Sequence[CatalogVersion],
        ports: set[str],
        cache: EntryCache,
        notes: dict[str, str],
    ) -> dict[str, Any] | None:
        idx: int = row["idx"]
        port = next(
            (p for p in (_port_of(row["biz_location"]), _port_of(row["read_point"])) if p in ports),
            None,
        )
        recorded = datetime.fromtimestamp(
            Leaf.decode(bytes(row["leaf"]), index=idx).record_time_us / 1e6, UTC
        )
        # The versions in force when the arrival was recorded, logged before it.
        applicable = [
            v for v in in_force(versions, recorded, before_idx=idx).values() if port in v.ports
        ]
        if port is None or not applicable:
            return None
        units = [
            (r["key"], r["role"])
            for r in await conn.fetch(
                "SELECT key, role FROM event_keys WHERE idx = $1 AND role = ANY($2::text[])"
                " ORDER BY key, role",
                idx,
                list(UNIT_ROLES),
            )
        ]
        unit_keys = list(dict.fromkeys(k for k, _ in units))
        contents = await _contents(conn, unit_keys, row["event_time"], idx)
        products = await product_facts(
            conn, {k for u in unit_keys for k in [u, *contents.get(u, ())]}, before_idx=idx
        )
        found = await find_matches(cache, applicable, products.values())
        base = max(
            (v.base_rate for v in applicable if v.base_rate is not None), default=self._base_rate
        )
        seed = await first_covering_checkpoint(conn, idx)
        if seed is not None:
            notes[str(seed.size)] = seed.note
        decisions = []
        for unit in unit_keys:
            mine = {unit, *contents.get(unit, ())}
            rates = [e.rate for _, e, p in found if p.key in mine]
            rate = max(rates) if rates else base
            decision: dict[str, Any] = {
                "identifier": unit,
                "rate": rate,
                "matched": bool(rates),
            }
            if seed is not None:
                bits, draw = sampling_draw(seed.root_hash, row["event_id"], unit)
                decision |= {"draw": draw, "drawBits": f"{bits:016x}", "selected": draw < rate}
            decisions.append(decision)
        status = "pending"
        if seed is not None:
            status = "selected" if any(d["selected"] for d in decisions) else "not-selected"
        gtins = sorted({p.gtin for p in products.values()})
        return {
            "index": idx,
            "eventID": row["event_id"],
            "eventTime": utc_iso(row["event_time"]),
            "recordTime": utc_iso(recorded),
            "bizStep": row["biz_step"],
            "port": port,
            "declaredErroneous": row["erroneous"],
            "identifiers": [
                {"key": k, "role": r, "contents": sorted(contents.get(k, ()))} for k, r in units
            ],
            "products": [
                {
                    "key": p.key,
                    "gtin": p.gtin,
                    "countryOfOrigin": sorted(p.countries),
                }
                for p in sorted(products.values(), key=lambda p: p.key)
            ],
            "gtins": gtins,
            "countriesOfOrigin": sorted({c for p in products.values() for c in p.countries}),
            "catalogs": [
                {"catalog": v.catalog, "version": v.version, "index": v.idx} for v in applicable
            ],
            "matches": [match_json(v, e, p) for v, e, p in found],
            "flagged": bool(found),
            "sampling": {
                "status": status,
                "seed": None if seed is None else b64encode(seed.root_hash),
                "checkpointSize": None if seed is None else seed.size,
                "baseRate": base,
                "decisions": decisions,
            },
        }


def _port_of(location: str | None) -> str | None:
    if location is None:
        return None
    match = PORT_PATH.match(location)
    return match.group(0) if match else None


async def _contents(
    conn: Conn, units: list[str], at: datetime, before_idx: int
) -> dict[str, set[str]]:
    """What each container held at `at` (AggregationEvents logged before `before_idx`)."""
    out: dict[str, set[str]] = {}
    for unit in units:
        held: set[str] = set()
        frontier, seen = {unit}, {unit}
        for _ in range(MAX_CONTAINER_DEPTH):
            if not frontier:
                break
            inside = await _held_by(conn, frontier, at, before_idx)
            found = set().union(*inside.values()) if inside else set()
            held |= found
            frontier = found - seen
            seen |= found
        if held:
            out[unit] = held
    return out


async def _held_by(
    conn: Conn, parents: set[str], at: datetime, before_idx: int
) -> dict[str, set[str]]:
    rows = await conn.fetch(
        "SELECT p.key AS parent, e.action,"
        " array(SELECT c.key FROM event_keys c WHERE c.idx = e.idx"
        "       AND c.role IN ('child', 'childClass') ORDER BY c.key) AS children"
        " FROM event_keys p JOIN events e ON e.idx = p.idx"
        " WHERE p.key = ANY($1::text[]) AND p.role = 'parent'"
        " AND e.event_type = 'AggregationEvent' AND e.corrects IS NULL"
        " AND e.idx < $2 AND e.event_time <= $3"
        " AND NOT EXISTS (SELECT 1 FROM events d WHERE d.corrects = e.idx AND d.idx < $2)"
        " ORDER BY e.event_time, e.idx",
        list(parents),
        before_idx,
        at,
    )
    held: dict[str, set[str]] = {}
    for r in rows:
        children = set(r["children"])
        mine = held.setdefault(r["parent"], set())
        if r["action"] == "DELETE":
            if children:
                mine -= children
            else:
                mine.clear()  # a DELETE without children empties the container
        else:
            mine |= children
    return held
