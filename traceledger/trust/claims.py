"""A claim: what an event says, reduced to what entitlement is decided on.

The server builds claims from its event index; the offline verifier builds the same
claims from the proven event payloads (`from_event`), so both judge identical input.
"""

from __future__ import annotations

import functools
from collections.abc import Hashable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from traceledger.errors import IdentifierError
from traceledger.standards import cbv
from traceledger.standards.epcis import ilmd_fact, parse_time, raw_mentions
from traceledger.standards.gs1 import GS1Key, parse_identifier


@dataclass(frozen=True, slots=True)
class Claim:
    """One logged event as entitlement sees it. `corrects` is the id of the event an error
    declaration retracts, as the index linked it (None when it linked none)."""

    id: Hashable
    signer: int | None
    time: datetime
    event_type: str
    action: str | None
    biz_step: str | None
    disposition: str | None
    keys: tuple[tuple[str, str], ...]  # (index key, role), roles as in event_keys
    declaration: bool = False
    corrects: Hashable | None = None


def index_key(uri: str) -> str:
    """The event_keys key for an identifier: its GS1 key, else the URI as written."""
    # Read points, locations and classes recur across entries: each is worked out once.
    return _index_key_cached(uri) if len(uri) <= _CACHED_LENGTH else _index_key(uri)


_CACHED_LENGTH = 200  # longer ones are rare, and would leave the cache's memory unbounded


@functools.lru_cache(maxsize=1 << 14)
def _index_key_cached(uri: str) -> str:
    return _index_key(uri)


def _index_key(uri: str) -> str:
    try:
        key = parse_identifier(uri)
    except IdentifierError:
        return uri
    return key.item_key().canonical() if key is not None else uri


def lot_member_keys(event: Mapping[str, Any]) -> set[str]:
    """The lots an event creates serials of, as its ILMD names them.

    A serial's EPC does not carry its lot; the creating event's ILMD does. Indexing the
    link (role "lotMember") lets a recall or forward trace of a lot reach every serial
    made in it, and a serial's history learn its lot.
    """
    lot = ilmd_fact(event.get("ilmd"), "lotNumber")
    creates = "epc" if event.get("action") == "ADD" else "output"
    if not isinstance(lot, str) or event.get("type") not in ("ObjectEvent", "TransformationEvent"):
        return set()
    found = set()
    for uri, role, _ in raw_mentions(event):
        if role != creates or not isinstance(uri, str):
            continue
        try:
            key = parse_identifier(uri)
        except IdentifierError:
            continue
        if key is not None and key.scheme == "gtin" and key.serial is not None:
            found.add(GS1Key("gtin", key.key, lot=lot).canonical())
    return found


def keys_of(event: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    """(index key, role) of every identifier an event names, lot memberships included."""
    named = [(index_key(uri), role) for uri, role, _ in raw_mentions(event) if isinstance(uri, str)]
    named += [(lot, "lotMember") for lot in sorted(lot_member_keys(event))]
    return tuple(dict.fromkeys(named))


def from_event(
    event: Mapping[str, Any], id: Hashable, signer: int | None, corrects: Hashable | None
) -> Claim:
    """The claim a proven event makes (raises ValueError for an event without a valid time)."""
    return Claim(
        id,
        signer,
        parse_time(event.get("eventTime")),
        str(event.get("type")),
        event.get("action") if isinstance(event.get("action"), str) else None,
        _short(event.get("bizStep"), "bizStep"),
        _short(event.get("disposition"), "disposition"),
        keys_of(event),
        isinstance(event.get("errorDeclaration"), Mapping),
        corrects,
    )


def _short(value: Any, field: str) -> str | None:
    return cbv.normalized_or_raw(field, value)
