"""Reading the indexed catalogs: versions, their entries, and which version is in force."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from traceledger.ingest.catalogs.document import CATALOGS, CatalogEntry
from traceledger.standards.epcis import utc_iso
from traceledger.store.conn import Conn


@dataclass(frozen=True, slots=True)
class CatalogVersion:
    catalog: str
    version: int
    idx: int
    effective_from: datetime
    ports: tuple[str, ...]
    base_rate: float | None
    description: str | None
    signer: int | None
    signer_name: str | None
    entry_count: int

    def summary(self, now: datetime, current: bool) -> dict[str, Any]:
        state = "current" if current else "scheduled" if self.effective_from > now else "superseded"
        return {
            "catalog": self.catalog,
            "version": self.version,
            "index": self.idx,
            "effectiveFrom": utc_iso(self.effective_from),
            "status": state,
            "ports": list(self.ports),
            "baseInspectionRate": self.base_rate,
            "description": self.description,
            "signer": {"enterpriseId": self.signer, "name": self.signer_name},
            "entryCount": self.entry_count,
        }


async def load_versions(conn: Conn, catalog: str | None = None) -> list[CatalogVersion]:
    rows = await conn.fetch(
        "SELECT v.*, e.name AS signer_name,"
        " (SELECT count(*) FROM catalog_entries c"
        "   WHERE c.catalog = v.catalog AND c.version = v.version) AS entry_count"
        " FROM catalog_versions v LEFT JOIN enterprises e ON e.id = v.signer"
        " WHERE $1::text IS NULL OR v.catalog = $1 ORDER BY v.catalog, v.version",
        catalog,
    )
    return [
        CatalogVersion(
            r["catalog"],
            r["version"],
            r["idx"],
            r["effective_from"],
            tuple(r["ports"]),
            r["base_rate"],
            r["description"],
            r["signer"],
            r["signer_name"],
            r["entry_count"],
        )
        for r in rows
    ]


async def load_entries(conn: Conn, catalog: str, version: int) -> tuple[CatalogEntry, ...]:
    rows = await conn.fetch(
        "SELECT position, gtin, company_prefix, country, product_class, reason, inspection_rate"
        " FROM catalog_entries WHERE catalog = $1 AND version = $2 ORDER BY position",
        catalog,
        version,
    )
    return tuple(
        CatalogEntry(
            r["position"],
            r["gtin"],
            r["company_prefix"],
            r["country"],
            r["product_class"],
            r["reason"],
            r["inspection_rate"],
        )
        for r in rows
    )


def in_force(
    versions: Iterable[CatalogVersion], at: datetime, before_idx: int | None = None
) -> dict[str, CatalogVersion]:
    """Per catalog, the highest version effective at `at` (and logged before `before_idx`)."""
    best: dict[str, CatalogVersion] = {}
    for v in versions:
        if before_idx is not None and v.idx >= before_idx:
            continue
        if v.effective_from > at:
            continue
        if v.catalog not in best or v.version > best[v.catalog].version:
            best[v.catalog] = v
    return best


class CatalogReader:
    """The catalogs as the index holds them: every version, and the one in force now."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def catalogs(self) -> dict[str, Any]:
        async with self._pool.acquire() as conn:
            versions = await load_versions(conn)
            now: datetime = await conn.fetchval("SELECT now()")
        current = in_force(versions, now)
        out = []
        for name in CATALOGS:
            mine = [v for v in versions if v.catalog == name]
            cur = current.get(name)
            out.append(
                {
                    "catalog": name,
                    "current": cur.summary(now, True) if cur else None,
                    "latestVersion": mine[-1].version if mine else None,
                    "versions": len(mine),
                    "href": f"/v1/catalogs/{name}",
                }
            )
        return {"catalogs": out}

    async def catalog(self, name: str, version: int | None = None) -> dict[str, Any] | None:
        """One catalog: the version in force with its entries, and every version recorded.

        With `version`, that version's entries are shown as well ("selected").
        """
        async with self._pool.acquire() as conn:
            versions = await load_versions(conn, name)
            now: datetime = await conn.fetchval("SELECT now()")
            current = in_force(versions, now).get(name)
            selected = None
            if version is not None:
                selected = next((v for v in versions if v.version == version), None)
                if selected is None:
                    return None

            async def detail(v: CatalogVersion | None) -> dict[str, Any] | None:
                if v is None:
                    return None
                entries = await load_entries(conn, name, v.version)
                return {**v.summary(now, v is current), "entries": [e.to_json() for e in entries]}

            if not versions:
                return None
            answer = {
                "catalog": name,
                "current": await detail(current),
                "versions": [v.summary(now, v is current) for v in versions],
            }
            if version is not None:
                answer["selected"] = await detail(selected)
        return answer
