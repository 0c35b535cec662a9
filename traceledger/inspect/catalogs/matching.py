"""Which catalog entries a product matches, from the facts its creating events recorded."""

from __future__ import annotations

import json
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from traceledger.accounts.parties import load_parties
from traceledger.ingest.catalogs.document import CatalogEntry
from traceledger.inspect.catalogs.versions import (
    CatalogVersion,
    in_force,
    load_entries,
    load_versions,
)
from traceledger.inspect.entitlement import verdict_of
from traceledger.standards.epcis import ilmd_fact
from traceledger.standards.gs1 import (
    GS1Key,
    parse_index_key,
)
from traceledger.store.conn import Conn
from traceledger.trust.claims import Claim

_CLASS_FACTS = ("gpcCategoryCode", "gpcBrickCode", "productClass")


_NAME_FACTS = ("regulatedProductName", "productName", "descriptionShort")


class EntryCache:
    """Entries of the versions one request looks at, each loaded once."""

    def __init__(self, conn: Conn) -> None:
        self._conn = conn
        self._loaded: dict[tuple[str, int], tuple[CatalogEntry, ...]] = {}

    async def of(self, v: CatalogVersion) -> tuple[CatalogEntry, ...]:
        key = (v.catalog, v.version)
        if key not in self._loaded:
            self._loaded[key] = await load_entries(self._conn, v.catalog, v.version)
        return self._loaded[key]


@dataclass(slots=True)
class Product:
    key: str
    gtin: str
    countries: set[str] = field(default_factory=set)
    classes: set[str] = field(default_factory=set)  # casefolded codes
    names: set[str] = field(default_factory=set)  # casefolded product names


def _strings(value: object) -> list[str]:
    """Plain strings from an ILMD value (a string, a language-tagged value, or a list)."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, Mapping):
        return _strings(value.get("@value"))
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


async def product_facts(
    conn: Conn, keys: Iterable[str], before_idx: int | None = None
) -> dict[str, Product]:
    """GTIN, countries of origin and product classes of trade-item keys.

    Facts come from the ILMD of the events that created each key (commissioning ADD, or
    a transformation output), not declared erroneous; with `before_idx`, only from entries
    logged before it, so the answer never changes once that index is sequenced.
    """
    products: dict[str, Product] = {}
    for key in keys:
        parsed = parse_index_key(key)
        if parsed is not None and parsed.scheme == "gtin":
            products[parsed.item_key().canonical()] = Product(key, parsed.key)
    if not products:
        return {}
    rows = await conn.fetch(
        "SELECT k.key, en.payload, e.idx, e.enterprise_id, e.event_time, e.event_type,"
        " e.action, e.biz_step, e.disposition, a.keys, a.roles"
        " FROM event_keys k"
        " JOIN events e ON e.idx = k.idx JOIN entries en ON en.idx = k.idx"
        " CROSS JOIN LATERAL (SELECT array_agg(x.key) AS keys, array_agg(x.role) AS roles"
        "                     FROM event_keys x WHERE x.idx = e.idx) a"
        " WHERE k.key = ANY($1::text[]) AND e.corrects IS NULL AND NOT e.declaration"
        " AND ((e.action = 'ADD' AND k.role IN ('epc', 'class'))"
        "      OR k.role IN ('output', 'outputClass'))"
        " AND ($2::bigint IS NULL OR e.idx < $2)"
        # Declared erroneous: the index links a declaration only to its own signer's
        # events, or an authority's to anyone's (the trust rule for corrections), so an
        # eventID repeated by someone else retracts nothing here.
        " AND NOT EXISTS (SELECT 1 FROM events d WHERE d.corrects = e.idx"
        "                 AND ($2::bigint IS NULL OR d.idx < $2))"
        " ORDER BY e.idx",
        list(products),
        before_idx,
    )
    # Only what the goods' owner (or an enterprise it delegated) says they are counts.
    parties = await load_parties(conn, {r["enterprise_id"] for r in rows} - {None})
    rows = [r for r in rows if verdict_of(_claim(r), parties).believed]
    for row in rows:
        if row["payload"] is None:
            continue  # redacted
        try:
            event = json.loads(row["payload"])
        except ValueError:
            continue
        ilmd = event.get("ilmd") if isinstance(event, dict) else None
        product = products[row["key"]]
        for country in _strings(ilmd_fact(ilmd, "countryOfOrigin")):
            product.countries.add(country.strip().upper())
        for name in _CLASS_FACTS:
            product.classes.update(s.strip().casefold() for s in _strings(ilmd_fact(ilmd, name)))
        for name in _NAME_FACTS:
            product.names.update(s.casefold() for s in _strings(ilmd_fact(ilmd, name)))
    return {p.key: p for p in products.values()}


def _claim(row: Any) -> Claim:
    return Claim(
        row["idx"],
        row["enterprise_id"],
        row["event_time"],
        row["event_type"],
        row["action"],
        row["biz_step"],
        row["disposition"],
        tuple(zip(row["keys"], row["roles"], strict=True)),
    )


def entry_matches(entry: CatalogEntry, product: Product) -> bool:
    """Selector (GTIN or company prefix) and every optional condition must hold.

    An entry that names a country matches only products whose recorded origin is that
    country; a product class matches a recorded GPC/class code exactly, or a product
    name containing it (case-insensitive).
    """
    if entry.gtin is not None and entry.gtin != product.gtin:
        return False
    if entry.company_prefix is not None and not GS1Key("gtin", product.gtin).owned_by(
        entry.company_prefix
    ):
        return False
    if entry.country is not None and entry.country not in product.countries:
        return False
    if entry.product_class is not None:
        wanted = entry.product_class.strip().casefold()
        if wanted not in product.classes and not any(wanted in n for n in product.names):
            return False
    return True


def match_json(v: CatalogVersion, entry: CatalogEntry, product: Product) -> dict[str, Any]:
    return {
        "catalog": v.catalog,
        "version": v.version,
        "catalogIndex": v.idx,
        **entry.to_json(),
        "key": product.key,
    }


async def find_matches(
    cache: EntryCache, versions: Iterable[CatalogVersion], products: Collection[Product]
) -> list[tuple[CatalogVersion, CatalogEntry, Product]]:
    found = []
    for v in sorted(versions, key=lambda v: v.catalog):
        entries = await cache.of(v)
        for product in products:
            found += [(v, e, product) for e in entries if entry_matches(e, product)]
    return found


async def catalog_hits(conn: Conn, keys: list[str], country: str | None) -> list[dict[str, Any]]:
    """Entries of the catalogs currently in force that match any of `keys` (for the origin view).

    `keys` are GS1 keys ('01/<gtin>/10/<lot>', URNs or Digital Links; others are ignored).
    `country` is the origin the caller knows; None reads it from the creating events.
    """
    versions = await load_versions(conn)
    now: datetime = await conn.fetchval("SELECT now()")
    current = in_force(versions, now)
    if not current or not keys:
        return []
    products = await product_facts(conn, keys)
    if country is not None:
        for p in products.values():
            p.countries = {country.strip().upper()}
    found = await find_matches(EntryCache(conn), current.values(), products.values())
    return [match_json(v, e, p) for v, e, p in found]
