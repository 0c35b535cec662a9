"""Names on the page: places, parties and products by what master data calls them.

The answer's `names` (traceledger/lookup/names.py) give each identifier's name in one or
more languages; the page picks the shopper's language, then a name that names no
language, then any. An identifier nobody named is shown as its code, in words
(``GLN 6937451000218``) and in a quieter style; a raw EPC URN never reaches the page.

Also here: what an event says about the item, by why it is on the page (`said`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from gateway.pages.words import Words
from traceledger.lookup.wording import USED_AS_INPUT, outputs
from traceledger.standards.masterdata import index_key

__all__ = ["Namer", "Shown", "said"]

MAX_NAME = 200  # a name longer than this is someone's flood, not a name


@dataclass(frozen=True, slots=True)
class Shown:
    """Text for an identifier, and whether it is only its code (shown quieter)."""

    text: str
    code: bool


def _pick(names: Mapping[str, Any], lang: str) -> str | None:
    """The name in `lang` (or its base language), else in no language, else English, else any."""
    texts = {k: v for k, v in names.items() if isinstance(k, str) and isinstance(v, str) and v}
    base = lang.split("-")[0]
    for wanted in (lang, base, "", "en"):
        if wanted in texts:
            return texts[wanted][:MAX_NAME]
    same = [v for k, v in sorted(texts.items()) if k.split("-")[0] == base]
    chosen = same[0] if same else next(iter(sorted(texts.items())), ("", None))[1]
    return chosen[:MAX_NAME] if chosen else None


class Namer:
    """Names of identifiers and enterprises in the page's language."""

    def __init__(self, names: Mapping[str, Any], w: Words) -> None:
        self._names = names
        self._w = w
        # An enterprise by its registered name -> its party key (417/<GLN>).
        self._parties = {
            entry["enterprise"]: key
            for key, entry in names.items()
            if isinstance(entry, Mapping) and isinstance(entry.get("enterprise"), str)
        }

    def name(self, key: str | None) -> str | None:
        """The master data name of `key` (an index key or an identifier as written)."""
        if not key:
            return None
        entry = self._names.get(key) or self._names.get(index_key(key))
        names = entry.get("name") if isinstance(entry, Mapping) else None
        return _pick(names, self._w.lang) if isinstance(names, Mapping) else None

    def of(self, key: str) -> Shown:
        named = self.name(key)
        return Shown(named, False) if named else Shown(self._w.key(key), True)

    def party(self, registered: str | None) -> str | None:
        """An enterprise (a sender, a producer) by its own name in the page's language."""
        if not registered:
            return None
        return self.name(self._parties.get(registered)) or registered

    def product(self, key: str | None, fallback: str | None = None) -> str | None:
        """A product's name: its GTIN's (the class of a lot or serial key), else `fallback`."""
        if not key:
            return fallback
        parts = key.split("/")
        gtin = "/".join(parts[:2]) if parts[0] == "01" and len(parts) >= 2 else key
        return self.name(key) or self.name(gtin) or fallback


def _lot(key: str | None) -> str | None:
    if not key:
        return None
    parts = key.split("/")
    pairs = dict(zip(parts[::2], parts[1::2], strict=False))
    return pairs.get("10")


def _made(
    n: Namer, event: Mapping[str, Any], ilmd: Mapping[str, Any]
) -> tuple[str | None, str | None]:
    """(product, lot) a transformation made: from its outputs' keys and names, else ILMD."""
    made = outputs(event)
    lot_key = next((k for k in made if "/10/" in k), made[0] if made else None)

    def fact(name: str) -> str | None:
        found = next((v for k, v in ilmd.items() if k.rsplit(":", 1)[-1] == name), None)
        return found if isinstance(found, str) else None

    product = n.product(lot_key, fact("regulatedProductName") or fact("productName"))
    return product, _lot(lot_key) or fact("lotNumber")


def said(w: Words, n: Namer, event: Mapping[str, Any], day: str) -> str | None:
    """A product made from this item (or its lot): "Lot CPA117 was used to make …", never
    this item's own production. None for other events (the template's notes say those)."""
    if event.get("type") != "TransformationEvent" or event.get("role") not in USED_AS_INPUT:
        return None
    ilmd = event.get("ilmd")
    product, lot = _made(n, event, ilmd if isinstance(ilmd, Mapping) else {})
    via = event.get("via") if isinstance(event.get("via"), str) else None
    who = event.get("who")
    maker = n.party(who.get("name") if isinstance(who, Mapping) else None)
    facts = {
        "lot": _lot(via) or (w.key(via) if via else ""),
        "product": product or w.gettext("another product"),
        "made": lot or "?",
        "maker": maker or w.gettext("unknown maker"),
        "date": day,
    }
    relation = event.get("relation")
    if relation == "input":
        return (
            w.gettext(
                "Ingredient lot %(lot)s was also used to make %(product)s, lot %(made)s "
                "(%(maker)s, %(date)s)"
            )
            % facts
        )
    if relation == "lot" or (relation == "item" and _lot(via)):
        return (
            w.gettext(
                "Lot %(lot)s was used to make %(product)s, lot %(made)s (%(maker)s, %(date)s)"
            )
            % facts
        )
    return (
        w.gettext("This was used to make %(product)s, lot %(made)s (%(maker)s, %(date)s)") % facts
    )
