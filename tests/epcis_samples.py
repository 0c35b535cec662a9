"""Hand-made EPCIS 2.0 documents for tests (the official examples live in ../shared)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

PRODUCER_GCP = "0614141"
OTHER_GCP = "4012345"


def document(*events: dict[str, Any]) -> dict[str, Any]:
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-11-01T10:00:00Z",
        "epcisBody": {"eventList": list(events)},
    }


def object_event(
    serial: str | int = 1,
    *,
    gcp: str = PRODUCER_GCP,
    action: str = "ADD",
    biz_step: str = "commissioning",
    disposition: str = "active",
    when: str = "2026-10-01T08:00:00+08:00",
    **extra: Any,
) -> dict[str, Any]:
    item_ref = "107346" if len(gcp) == 7 else "1073"
    return {
        "type": "ObjectEvent",
        "eventTime": when,
        "eventTimeZoneOffset": "+08:00",
        "epcList": [f"urn:epc:id:sgtin:{gcp}.{item_ref}.{serial}"],
        "action": action,
        "bizStep": biz_step,
        "disposition": disposition,
        "readPoint": {"id": f"urn:epc:id:sgln:{gcp}.00001.0"},
        **extra,
    }


def future_time(seconds: float) -> str:
    return (datetime.now(UTC) + timedelta(seconds=seconds)).isoformat()
