"""An item's public status, from the believed events of its history answer.

The server computes it when it assembles an answer and `verify-history` recomputes it
from the proven events, with this same code, so an answer whose status was edited (a
recall removed from a stored answer) fails offline. Events on a bare product class (a
GTIN without lot or serial) never set an item's status: a class is every item of the
product, and no one's word about all of them is a word about this one.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import date
from typing import Any

# Relations whose events speak for the item itself (not for a product class, and not for
# the inputs it was made from).
OWN = ("item", "lot", "container")
CREATING = {"ObjectEvent": ("epc", "class"), "TransformationEvent": ("output", "outputClass")}


def _extension(event: Mapping[str, Any], name: str) -> Any:
    """An extension field by local name, whatever namespace prefix the sender used."""
    for key, value in (event.get("extensions") or {}).items():
        if key.rsplit(":", 1)[-1] == name:
            return value
    return None


def _who(event: Mapping[str, Any]) -> str | None:
    who = event.get("who")
    return who.get("name") if isinstance(who, Mapping) else None


def counted(events: Sequence[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The events status is computed from: believed, not declared erroneous, not a
    declaration themselves, and not merely about the product class."""
    return [
        e
        for e in events
        if e.get("entitled", True) is True
        and not e.get("erroneous")
        and e.get("correctsIndex") is None
        and e.get("relation") != "class"
    ]


def status_of(events: Sequence[Mapping[str, Any]], expiry: Any, today: date) -> dict[str, Any]:
    """The status block of an answer from its events (answer JSON) and expiry date."""
    valid = counted(events)
    recalls = [
        {
            "log": e["log"],
            "index": e["index"],
            "eventTime": e["eventTime"],
            "by": _who(e),
            "via": e["via"],
            "reason": _extension(e, "recallReason"),
        }
        for e in valid
        if e.get("disposition") == "recalled"
    ]
    inspections = [
        {
            "log": e["log"],
            "index": e["index"],
            "eventTime": e["eventTime"],
            "outcome": e["disposition"]
            if e.get("disposition") in ("conformant", "non_conformant")
            else None,
            "by": _who(e),
            "where": (e.get("where") or {}).get("bizLocation")
            or (e.get("where") or {}).get("readPoint"),
            "via": e["via"],
        }
        for e in valid
        if e.get("bizStep") == "inspecting"
    ]
    own = [e for e in valid if e.get("relation") in OWN]
    return {
        "recalled": bool(recalls),
        "recalls": recalls,
        "inspections": inspections,
        "expired": _expired(expiry, today),
        "expiryDate": expiry,
        "destroyed": any(e.get("disposition") == "destroyed" for e in own),
        "returned": any(e.get("disposition") == "returned" for e in own),
    }


def _expired(expiry: Any, today: date) -> bool:
    if not isinstance(expiry, str):
        return False
    try:
        return date.fromisoformat(expiry[:10]) < today
    except ValueError:
        return False


def creates_item(event: Mapping[str, Any]) -> bool:
    """Whether an answer event brought the item (or its lot) into being."""
    return event.get("relation") in ("item", "lot") and event.get("role") in CREATING.get(
        str(event.get("type")), ()
    )


def producer_event(events: Sequence[Mapping[str, Any]]) -> Mapping[str, Any] | None:
    """The first believed event that created the item or its lot (answers list events in
    time order): its signer is the producer."""
    return next(
        (
            e
            for e in events
            if e.get("entitled", True) is True
            and not e.get("erroneous")
            and e.get("correctsIndex") is None
            and creates_item(e)
        ),
        None,
    )
