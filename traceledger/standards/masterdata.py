"""EPCIS master data: what a document's header says about places, parties and products.

An EPCIS document may carry ``epcisHeader.epcisMasterData.vocabularyList``: vocabularies
(business locations, read points, parties, product classes) whose elements name an
identifier and give it attributes (CBV ``urn:epcglobal:cbv:mda#name``, ``#city``...).
A value is a string, or JSON-LD language-tagged text (``{"@value", "@language"}``), or a
list of those, so one element can name a place in English and in Chinese.

This module only reads: it turns a vocabulary list into statements (identifier key,
attribute, language, value) and leaves out whatever has another shape, so a sender's odd
extension never refuses its events. Who may name what is decided where names are stored
(traceledger/ingest/masterdata.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Final

from traceledger.errors import IdentifierError
from traceledger.standards.gs1 import parse_identifier

__all__ = [
    "MASTER_DATA_TYPE",
    "Statement",
    "canonical",
    "header_vocabularies",
    "index_key",
    "statements",
]

MASTER_DATA_TYPE: Final = "traceledger:MasterData"
MAX_ELEMENTS: Final = 10_000  # statements read from one document
MAX_VALUE: Final = 500  # characters of one attribute value
_LANG: Final = re.compile(r"[a-z]{2,3}(-[A-Za-z0-9]{2,8})*")
# Attributes a page or an export shows; others stay in the log, unindexed.
ATTRIBUTES: Final = frozenset(
    {
        "name",
        "city",
        "countryCode",
        "streetAddressOne",
        "state",
        "descriptionShort",
        "regulatedProductName",
        "tradeItemDescription",
    }
)


@dataclass(frozen=True, slots=True)
class Statement:
    """One attribute of one identifier, as a sender stated it."""

    key: str  # the identifier's index key (414/<GLN>, 417/<GLN>, 01/<GTIN>...) or as written
    attribute: str  # the attribute's local name: name, city...
    lang: str  # a BCP 47 tag such as "zh" or "en"; "" when the value names no language
    value: str


def index_key(uri: str) -> str:
    """The key the event index uses for an identifier: its GS1 key, else the URI as written."""
    try:
        key = parse_identifier(uri)
    except IdentifierError:
        return uri
    return key.item_key().canonical() if key is not None else uri


def header_vocabularies(document: object) -> list[Any] | None:
    """The vocabulary list of a document's header, if it has one."""
    if not isinstance(document, Mapping):
        return None
    header = document.get("epcisHeader")
    master = header.get("epcisMasterData") if isinstance(header, Mapping) else None
    found = master.get("vocabularyList") if isinstance(master, Mapping) else None
    return found if isinstance(found, list) and found else None


def canonical(value: object) -> bytes:
    """The logged form: sorted keys, no insignificant space, UTF-8."""
    return json.dumps(
        value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
    ).encode()


def _local(attribute_id: str) -> str:
    return re.split(r"[#:/]", attribute_id)[-1]


def _values(value: object) -> Iterator[tuple[str, str]]:
    """(language, text) of an attribute value in any of its accepted shapes."""
    items = value if isinstance(value, list) else [value]
    for item in items[:20]:
        if isinstance(item, str):
            text, lang = item, ""
        elif isinstance(item, Mapping) and isinstance(item.get("@value"), str):
            text, raw = item["@value"], item.get("@language", "")
            lang = raw.lower() if isinstance(raw, str) and _LANG.fullmatch(raw.lower()) else ""
        else:
            continue
        text = text.strip()
        if text and len(text) <= MAX_VALUE:
            yield lang, text


def statements(vocabularies: list[Any]) -> list[Statement]:
    """Every readable (identifier, attribute, language, value) of a vocabulary list."""
    found: dict[tuple[str, str, str], Statement] = {}
    for vocabulary in vocabularies:
        elements = (
            vocabulary.get("vocabularyElementList") if isinstance(vocabulary, Mapping) else None
        )
        for element in elements if isinstance(elements, list) else ():
            if not isinstance(element, Mapping) or not isinstance(element.get("id"), str):
                continue
            key = index_key(element["id"])
            for attribute in element.get("attributes") or ():
                if not isinstance(attribute, Mapping) or not isinstance(attribute.get("id"), str):
                    continue
                name = _local(attribute["id"])
                if name not in ATTRIBUTES:
                    continue
                for lang, text in _values(attribute.get("attribute")):
                    # The last statement of one attribute in one language wins, as in a map.
                    found[(key, name, lang)] = Statement(key, name, lang, text)
                    if len(found) >= MAX_ELEMENTS:
                        return list(found.values())
    return list(found.values())
