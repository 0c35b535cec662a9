"""The risk catalog document and its strict parser.

A catalog version (the high-risk product catalog or the port special-control catalog,
进口消费品高风险产品目录 / 口岸特别管控目录) is a JSON document an authority signs as a DSSE
envelope. It is appended to the log as one entry, so every version ever in force stays
auditable, and the indexer derives the catalog tables from those entries.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from traceledger.errors import (
    IdentifierError,
    InvalidCatalogError,
)
from traceledger.standards.epcis import parse_time
from traceledger.standards.gs1 import (
    GS1Key,
    normalize_gtin,
    parse_digital_link,
    parse_identifier,
)

log = logging.getLogger(__name__)


CATALOG_TYPE = "traceledger:RiskCatalog"


PAYLOAD_TYPE = "application/vnd.traceledger.catalog+json"


CATALOGS = ("high-risk", "port-special-control")


MAX_ENTRIES = 100_000


MAX_PORTS = 1_000


# Serializes catalog publication across processes (version check, then append).
CATALOG_MARKER = json.dumps(CATALOG_TYPE).encode()


_TOP_MEMBERS = frozenset(
    {"type", "catalog", "version", "effectiveFrom", "entries", "ports", "baseInspectionRate"}
    | {"description"}
)


_ENTRY_MEMBERS = frozenset(
    {"gtin", "companyPrefix", "countryOfOrigin", "productClass", "reason", "inspectionRate"}
)


PORT_PATH = re.compile(r"414/([0-9]{13})")


_COUNTRY = re.compile(r"[A-Z]{2}")


_PREFIX = re.compile(r"[0-9]{4,12}")


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
    match = PORT_PATH.fullmatch(value)
    if match is not None:
        key: GS1Key | None = parse_digital_link("https://id.gs1.org/" + value)
    else:
        key = parse_identifier(value)
    if key is None or key.scheme != "gln":
        raise IdentifierError(f"{value[:80]!r} is not a port location '414/<GLN>'")
    return f"414/{key.key}"


def catalog_in_payload(payload: bytes, idx: int | None) -> CatalogDoc | None:
    """The catalog a logged payload holds, or None (another kind of entry, or invalid)."""
    if CATALOG_MARKER not in payload:
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
