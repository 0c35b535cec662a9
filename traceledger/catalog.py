"""Risk catalogs in the log, port arrivals, and auditable random sampling of arrivals.

A catalog version (the high-risk product catalog or the port special-control catalog,
进口消费品高风险产品目录 / 口岸特别管控目录) is a JSON document an authority signs as a DSSE
envelope. It is appended to the log as one entry, so every version ever in force stays
auditable, and the indexer derives the catalog tables from those entries.

Arrivals at a port are sampled for spot checks (口岸验证抽查) with the log's own public
randomness: the seed is the root hash of the first signed checkpoint covering the
arrival. Everything else a decision depends on (the catalog versions in force, the
products' creating events and their country of origin) is read from entries *before*
the arrival, so a decision is a pure function of signed, recorded data: anyone holding
the log can recompute it, and nobody knew the seed before the arrival was sequenced.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import re
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import asyncpg

from traceledger import dsse, registry
from traceledger.capture import load_json, parse_envelope
from traceledger.db import Conn
from traceledger.epcis import ilmd_fact, parse_time
from traceledger.errors import (
    ForbiddenError,
    IdentifierError,
    TraceledgerError,
    UnsupportedMediaError,
)
from traceledger.gs1 import (
    GS1Key,
    normalize_gtin,
    parse_digital_link,
    parse_identifier,
    parse_index_key,
)
from traceledger.leaf import Leaf, sha256
from traceledger.sequencer import Appended, Entry, Sequencer, stored_receipt

log = logging.getLogger(__name__)

CATALOG_TYPE = "traceledger:RiskCatalog"
PAYLOAD_TYPE = "application/vnd.traceledger.catalog+json"
CATALOGS = ("high-risk", "port-special-control")
DEFAULT_BASE_RATE = 0.02  # share of arrivals matching no entry that are still sampled
ARRIVAL_STEPS = ("arriving", "receiving")
# The identifiers an arrival is about (the places and parties it names are not sampled).
UNIT_ROLES = ("epc", "parent", "child", "class", "childClass")
MAX_ENTRIES = 100_000
MAX_PORTS = 1_000
MAX_CONTAINER_DEPTH = 4  # pallets of cases of cartons of items
SAMPLING_METHOD = (
    "draw = int.from_bytes(SHA-256(seed || UTF-8(eventID) || UTF-8(identifier))[:8], 'big')"
    " / 2**64; selected when draw < rate; seed = root hash of the first signed checkpoint"
    " whose size exceeds the arrival's log index"
)

# Serializes catalog publication across processes (version check, then append).
_PUBLISH_LOCK = 0x7472_6163_656C_0006
_MARKER = json.dumps(CATALOG_TYPE).encode()
_TOP_MEMBERS = frozenset(
    {"type", "catalog", "version", "effectiveFrom", "entries", "ports", "baseInspectionRate"}
    | {"description"}
)
_ENTRY_MEMBERS = frozenset(
    {"gtin", "companyPrefix", "countryOfOrigin", "productClass", "reason", "inspectionRate"}
)
_PORT = re.compile(r"414/([0-9]{13})")
_COUNTRY = re.compile(r"[A-Z]{2}")
_PREFIX = re.compile(r"[0-9]{4,12}")
_CLASS_FACTS = ("gpcCategoryCode", "gpcBrickCode", "productClass")
_NAME_FACTS = ("regulatedProductName", "productName", "descriptionShort")


class InvalidCatalogError(TraceledgerError):
    """The catalog document is not valid; `errors` lists every problem with its pointer."""

    def __init__(self, message: str, errors: list[dict[str, object]]) -> None:
        super().__init__(message)
        self.errors = errors


class StaleCatalogError(TraceledgerError):
    """The version is not greater than the latest recorded version of that catalog."""

    def __init__(self, message: str, current: int) -> None:
        super().__init__(message)
        self.current = current


# ---------------------------------------------------------------------------------------------
# The document


@dataclass(frozen=True, slots=True)
class CatalogEntry:
    position: int
    gtin: str | None
    company_prefix: str | None
    country: str | None
    product_class: str | None
    reason: str
    rate: float

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"entry": self.position}
        if self.gtin is not None:
            out["gtin"] = self.gtin
        if self.company_prefix is not None:
            out["companyPrefix"] = self.company_prefix
        out["countryOfOrigin"] = self.country
        out["productClass"] = self.product_class
        out["reason"] = self.reason
        out["inspectionRate"] = self.rate
        return out


@dataclass(frozen=True, slots=True)
class CatalogDoc:
    catalog: str
    version: int
    effective_from: datetime
    ports: tuple[str, ...]
    entries: tuple[CatalogEntry, ...]
    base_rate: float | None
    description: str | None


def canonical_json(document: object) -> bytes:
    """The logged form of a catalog: sorted keys, no insignificant space, UTF-8."""
    return json.dumps(
        document, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def _pointer(*parts: str | int) -> str:
    return "".join("/" + str(p).replace("~", "~0").replace("/", "~1") for p in parts)


def _rate(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float) or not 0 <= value <= 1:
        return None
    return float(value)


def _text(value: object, most: int) -> str | None:
    if not isinstance(value, str) or not value.strip() or len(value) > most:
        return None
    return value


def parse_catalog(document: object) -> CatalogDoc:
    """Validate a catalog document, naming every problem with a JSON pointer."""
    problems: list[dict[str, object]] = []

    def bad(pointer: str, reason: str) -> None:
        problems.append({"pointer": pointer, "reason": reason})

    if not isinstance(document, Mapping):
        raise InvalidCatalogError(
            "the catalog is not a JSON object", [{"pointer": "", "reason": "must be an object"}]
        )
    for name in sorted(set(document) - _TOP_MEMBERS):
        bad(_pointer(name), f"unknown member; allowed: {', '.join(sorted(_TOP_MEMBERS))}")
    if document.get("type") != CATALOG_TYPE:
        bad("/type", f"must be {CATALOG_TYPE!r}")
    catalog = document.get("catalog")
    if catalog not in CATALOGS:
        bad("/catalog", f"must be one of {', '.join(CATALOGS)}")
    version = document.get("version")
    if isinstance(version, bool) or not isinstance(version, int) or not 1 <= version < 2**53:
        bad("/version", "must be a positive integer")
    effective = None
    try:
        effective = parse_time(document.get("effectiveFrom"))
    except ValueError as exc:
        bad("/effectiveFrom", f"must be an RFC 3339 date-time with offset: {exc}")
    base_rate = None
    if "baseInspectionRate" in document:
        base_rate = _rate(document["baseInspectionRate"])
        if base_rate is None:
            bad("/baseInspectionRate", "must be a number from 0 to 1")
    description = None
    if "description" in document:
        description = _text(document["description"], 2000)
        if description is None:
            bad("/description", "must be a non-empty string of at most 2000 characters")

    ports: list[str] = []
    raw_ports = document.get("ports")
    if not isinstance(raw_ports, list) or len(raw_ports) > MAX_PORTS:
        bad("/ports", f"must be a list of at most {MAX_PORTS} port locations '414/<GLN>'")
    else:
        for i, port in enumerate(raw_ports):
            try:
                ports.append(port_key(port))
            except IdentifierError as exc:
                bad(_pointer("ports", i), str(exc))

    entries: list[CatalogEntry] = []
    raw_entries = document.get("entries")
    if not isinstance(raw_entries, list) or len(raw_entries) > MAX_ENTRIES:
        bad("/entries", f"must be a list of at most {MAX_ENTRIES} entries")
    else:
        for i, raw in enumerate(raw_entries):
            entry = _parse_entry(raw, i, bad)
            if entry is not None:
                entries.append(entry)

    if problems:
        raise InvalidCatalogError(f"{len(problems)} problem(s) in the catalog document", problems)
    # Narrowing for the type checker: no problems means all three were valid.
    assert isinstance(catalog, str)
    assert isinstance(version, int)
    assert effective is not None
    return CatalogDoc(
        catalog,
        version,
        effective,
        tuple(dict.fromkeys(ports)),
        tuple(entries),
        base_rate,
        description,
    )


def _parse_entry(raw: object, i: int, bad: Callable[[str, str], None]) -> CatalogEntry | None:
    where = _pointer("entries", i)
    if not isinstance(raw, Mapping):
        bad(where, "an entry is an object")
        return None
    errors = [
        (_pointer("entries", i, n), "unknown member") for n in sorted(set(raw) - _ENTRY_MEMBERS)
    ]
    gtin = prefix = None
    if ("gtin" in raw) == ("companyPrefix" in raw):
        errors.append((where, "an entry names exactly one of gtin or companyPrefix"))
    elif "gtin" in raw:
        value = raw["gtin"]
        if not isinstance(value, str):
            errors.append((where + "/gtin", "a GTIN is a string of digits"))
        else:
            try:
                gtin = normalize_gtin(value)
            except IdentifierError as exc:
                errors.append((where + "/gtin", str(exc)))
    else:
        value = raw["companyPrefix"]
        if isinstance(value, str) and _PREFIX.fullmatch(value):
            prefix = value
        else:
            errors.append((where + "/companyPrefix", "a GS1 company prefix is 4 to 12 digits"))
    country = raw.get("countryOfOrigin")
    if country is not None and not (isinstance(country, str) and _COUNTRY.fullmatch(country)):
        errors.append((where + "/countryOfOrigin", "an ISO 3166-1 alpha-2 code such as 'NZ'"))
    product_class = raw.get("productClass")
    if product_class is not None and _text(product_class, 200) is None:
        errors.append((where + "/productClass", "a non-empty string of at most 200 characters"))
    reason = _text(raw.get("reason"), 1000)
    if reason is None:
        errors.append((where + "/reason", "required: a non-empty string (at most 1000)"))
    rate = _rate(raw.get("inspectionRate"))
    if rate is None:
        errors.append((where + "/inspectionRate", "required: a number from 0 to 1"))
    for pointer, reason_text in errors:
        bad(pointer, reason_text)
    if errors or reason is None or rate is None:
        return None
    return CatalogEntry(
        i,
        gtin,
        prefix,
        country if isinstance(country, str) else None,
        product_class if isinstance(product_class, str) else None,
        reason,
        rate,
    )


def port_key(value: object) -> str:
    """A port location as '414/<GLN-13>' (check digit verified); URNs and Digital Links too."""
    if not isinstance(value, str):
        raise IdentifierError("a port is a string '414/<GLN>'")
    match = _PORT.fullmatch(value)
    if match is not None:
        key: GS1Key | None = parse_digital_link("https://id.gs1.org/" + value)
    else:
        key = parse_identifier(value)
    if key is None or key.scheme != "gln":
        raise IdentifierError(f"{value[:80]!r} is not a port location '414/<GLN>'")
    return f"414/{key.key}"


# ---------------------------------------------------------------------------------------------
# Publishing


@dataclass(frozen=True, slots=True)
class Published:
    body: bytes
    replayed: bool


async def _authority_signer(conn: Conn, envelope: dsse.Envelope) -> registry.Enterprise:
    """The signing enterprise, verified exactly as capture verifies; it must be an authority."""
    enterprise = await registry.verified_signer(conn, envelope)
    if not enterprise.is_authority:
        raise ForbiddenError(
            f"{enterprise.name} is not an authority; only authorities publish risk catalogs"
        )
    return enterprise


async def latest_version(conn: Conn, catalog: str) -> int | None:
    """The highest recorded version of `catalog`, counting entries not yet indexed."""
    # The unindexed tail first: whatever the indexer commits meanwhile is then in the table.
    tail = await conn.fetch(
        "SELECT payload FROM entries WHERE idx >= (SELECT next_idx FROM index_state)"
        " AND payload IS NOT NULL AND position($1::bytea IN payload) > 0",
        _MARKER,
    )
    found: list[int] = []
    for row in tail:
        doc = _catalog_of(bytes(row["payload"]), None)
        if doc is not None and doc.catalog == catalog:
            found.append(doc.version)
    indexed = await conn.fetchval(
        "SELECT max(version) FROM catalog_versions WHERE catalog = $1", catalog
    )
    if indexed is not None:
        found.append(int(indexed))
    return max(found, default=None)


def _catalog_of(payload: bytes, idx: int | None) -> CatalogDoc | None:
    """The catalog a logged payload holds, or None (another kind of entry, or invalid)."""
    if _MARKER not in payload:
        return None
    try:
        obj = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(obj, dict) or obj.get("type") != CATALOG_TYPE:
        return None
    try:
        return parse_catalog(obj)
    except InvalidCatalogError as exc:
        log.warning("entry %s holds an invalid catalog: %s", idx, exc.errors[:3])
        return None


# ---------------------------------------------------------------------------------------------
# Indexing (called by the indexer for every entry that is not an EPCIS event)


async def index_entry(conn: Conn, idx: int, payload: bytes | None, signer: int | None) -> None:
    """Derive catalog_versions and catalog_entries from one log entry, if it is a catalog.

    Indexing runs in log order, so the rule "a version must exceed the latest one" gives
    the same tables on every rebuild.
    """
    if payload is None:
        return
    doc = _catalog_of(payload, idx)
    if doc is None:
        return
    row = await conn.fetchrow(
        "SELECT max(version) AS latest, bool_or(idx = $2) AS seen"
        " FROM catalog_versions WHERE catalog = $1",
        doc.catalog,
        idx,
    )
    if row is not None and row["seen"]:
        return
    if row is not None and row["latest"] is not None and doc.version <= row["latest"]:
        log.warning(
            "entry %d: %s version %d is not newer than %d; not indexed",
            idx,
            doc.catalog,
            doc.version,
            row["latest"],
        )
        return
    await conn.execute(
        "INSERT INTO catalog_versions"
        " (catalog, version, idx, effective_from, ports, base_rate, description, signer)"
        " VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        doc.catalog,
        doc.version,
        idx,
        doc.effective_from,
        list(doc.ports),
        doc.base_rate,
        doc.description,
        signer,
    )
    if doc.entries:
        await conn.copy_records_to_table(
            "catalog_entries",
            records=[
                (
                    doc.catalog,
                    doc.version,
                    e.position,
                    e.gtin,
                    e.company_prefix,
                    e.country,
                    e.product_class,
                    e.reason,
                    e.rate,
                )
                for e in doc.entries
            ],
            columns=[
                "catalog",
                "version",
                "position",
                "gtin",
                "company_prefix",
                "country",
                "product_class",
                "reason",
                "inspection_rate",
            ],
        )


# ---------------------------------------------------------------------------------------------
# Reading the indexed catalogs


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
            "effectiveFrom": _iso(self.effective_from),
            "status": state,
            "ports": list(self.ports),
            "baseInspectionRate": self.base_rate,
            "description": self.description,
            "signer": {"enterpriseId": self.signer, "name": self.signer_name},
            "entryCount": self.entry_count,
        }


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


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


class _EntryCache:
    """Entries of the versions one request looks at, each loaded once."""

    def __init__(self, conn: Conn) -> None:
        self._conn = conn
        self._loaded: dict[tuple[str, int], tuple[CatalogEntry, ...]] = {}

    async def of(self, v: CatalogVersion) -> tuple[CatalogEntry, ...]:
        key = (v.catalog, v.version)
        if key not in self._loaded:
            self._loaded[key] = await load_entries(self._conn, v.catalog, v.version)
        return self._loaded[key]


# ---------------------------------------------------------------------------------------------
# Products, their origin, and matching


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
        "SELECT k.key, en.payload FROM event_keys k"
        " JOIN events e ON e.idx = k.idx JOIN entries en ON en.idx = k.idx"
        " WHERE k.key = ANY($1::text[]) AND e.corrects IS NULL"
        " AND ((e.action = 'ADD' AND k.role IN ('epc', 'class'))"
        "      OR k.role IN ('output', 'outputClass'))"
        " AND ($2::bigint IS NULL OR e.idx < $2)"
        " AND NOT EXISTS (SELECT 1 FROM events d WHERE d.corrects = e.idx"
        "                 AND ($2::bigint IS NULL OR d.idx < $2))"
        " ORDER BY e.idx",
        list(products),
        before_idx,
    )
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


async def _matches(
    cache: _EntryCache, versions: Iterable[CatalogVersion], products: Collection[Product]
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
    found = await _matches(_EntryCache(conn), current.values(), products.values())
    return [match_json(v, e, p) for v, e, p in found]


# ---------------------------------------------------------------------------------------------
# Sampling


def sampling_draw(seed: bytes, event_id: str, identifier: str) -> tuple[int, float]:
    """The 64-bit draw for one identifier of one arrival, and its value in [0, 1)."""
    digest = hashlib.sha256(seed + event_id.encode() + identifier.encode()).digest()
    bits = int.from_bytes(digest[:8], "big")
    return bits, bits / 2**64


@dataclass(frozen=True, slots=True)
class Seed:
    size: int
    root_hash: bytes
    note: str


async def first_covering_checkpoint(conn: Conn, idx: int) -> Seed | None:
    """The first signed checkpoint covering index `idx` (smallest size > idx), if any yet."""
    row = await conn.fetchrow(
        "SELECT size, root_hash, note FROM checkpoints WHERE size > $1 ORDER BY size LIMIT 1", idx
    )
    return None if row is None else Seed(row["size"], bytes(row["root_hash"]), row["note"])


# ---------------------------------------------------------------------------------------------
# The service


class CatalogService:
    def __init__(
        self, pool: asyncpg.Pool, sequencer: Sequencer, *, base_rate: float = DEFAULT_BASE_RATE
    ) -> None:
        if not 0 <= base_rate <= 1:
            raise ValueError("the base sampling rate must be between 0 and 1")
        self._pool = pool
        self._sequencer = sequencer
        self._base_rate = base_rate

    async def publish(self, body: bytes, content_type: str) -> Published:
        """Verify, validate and append one authority-signed catalog version."""
        envelope = parse_envelope(body, content_type)
        body_hash = sha256(body)
        async with self._pool.acquire() as conn:
            await _authority_signer(conn, envelope)
            if envelope.payload_type != PAYLOAD_TYPE:
                raise UnsupportedMediaError(
                    f"payloadType {envelope.payload_type!r} is not accepted here; "
                    f"a catalog is signed as {PAYLOAD_TYPE}"
                )
            stored = await stored_receipt(conn, body_hash)
        if stored is not None:
            return Published(stored, replayed=True)
        document = load_json(envelope.payload, "payload")
        doc = parse_catalog(document)
        payload = canonical_json(document)
        # Shielded: once the version check passed, finish the append under the lock even
        # if the client goes away, so no second equal version can slip in between.
        return await asyncio.shield(self._append(body, body_hash, doc, payload))

    async def _append(
        self, body: bytes, body_hash: bytes, doc: CatalogDoc, payload: bytes
    ) -> Published:
        identity = sha256(payload)
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", _PUBLISH_LOCK)
            logged = await conn.fetchval("SELECT idx FROM entries WHERE identity = $1", identity)
            if logged is None:  # the identical catalog again is a duplicate, not stale
                current = await latest_version(conn, doc.catalog)
                if current is not None and doc.version <= current:
                    raise StaleCatalogError(
                        f"{doc.catalog} version {doc.version} is not newer than the recorded "
                        f"version {current}",
                        current,
                    )

            def build_receipt(appended: list[Appended], tree_size: int) -> bytes:
                return json.dumps(
                    {
                        "envelope": body_hash.hex(),
                        "catalog": doc.catalog,
                        "version": doc.version,
                        "index": appended[0].index,
                        "status": "duplicate" if appended[0].duplicate else "appended",
                        "treeSize": tree_size,
                    },
                    separators=(",", ":"),
                ).encode()

            receipt = await self._sequencer.append_envelope(
                body, [Entry(identity, payload, body)], build_receipt
            )
        return Published(receipt.body, receipt.replayed)

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
            cache = _EntryCache(conn)
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
        cache: _EntryCache,
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
        found = await _matches(cache, applicable, products.values())
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
            "eventTime": _iso(row["event_time"]),
            "recordTime": _iso(recorded),
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
                "seed": None if seed is None else _b64(seed.root_hash),
                "checkpointSize": None if seed is None else seed.size,
                "baseRate": base,
                "decisions": decisions,
            },
        }


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _port_of(location: str | None) -> str | None:
    if location is None:
        return None
    match = _PORT.match(location)
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
