"""Building blocks of the story's EPCIS 2.0 documents: the clock, events and master data."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from traceledger.demo.parties import PLACES, Company
from traceledger.standards import eventhash
from traceledger.standards.epcis import parse_time, raw_mentions
from traceledger.standards.gs1 import check_digit

# Extension fields (ILMD facts CBV has no name for, findings, the confidential-field list).
NAMESPACE = "https://traceledger.dev/voc/"
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


def _master_data(events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """EPCIS master data naming every location the events mention."""
    glns: list[str] = []
    for recorded in events:
        for uri, _role, _pointer in raw_mentions(recorded):
            if uri.startswith("urn:epc:id:sgln:"):
                cp, ref, _ext = uri.removeprefix("urn:epc:id:sgln:").split(".")
                gln = cp + ref + check_digit(cp + ref)
                if gln in PLACES and gln not in glns:
                    glns.append(gln)
    elements = [
        {
            "id": place(gln)["id"],
            "attributes": [
                {"id": "urn:epcglobal:cbv:mda#name", "attribute": PLACES[gln][0]},
                {"id": "urn:epcglobal:cbv:mda#city", "attribute": PLACES[gln][1]},
                {"id": "urn:epcglobal:cbv:mda#countryCode", "attribute": PLACES[gln][2]},
            ],
        }
        for gln in glns
    ]
    vocabulary = {"type": "urn:epcglobal:epcis:vtype:BusinessLocation"}
    return {
        "epcisMasterData": {"vocabularyList": [{**vocabulary, "vocabularyElementList": elements}]}
    }


def document(events: list[dict[str, Any]]) -> dict[str, Any]:
    """An EPCIS 2.0 document, created a few minutes after the latest time it reports."""
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
        "epcisHeader": _master_data(events),
        "epcisBody": {"eventList": events},
    }


def hash_id(recorded: Mapping[str, Any]) -> str:
    """The event's standard EPCIS 2.0 hash ID (what the ledger assigns as its eventID)."""
    context = eventhash.document_context({"@context": CONTEXT})
    return eventhash.event_hash_id(eventhash.event_hash(recorded, context))
