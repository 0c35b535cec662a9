"""CBV 2.0 standard vocabularies and their three spellings.

EPCIS 2.0 documents carry CBV values as bare short names (``shipping``), CBV 2.0 web URIs
(``https://ref.gs1.org/cbv/BizStep-shipping``) or EPCIS 1.x URNs
(``urn:epcglobal:cbv:bizstep:shipping``); all three mean the same value, so the ledger
stores the short name. The value lists are CBV 2.0's, as the official EPCIS 2.0 JSON-LD
context (``cbv:BizStep-*``, ``cbv:Disp-*``, ``cbv:BTT-*``, ``cbv:SDT-*``, ``cbv:ER-*``,
``cbv:Comp-*``) and JSON Schema enumerate them.
"""

from __future__ import annotations

import re

__all__ = [
    "BIZ_STEPS",
    "BIZ_TRANSACTION_TYPES",
    "DISPOSITIONS",
    "ERROR_REASONS",
    "SENSOR_COMPONENTS",
    "SOURCE_DEST_TYPES",
    "VOCABULARIES",
    "normalize",
    "uri",
    "urn",
]

BIZ_STEPS: frozenset[str] = frozenset(
    {
        "accepting",
        "arriving",
        "assembling",
        "collecting",
        "commissioning",
        "consigning",
        "creating_class_instance",
        "cycle_counting",
        "decommissioning",
        "departing",
        "destroying",
        "disassembling",
        "dispensing",
        "encoding",
        "entering_exiting",
        "holding",
        "inspecting",
        "installing",
        "killing",
        "loading",
        "other",
        "packing",
        "picking",
        "receiving",
        "removing",
        "repackaging",
        "repairing",
        "replacing",
        "reserving",
        "retail_selling",
        "sampling",
        "sensor_reporting",
        "shipping",
        "staging_outbound",
        "stock_taking",
        "stocking",
        "storing",
        "transporting",
        "unloading",
        "unpacking",
        "void_shipping",
    }
)

DISPOSITIONS: frozenset[str] = frozenset(
    {
        "active",
        "available",
        "completeness_inferred",
        "completeness_verified",
        "conformant",
        "container_closed",
        "container_open",
        "damaged",
        "destroyed",
        "dispensed",
        "disposed",
        "encoded",
        "expired",
        "in_progress",
        "in_transit",
        "inactive",
        "mismatch_class",
        "mismatch_instance",
        "mismatch_quantity",
        "needs_replacement",
        "no_pedigree_match",
        "non_conformant",
        "non_sellable_other",
        "partially_dispensed",
        "recalled",
        "reserved",
        "retail_sold",
        "returned",
        "sellable_accessible",
        "sellable_not_accessible",
        "stolen",
        "unavailable",
        "unknown",
    }
)

BIZ_TRANSACTION_TYPES: frozenset[str] = frozenset(
    {
        "bol",
        "cert",
        "desadv",
        "inv",
        "pedigree",
        "po",
        "poc",
        "prodorder",
        "recadv",
        "rma",
        "testprd",
        "testres",
        "upevt",
    }
)

SOURCE_DEST_TYPES: frozenset[str] = frozenset({"owning_party", "possessing_party", "location"})

ERROR_REASONS: frozenset[str] = frozenset({"did_not_occur", "incorrect_data"})

# Sensor report "component" (CBV 2.0 "Comp-"): new in 2.0, so it has no EPCIS 1.x URN.
SENSOR_COMPONENTS: frozenset[str] = frozenset(
    {
        "x",
        "y",
        "z",
        "axial_distance",
        "azimuth",
        "height",
        "spherical_radius",
        "polar_angle",
        "elevation_angle",
        "easting",
        "northing",
        "latitude",
        "longitude",
        "altitude",
    }
)

CBV_BASE = "https://ref.gs1.org/cbv/"

# vocabulary name (the EPCIS field it types) -> (values, CBV 2.0 URI infix, EPCIS 1.x URN infix)
VOCABULARIES: dict[str, tuple[frozenset[str], str, str | None]] = {
    "bizStep": (BIZ_STEPS, "BizStep", "bizstep"),
    "disposition": (DISPOSITIONS, "Disp", "disp"),
    "bizTransactionType": (BIZ_TRANSACTION_TYPES, "BTT", "btt"),
    "sourceDestType": (SOURCE_DEST_TYPES, "SDT", "sdt"),
    "errorReason": (ERROR_REASONS, "ER", "er"),
    "component": (SENSOR_COMPONENTS, "Comp", None),
}


def _spellings() -> dict[str, dict[str, str]]:
    """Every exact standard spelling -> short name, per vocabulary (one dict lookup per value).

    Keyed by vocabulary name and by its CBV URI infix ("BizStep", "Disp", ...).
    """
    tables: dict[str, dict[str, str]] = {}
    for vocab, (values, web, legacy) in VOCABULARIES.items():
        table: dict[str, str] = {}
        for value in values:
            table[value] = value
            table[f"{CBV_BASE}{web}-{value}"] = value
            if legacy is not None:
                table[f"urn:epcglobal:cbv:{legacy}:{value}"] = value
        tables[vocab] = tables[web] = table  # the URI infix names the vocabulary too
    return tables


_SPELLINGS = _spellings()
_CANONICAL_NAME = {web: name for name, (_values, web, _legacy) in VOCABULARIES.items()}
_EXAMPLE = {
    "bizStep": "shipping",
    "disposition": "in_transit",
    "bizTransactionType": "po",
    "sourceDestType": "owning_party",
    "errorReason": "incorrect_data",
    "component": "x",
}
# Spellings that are unusual but unambiguous: http, the EPCIS 2.0 draft host ns.gs1.org, other
# letter case in the fixed parts, and the JSON-LD compact IRI "cbv:BizStep-shipping".
_WEB = re.compile(r"(?:(?i:https?://(?:ref|ns)\.gs1\.org/cbv/)|cbv:)([A-Za-z]+)-(.*)")
_LEGACY = re.compile(r"(?i:urn:epcglobal:cbv:)([A-Za-z]+):(.*)")
# The CBV's own namespaces: a value there that is not standard is an error, not an extension.
_CBV_NAMESPACE = re.compile(r"(?i:urn:epcglobal:cbv:|https?://(?:ref|ns)\.gs1\.org/cbv/|cbv:)")
# An absolute URI (RFC 3986 scheme ":" then something, no spaces): a user extension.
_ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[^\s]+")


def normalize(vocab: str, value: str) -> str:
    """The CBV 2.0 short name of a standard value; an extension URI unchanged.

    `vocab` is an EPCIS field's vocabulary ("bizStep", "disposition", "bizTransactionType",
    "sourceDestType", "errorReason", "component") or its CBV URI infix ("BizStep", "Disp",
    "BTT", "SDT", "ER", "Comp"). Raises ValueError for an unknown vocabulary, an unknown bare
    word, or a value in the CBV's own namespaces that the standard does not define.
    """
    table = _SPELLINGS.get(vocab)
    if table is None:
        raise ValueError(f"unknown CBV vocabulary {vocab!r}; known: {', '.join(VOCABULARIES)}")
    short = table.get(value)
    if short is not None:
        return short
    vocab = _CANONICAL_NAME.get(vocab, vocab)
    values, web, legacy = VOCABULARIES[vocab]
    match = _WEB.fullmatch(value)
    if match is not None and match.group(1).lower() == web.lower() and match.group(2) in values:
        return match.group(2)
    match = _LEGACY.fullmatch(value)
    if (
        match is not None
        and legacy is not None
        and match.group(1).lower() == legacy
        and match.group(2) in values
    ):
        return match.group(2)
    if _ABSOLUTE_URI.fullmatch(value) and not _CBV_NAMESPACE.match(value):
        return value
    shown = value if len(value) <= 80 else value[:80] + "..."
    example = _EXAMPLE[vocab]
    raise ValueError(
        f"{shown!r} is not a CBV 2.0 {vocab}: use a standard short name such as {example!r} "
        f"(or its URI {CBV_BASE}{web}-{example}), or an absolute URI of your own"
    )


def normalized_or_raw(vocab: str, value: object) -> str | None:
    """The short name of a CBV value; an unknown (extension) value as given; None for a
    non-string. For reading stored events, which were checked when captured."""
    if not isinstance(value, str):
        return None
    try:
        return normalize(vocab, value)
    except ValueError:
        return value


def uri(vocab: str, short: str) -> str:
    """The CBV 2.0 URI of a standard value (any spelling accepted); extensions unchanged."""
    value = normalize(vocab, short)
    values, web, _ = VOCABULARIES[_CANONICAL_NAME.get(vocab, vocab)]
    return f"{CBV_BASE}{web}-{value}" if value in values else value


def urn(vocab: str, short: str) -> str:
    """The EPCIS 1.x URN of a standard value, for 1.x exports; extensions unchanged."""
    value = normalize(vocab, short)
    values, _, legacy = VOCABULARIES[_CANONICAL_NAME.get(vocab, vocab)]
    if value not in values:
        return value
    if legacy is None:
        raise ValueError(f"CBV {vocab} values are new in CBV 2.0 and have no EPCIS 1.x URN")
    return f"urn:epcglobal:cbv:{legacy}:{value}"
