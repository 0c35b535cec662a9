"""Building blocks of the story's EPCIS 2.0 documents: the clock, events and master data."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from traceledger.demo.parties import PARTIES, PARTY_NAMES, PLACES, PRODUCTS, Company, Party
from traceledger.standards import eventhash
from traceledger.standards.epcis import parse_time, raw_mentions
from traceledger.standards.gs1 import parse_identifier

# Extension fields (ILMD facts CBV has no name for, findings, the confidential-field list).
NAMESPACE = "https://traceledger.dev/voc/"
MDA = "urn:epcglobal:cbv:mda#"
VTYPE = "urn:epcglobal:epcis:vtype:"
CONTEXT: list[Any] = [
    "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
    {"traceledger": NAMESPACE},
]


def _zone(name: str, fallback_hours: int) -> tzinfo:
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError:  # no tz database: standard time is close enough
        return timezone(timedelta(hours=fallback_hours))


NZ_TIME = _zone("Pacific/Auckland", 12)
SHANGHAI_TIME = timezone(timedelta(hours=8))  # China has no daylight saving time


class Clock:
    def __init__(self, now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.now = now.astimezone(UTC).replace(microsecond=0)

    def at(self, days_ago: int, hhmm: str, zone: tzinfo = SHANGHAI_TIME) -> datetime:
        """Local wall-clock time `hhmm` on the local date `days_ago` days before now."""
        day = (self.now - timedelta(days=days_ago)).astimezone(zone).date()
        hour, minute = (int(x) for x in hhmm.split(":"))
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)


def stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _offset(moment: datetime) -> str:
    z = moment.strftime("%z")
    return f"{z[:3]}:{z[3:]}"


def event(kind: str, moment: datetime, **fields: Any) -> dict[str, Any]:
    """An event with its time fields first; None-valued fields are left out."""
    built: dict[str, Any] = {
        "type": kind,
        "eventTime": stamp(moment),
        "eventTimeZoneOffset": _offset(moment),
    }
    built.update((k, v) for k, v in fields.items() if v is not None)
    return built


def place(gln: str) -> dict[str, str]:
    return {"id": Company(gln[:7]).sgln(gln)}


def qty(epc_class: str, quantity: float | None = None, uom: str | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {"epcClass": epc_class}
    if quantity is not None:
        element["quantity"] = quantity
    if uom is not None:
        element["uom"] = uom
    return element


def moves(kind: str, owner: Company, gln: str) -> list[dict[str, str]]:
    """A sourceList (kind "source") or destinationList (kind "destination")."""
    return [
        {"type": "owning_party", kind: owner.party},
        {"type": "location", kind: place(gln)["id"]},
    ]


def bt(kind: str, issuer_gln: str, number: str) -> dict[str, str]:
    """A business transaction reference (CBV 2.0: urn:epcglobal:cbv:bt:<GLN>:<id>)."""
    return {"type": kind, "bizTransaction": f"urn:epcglobal:cbv:bt:{issuer_gln}:{number}"}


def _texts(en: str, zh: str) -> list[dict[str, str]]:
    return [{"@value": en, "@language": "en"}, {"@value": zh, "@language": "zh"}]


def _element(ident: str, en: str, zh: str, *more: tuple[str, str]) -> dict[str, Any]:
    attributes: list[dict[str, Any]] = [{"id": f"{MDA}name", "attribute": _texts(en, zh)}]
    attributes += [{"id": f"{MDA}{name}", "attribute": value} for name, value in more]
    return {"id": ident, "attributes": attributes}


def _gtin_class(gtin: str) -> str:
    """The EPC pattern naming every instance of a GTIN (7-digit company prefixes here)."""
    return f"urn:epc:idpat:sgtin:{gtin[1:8]}.{gtin[0]}{gtin[8:13]}.*"


def _mentioned(events: Iterable[Mapping[str, Any]]) -> tuple[list[str], list[str], list[str]]:
    """(GLNs of places, party URNs, GTINs) the events name, in order of appearance."""
    glns: list[str] = []
    parties: list[str] = []
    gtins: list[str] = []
    for recorded in events:
        for uri, _role, _pointer in raw_mentions(recorded):
            if not isinstance(uri, str):
                continue
            if uri.startswith("urn:epc:id:pgln:"):
                parties.append(uri)
                continue
            key = parse_identifier(uri)
            if key is not None and key.scheme == "gln":
                glns.append(key.key)
            elif key is not None and key.scheme == "gtin":
                gtins.append(key.key)
    return glns, parties, gtins


def _master_data(events: Iterable[Mapping[str, Any]], signer: Party) -> dict[str, Any]:
    """EPCIS master data naming, in English and Chinese, every place, party and product the
    events mention, and the signer's own places and party (the ledger believes a name
    from the identifier's owner only, so the signer's own are what count)."""
    company = Company(signer.prefixes[0])
    glns, parties, gtins = _mentioned(events)
    glns += [g for g in PLACES if g.startswith(company.prefix)]
    parties.append(company.party)
    owners = {Company(p.prefixes[0]).party: p.name for p in PARTIES}
    locations = [
        _element(
            place(g)["id"], *PLACES[g][:2], ("city", PLACES[g][2]), ("countryCode", PLACES[g][3])
        )
        for g in dict.fromkeys(glns)
        if g in PLACES
    ]
    named_parties = [
        _element(urn, *PARTY_NAMES[owners[urn]]) for urn in dict.fromkeys(parties) if urn in owners
    ]
    products = [
        _element(_gtin_class(g), *PRODUCTS[g]) for g in dict.fromkeys(gtins) if g in PRODUCTS
    ]
    vocabularies = [
        {"type": f"{VTYPE}{kind}", "vocabularyElementList": elements}
        for kind, elements in (
            ("BusinessLocation", locations),
            ("Party", named_parties),
            ("EPCClass", products),
        )
        if elements
    ]
    return {"epcisMasterData": {"vocabularyList": vocabularies}}


def document(events: list[dict[str, Any]], signer: Party) -> dict[str, Any]:
    """An EPCIS 2.0 document by `signer`, created a few minutes after the latest time it
    reports, with master data naming what it mentions."""
    times = [parse_time(e["eventTime"]) for e in events]
    times += [
        parse_time(e["errorDeclaration"]["declarationTime"])
        for e in events
        if "errorDeclaration" in e
    ]
    created = max(times) + timedelta(minutes=7)
    return {
        "@context": CONTEXT,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": stamp(created.astimezone(UTC)).replace("+00:00", "Z"),
        "epcisHeader": _master_data(events, signer),
        "epcisBody": {"eventList": events},
    }


def hash_id(recorded: Mapping[str, Any]) -> str:
    """The event's standard EPCIS 2.0 hash ID (what the ledger assigns as its eventID)."""
    context = eventhash.document_context({"@context": CONTEXT})
    return eventhash.event_hash_id(eventhash.event_hash(recorded, context))
