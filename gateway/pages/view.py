"""What the trace page shows, read from the (untrusted) history dict.

Every value in a history came from an enterprise: this module only picks values of the
expected shapes (anything else is left out, never an error) and works out which sections
have something to say. Wording and markup are the templates'; escaping is Jinja's. The
journey's values are formatted here (`Words`) rather than in the template's loop, where
each call costs Jinja far more than the formatting itself.
"""

from __future__ import annotations

import shlex
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from gateway.pages.vocabulary import BAD, GOOD
from gateway.pages.words import Words, instant
from traceledger.lookup.scans import Tally

__all__ = ["ProofPins", "history_view", "lang_href", "safe_href"]

MAX_DEPTH: Final = 8  # ingredient tree levels shown
MAX_TEXT: Final = 600  # longer values are cut: a hostile sender must not flood the page
LEVELS: Final = ("instance", "lot", "class", "container", "location")


@dataclass(frozen=True, slots=True)
class ProofPins:
    """The keys the page's script checks the answer with, from the server's
    configuration (never from the answer): each log's verifier key, current log first,
    and the witnesses' cosignature keys with how many must have cosigned."""

    log_keys: tuple[str, ...]
    witness_keys: tuple[str, ...] = ()
    quorum: int = 0


# --- reading the (untrusted) history dict ------------------------------------------------


def cut(shown: str) -> str:
    """`shown`, cut to `MAX_TEXT` characters."""
    return shown if len(shown) <= MAX_TEXT else shown[:MAX_TEXT] + "…"


def text(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int | float):
        shown = str(value).strip()
        return shown or None
    return None


def integer(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def mapping(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def mappings(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = data.get(key)
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


# --- links ----------------------------------------------------------------------------------


def safe_href(url: str) -> str:
    """`url` if it is http(s) or a path on this site; anything else (javascript:...) is inert."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        return url.strip()
    if not parts.scheme and not parts.netloc and not url.strip().startswith("//"):
        return url.strip()
    return "#"


def lang_href(self_url: str, lang: str) -> str:
    """This page's path and query with ``lang`` replaced: always on this site."""
    parts = urlsplit(self_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "lang"]
    query.append(("lang", lang))
    path = "/" + parts.path.lstrip("/") if parts.path else ""
    return urlunsplit(("", "", path, urlencode(query), ""))


# --- sections -------------------------------------------------------------------------------


def _offsets(events: list[Mapping[str, Any]]) -> dict[tuple[str, int], str]:
    """Each event's own time-zone offset by (log, index), for dates shown outside the
    timeline (an index alone is ambiguous when the history spans time shards)."""
    found: dict[tuple[str, int], str] = {}
    for event in events:
        index, offset = integer(event, "index"), text(event, "eventTimeZoneOffset")
        if index is not None and offset is not None:
            found[(text(event, "log") or "", index)] = offset
    return found


def _offset_of(offsets: Mapping[tuple[str, int], str], entry: Mapping[str, Any]) -> str | None:
    index = integer(entry, "index")
    return offsets.get((text(entry, "log") or "", index)) if index is not None else None


def _dated(entry: Mapping[str, Any], offsets: Mapping[tuple[str, int], str]) -> dict[str, Any]:
    return {"when": text(entry, "eventTime"), "offset": _offset_of(offsets, entry)}


def _status(history: Mapping[str, Any], has_events: bool) -> dict[str, Any]:
    status, product = mapping(history, "status"), mapping(history, "product")
    offsets = _offsets(mappings(history, "events"))
    recalled = status.get("recalled") is True
    expired = status.get("expired") is True
    flags = {
        "recalled": recalled,
        "recalls": [
            _dated(r, offsets) | {"by": text(r, "by"), "reason": text(r, "reason")}
            for r in mappings(status, "recalls")
        ]
        if recalled
        else [],
        "destroyed": status.get("destroyed") is True,
        "returned": status.get("returned") is True,
        "expired": expired,
        "expiry": (text(status, "expiryDate") or text(product, "expiryDate")) if expired else None,
    }
    alarming = flags["recalled"] or flags["destroyed"] or flags["returned"] or expired
    return flags | {"clean": has_events and not alarming}


def _product(history: Mapping[str, Any]) -> dict[str, Any]:
    product, identifier = mapping(history, "product"), mapping(history, "identifier")
    origin = mapping(history, "origin")
    gtin = text(product, "gtin") or text(identifier, "gtin")
    country = text(product, "originCountry") or text(origin, "country")
    level = text(identifier, "level")
    facts = mapping(product, "facts")
    return {
        "name": text(product, "name"),
        "level": level if level in LEVELS else None,
        "imported": bool(country and country.upper() != "CN"),
        "producer": text(mapping(product, "producer"), "name") or text(origin, "producer"),
        "country": country,
        "production": text(product, "productionDate"),
        "expiry": text(product, "expiryDate"),
        "lot": text(product, "lot") or text(identifier, "lot"),
        "serial": text(identifier, "serial"),
        "gtin": gtin,
        "key": None if gtin else text(identifier, "key"),
        "facts": [
            (str(k), v)
            for k, v in sorted(facts.items(), key=lambda kv: str(kv[0]))
            if v not in (None, "")
        ],
    }


def _inspections(history: Mapping[str, Any]) -> list[dict[str, Any]]:
    offsets = _offsets(mappings(history, "events"))
    return [
        _dated(i, offsets)
        | {"outcome": text(i, "outcome"), "by": text(i, "by"), "where": text(i, "where")}
        for i in mappings(mapping(history, "status"), "inspections")
    ]


def _tree(inputs: list[Mapping[str, Any]], depth: int = 0) -> list[dict[str, Any]]:
    """The upstream ingredient lots (cut at `MAX_DEPTH` levels)."""
    if depth >= MAX_DEPTH:
        return []
    return [
        {
            "key": text(node, "key"),
            "product": text(node, "product"),
            "producer": text(node, "producer"),
            "country": text(node, "country"),
            "inputs": _tree(mappings(node, "inputs"), depth + 1),
        }
        for node in inputs
    ]


def _origin(history: Mapping[str, Any]) -> dict[str, Any]:
    origin, product = mapping(history, "origin"), mapping(history, "product")
    commissioned = text(origin, "commissionedAt")
    # The creating event's own offset, so the origin card shows the time the timeline does.
    moment = instant(commissioned) if commissioned else None
    offset = next(
        (
            text(e, "eventTimeZoneOffset")
            for e in mappings(history, "events")
            if moment is not None and (t := text(e, "eventTime")) and instant(t) == moment
        ),
        None,
    )
    return {
        "producer": text(origin, "producer") or text(mapping(product, "producer"), "name"),
        "country": text(origin, "country") or text(product, "originCountry"),
        "place": text(origin, "place"),
        "commissioned": commissioned,
        "offset": offset,
        "inputs": _tree(mappings(origin, "inputs")),
    }


def _parties(w: Words, event: Mapping[str, Any], field: str) -> list[dict[str, Any]]:
    """Sources or destinations: each party or place in words, and its CBV type."""
    return [
        {"name": w.key(ident), "type": text(party, "type")}
        for party in mappings(event, field)
        if (ident := text(party, "id"))
    ]


def _event(w: Words, event: Mapping[str, Any], inspector: bool, current_log: str) -> dict[str, Any]:
    """One journey entry: the record's identity and facts (for the proof script's data
    attributes), and what the page says about them."""
    biz_step, disposition = text(event, "bizStep"), text(event, "disposition")
    where, who = mapping(event, "where"), mapping(event, "who")
    log, when, via = text(event, "log"), text(event, "eventTime"), text(event, "via")
    place = text(where, "bizLocation") or text(where, "readPoint")
    offset = text(event, "eventTimeZoneOffset")
    return {
        "log": log or "",
        "index": integer(event, "index"),
        "biz_step": biz_step,
        "disposition": disposition,
        "step": w.step(biz_step, text(event, "type"), text(event, "action")),
        "state": w.disposition(disposition) if disposition else None,
        "mood": "bad" if disposition in BAD else "good" if disposition in GOOD else None,
        "when": when,
        "time": w.time(when, offset) if when else None,
        "day": w.day(when, offset) if when else "",
        # Recorded in an earlier time shard of the log: say which.
        "other_log": log if log and log != current_log else None,
        "place": w.key(place) if place else None,
        "who": text(who, "name"),
        "authority": text(who, "role") == "authority",
        "sources": _parties(w, event, "sources"),
        "destinations": _parties(w, event, "destinations"),
        "relation": text(event, "relation") or "item",
        "via": cut(w.key(via)) if via else "",
        "confidential": event.get("confidential") is True and not inspector,
    }


_CERT_FIELDS: Final = ("standard", "agency", "value")


def _certificates(w: Words, events: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
    seen: set[tuple[str, ...]] = set()
    found = []
    for event in events:
        for cert in mappings(event, "certifications"):
            ident = tuple(text(cert, f) or "" for f in _CERT_FIELDS)
            if ident in seen or not any(ident):
                continue
            seen.add(ident)
            standard, agency, value = ident
            found.append(
                {
                    "title": standard or value or agency,
                    "agency": agency,
                    "value": value,
                    "more": [
                        (key, shown)
                        for key in sorted(str(k) for k in cert)
                        if key not in _CERT_FIELDS and (shown := text(cert, key))
                    ],
                    "event": _event(w, event, True, ""),
                }
            )
    return found


def _verification(history: Mapping[str, Any], json_url: str) -> dict[str, Any]:
    key = text(history, "verifierKey") or ""
    command = f"traceledger verify-history {shlex.quote(json_url)}"
    if key:
        command += f" --key {shlex.quote(key)}"
    for log in mappings(history, "logs"):
        # One key per earlier time shard the events come from.
        other = text(log, "verifierKey")
        if other and other != key:
            command += f" --key {shlex.quote(other)}"
    checkpoint = history.get("checkpoint")
    return {
        "size": integer(history, "treeSize"),
        "key": key,
        "pending": integer(history, "pending") or 0,
        "command": command,
        "checkpoint": checkpoint if isinstance(checkpoint, str) and checkpoint.strip() else None,
        "json_url": safe_href(json_url),
    }


def pins_of(history: Mapping[str, Any]) -> ProofPins:
    """Pins from the answer's own keys: for pages rendered without a server (tests,
    previews); the server pins its configured keys instead."""
    keys = [text(history, "verifierKey")] + [
        text(log, "verifierKey") for log in mappings(history, "logs")
    ]
    return ProofPins(tuple(dict.fromkeys(k for k in keys if k)))


def _sale(w: Words, events: list[Mapping[str, Any]]) -> dict[str, Any] | None:
    """The item's own record of being sold to a shopper (the last one), if any."""
    sales = [
        e
        for e in events
        if text(e, "relation") == "item"
        and text(e, "disposition") == "retail_sold"
        and e.get("erroneous") is not True
    ]
    if not sales:
        return None
    when = text(sales[-1], "eventTime")
    day = w.day(when, text(sales[-1], "eventTimeZoneOffset")) if when else ""
    return {"by": text(mapping(sales[-1], "who"), "name"), "day": day}


def _scans(
    w: Words,
    tally: Tally | None,
    history: Mapping[str, Any],
    events: list[Mapping[str, Any]],
    many: int,
) -> dict[str, Any] | None:
    """The look-up count of a serialized item: prominent when it is high, or when the
    item should no longer be looked up by new buyers (sold, destroyed), for a copied code
    is looked up by every buyer of a fake."""
    if tally is None or text(mapping(history, "identifier"), "serial") is None:
        return None
    sale = _sale(w, events)
    destroyed = mapping(history, "status").get("destroyed") is True
    return {
        "count": tally.count,
        "first": tally.first.isoformat(),
        "sale": sale,
        "destroyed": destroyed,
        "prominent": tally.count >= many or sale is not None or destroyed,
    }


def history_view(
    history: Mapping[str, Any],
    w: Words,
    *,
    json_url: str,
    inspector: bool,
    scans: Tally | None,
    many_scans: int,
) -> dict[str, Any]:
    """Everything the history template shows, each section None or empty when it has
    nothing to say."""
    events = mappings(history, "events")
    current_log = text(next(iter(mappings(history, "logs")), {}), "origin") or ""
    identifier = mapping(history, "identifier")
    return {
        "inspector": inspector,
        "status": _status(history, bool(events)),
        "scans": _scans(w, scans, history, events, many_scans),
        "product": _product(history),
        "inspections": _inspections(history),
        "origin": _origin(history),
        "events": [_event(w, e, inspector, current_log) for e in events],
        "certificates": _certificates(w, events),
        "verification": _verification(history, json_url),
        "identifier": text(identifier, "digitalLink") or text(identifier, "key"),
    }
