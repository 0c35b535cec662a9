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

from gateway.pages.naming import Namer, said
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


def _status(history: Mapping[str, Any], has_events: bool, n: Namer) -> dict[str, Any]:
    status, product = mapping(history, "status"), mapping(history, "product")
    offsets = _offsets(mappings(history, "events"))
    recalled = status.get("recalled") is True
    expired = status.get("expired") is True
    flags = {
        "recalled": recalled,
        "recalls": [
            _dated(r, offsets) | {"by": n.party(text(r, "by")), "reason": text(r, "reason")}
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


def _product(history: Mapping[str, Any], n: Namer) -> dict[str, Any]:
    product, identifier = mapping(history, "product"), mapping(history, "identifier")
    origin = mapping(history, "origin")
    gtin = text(product, "gtin") or text(identifier, "gtin")
    country = text(product, "originCountry") or text(origin, "country")
    level = text(identifier, "level")
    facts = mapping(product, "facts")
    return {
        "name": n.product(text(identifier, "key"), text(product, "name")),
        "level": level if level in LEVELS else None,
        "imported": bool(country and country.upper() != "CN"),
        "producer": n.party(text(mapping(product, "producer"), "name") or text(origin, "producer")),
        "country": country,
        "production": text(product, "productionDate"),
        "expiry": text(product, "expiryDate"),
        "lot": text(product, "lot") or text(identifier, "lot"),
        "serial": text(identifier, "serial"),
        "gtin": gtin,
        "key": None if gtin else n.of(text(identifier, "key") or "").text or None,
        "facts": [
            (str(k), v)
            for k, v in sorted(facts.items(), key=lambda kv: str(kv[0]))
            if v not in (None, "")
        ],
    }


def _inspections(history: Mapping[str, Any], n: Namer) -> list[dict[str, Any]]:
    offsets = _offsets(mappings(history, "events"))
    return [
        _dated(i, offsets)
        | {
            "outcome": text(i, "outcome"),
            "by": n.party(text(i, "by")),
            "where": n.of(where) if (where := text(i, "where")) else None,
        }
        for i in mappings(mapping(history, "status"), "inspections")
    ]


def _tree(inputs: list[Mapping[str, Any]], n: Namer, depth: int = 0) -> list[dict[str, Any]]:
    """The upstream ingredient lots (cut at `MAX_DEPTH` levels)."""
    if depth >= MAX_DEPTH:
        return []
    return [
        {
            "key": text(node, "key"),
            "product": n.product(text(node, "key"), text(node, "product")),
            "producer": n.party(text(node, "producer")),
            "country": text(node, "country"),
            "inputs": _tree(mappings(node, "inputs"), n, depth + 1),
        }
        for node in inputs
    ]


def _origin(history: Mapping[str, Any], n: Namer) -> dict[str, Any]:
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
        "producer": n.party(text(origin, "producer") or text(mapping(product, "producer"), "name")),
        "country": text(origin, "country") or text(product, "originCountry"),
        "place": n.of(place) if (place := text(origin, "place")) else None,
        "commissioned": commissioned,
        "offset": offset,
        "inputs": _tree(mappings(origin, "inputs"), n),
    }


def _parties(n: Namer, event: Mapping[str, Any], field: str) -> list[dict[str, Any]]:
    """Sources or destinations: each party or place by name (else its code), and its CBV
    type."""
    return [
        {"name": n.of(ident), "type": text(party, "type")}
        for party in mappings(event, field)
        if (ident := text(party, "id"))
    ]


def _via(n: Namer, via: str | None) -> str:
    """The lot, container or ingredient an event was found through, by name (a lot or a
    case by its product's)."""
    if not via:
        return ""
    shown = n.of(via).text
    product = n.product(via)
    return cut(f"{product} · {shown}" if product and product != shown else shown)


def _event(
    w: Words, n: Namer, event: Mapping[str, Any], inspector: bool, current_log: str
) -> dict[str, Any]:
    """One journey entry: the record's identity and facts (for the proof script's data
    attributes), and what the page says about them."""
    biz_step, disposition = text(event, "bizStep"), text(event, "disposition")
    where, who = mapping(event, "where"), mapping(event, "who")
    log, when, via = text(event, "log"), text(event, "eventTime"), text(event, "via")
    place = text(where, "bizLocation") or text(where, "readPoint")
    offset = text(event, "eventTimeZoneOffset")
    day = w.day(when, offset) if when else ""
    relation = text(event, "relation") or "item"
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
        "minutes": w.minutes(when, offset) if when else None,
        "day": day,
        # Recorded in an earlier time shard of the log: say which.
        "other_log": log if log and log != current_log else None,
        "place": n.of(place) if place else None,
        "who": n.party(text(who, "name")),
        "authority": text(who, "role") == "authority",
        "sources": _parties(n, event, "sources"),
        "destinations": _parties(n, event, "destinations"),
        "relation": relation,
        "via": _via(n, via),
        # A product made from this item: said in full, instead of the step's own label.
        "said": said(w, n, event, day),
        "confidential": event.get("confidential") is True and not inspector,
    }


_CERT_FIELDS: Final = ("standard", "agency", "value")


def _certificates(w: Words, n: Namer, events: list[Mapping[str, Any]]) -> list[dict[str, Any]]:
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
                    "event": _event(w, n, event, True, ""),
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


def _sale(w: Words, n: Namer, events: list[Mapping[str, Any]]) -> dict[str, Any] | None:
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
    return {"by": n.party(text(mapping(sales[-1], "who"), "name")), "day": day}


def _scans(
    w: Words,
    n: Namer,
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
    sale = _sale(w, n, events)
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
    names: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """Everything the history template shows, each section None or empty when it has
    nothing to say. `names`: the answer's names (traceledger/lookup/names.py)."""
    events = mappings(history, "events")
    n = Namer(names if names is not None else mapping(history, "names"), w)
    current_log = text(next(iter(mappings(history, "logs")), {}), "origin") or ""
    identifier = mapping(history, "identifier")
    return {
        "inspector": inspector,
        "status": _status(history, bool(events), n),
        "scans": _scans(w, n, scans, history, events, many_scans),
        "product": _product(history, n),
        "inspections": _inspections(history, n),
        "origin": _origin(history, n),
        "events": [_event(w, n, e, inspector, current_log) for e in events],
        "certificates": _certificates(w, n, events),
        "verification": _verification(history, json_url),
        "identifier": text(identifier, "digitalLink") or text(identifier, "key"),
    }
