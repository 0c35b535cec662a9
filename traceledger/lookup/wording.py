"""What an answer's events say about the item, beyond where they were found.

A history gathers events on the item, its lot, its containers and its ingredients; the
event's `relation` says which, and its `role` (traceledger/lookup/walk.py) what part the
key it was found by plays in it. One and the same TransformationEvent is the production
of the product made (role output) and, on an ingredient's page, the use of that
ingredient (role input): a page must say which, never show a blend as the can's own
production.

Also here: the event's local time (its own offset), and every identifier an answer
mentions (whose names the page looks up).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Iterator, Mapping
from datetime import datetime, timedelta, timezone
from typing import Any, Final

from traceledger.standards.epcis import raw_mentions
from traceledger.standards.masterdata import index_key

__all__ = ["USED_AS_INPUT", "keys_in", "local_iso", "outputs", "senders_in"]

USED_AS_INPUT: Final = frozenset({"input", "inputClass"})
_OFFSET: Final = re.compile(r"([+-])(\d{2}):(\d{2})")


def local_iso(moment: datetime, offset: object) -> str:
    """`moment` in RFC 3339 at the event's own time-zone offset (``+13:00``); at UTC when
    the offset is missing or malformed."""
    match = _OFFSET.fullmatch(offset) if isinstance(offset, str) else None
    if match is None:
        return moment.isoformat()
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    if delta >= timedelta(hours=24):
        return moment.isoformat()
    return moment.astimezone(timezone(-delta if sign == "-" else delta)).isoformat()


def _payload(event: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """What the answer publishes of the event: its payload (version-1 leaves) or its
    disclosed fields (version 2, traceledger/tlog/disclosure.py)."""
    disclosed = event.get("disclosures")
    if isinstance(disclosed, list):
        try:
            return {name: json.loads(text) for _, name, text in disclosed}
        except (ValueError, TypeError):
            return None
    raw = event.get("payload")
    if not isinstance(raw, str):
        return None
    try:
        decoded = json.loads(base64.b64decode(raw, validate=True))
    except (ValueError, binascii.Error):
        return None
    return decoded if isinstance(decoded, Mapping) else None


def outputs(event: Mapping[str, Any]) -> list[str]:
    """The keys of what a TransformationEvent made (from its published payload)."""
    if event.get("type") != "TransformationEvent":
        return []
    recorded = _payload(event)
    if recorded is None:
        return []
    return list(
        dict.fromkeys(
            index_key(uri)
            for uri, role, _ in raw_mentions(recorded)
            if role in ("output", "outputClass") and isinstance(uri, str)
        )
    )


def _parties(event: Mapping[str, Any]) -> Iterator[str]:
    for field in ("sources", "destinations"):
        for party in event.get(field) or ():
            if isinstance(party, Mapping) and isinstance(party.get("id"), str):
                yield index_key(party["id"])


def _inputs(nodes: Iterable[Any]) -> Iterator[str]:
    for node in nodes:
        if isinstance(node, Mapping):
            if isinstance(node.get("key"), str):
                yield node["key"]
            yield from _inputs(node.get("inputs") or ())


def _class_of(key: str) -> str | None:
    """The product (01/<gtin>) of a lot or serial key."""
    parts = key.split("/")
    return "/".join(parts[:2]) if len(parts) > 2 and parts[0] == "01" else None


def keys_in(answer: Mapping[str, Any]) -> list[str]:
    """Every identifier an answer mentions: places, parties, containers, ingredients,
    products made, and the products (GTINs) of all of these lots."""
    found: list[str] = []
    identifier = answer.get("identifier") or {}
    found.append(str(identifier.get("key", "")))
    origin = answer.get("origin") or {}
    found.append(str(origin.get("place") or ""))
    found.extend(_inputs(origin.get("inputs") or ()))
    for event in answer.get("events") or ():
        where = event.get("where") or {}
        found.extend(str(where.get(f) or "") for f in ("readPoint", "bizLocation"))
        found.append(str(event.get("via") or ""))
        found.extend(_parties(event))
        found.extend(outputs(event))
    found.extend(c for k in list(found) if (c := _class_of(k)))
    return [k for k in dict.fromkeys(found) if k]


def _producers(nodes: Iterable[Any]) -> Iterator[str]:
    for node in nodes:
        if isinstance(node, Mapping):
            if isinstance(node.get("producer"), str):
                yield node["producer"]
            yield from _producers(node.get("inputs") or ())


def senders_in(answer: Mapping[str, Any]) -> list[str]:
    """Every enterprise an answer names by its registered name: senders, producers, the
    authorities that recalled or inspected."""
    found = [str((e.get("who") or {}).get("name") or "") for e in answer.get("events") or ()]
    origin = answer.get("origin") or {}
    found.append(str(origin.get("producer") or ""))
    found.extend(_producers(origin.get("inputs") or ()))
    status = answer.get("status") or {}
    for field in ("recalls", "inspections"):
        found.extend(str(r.get("by") or "") for r in status.get(field) or ())
    return [s for s in dict.fromkeys(found) if s]
