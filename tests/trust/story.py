"""The parties and goods of the trust tests, and how a test reads what each audience sees.

A brand (the victim) makes serials in a lot and ships them on a pallet to a
distributor; an authority inspects and recalls; an attacker is a registered enterprise
with its own key and prefix, acting in bad faith.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.keys import LEDGER
from tests.ingest.test_capture import Signer, register
from tests.lookup.test_history import history
from traceledger.accounts import tokens
from traceledger.standards.gs1 import parse_identifier

Client = TestClient[web.Request, web.Application]

BRAND, DISTRIBUTOR, ATTACKER, AUTHORITY, MAKER = (
    "9421234",
    "6901234",
    "4012345",
    "6909999",
    "8712345",
)
ITEM = "012345"  # the brand's product (GTIN 09421234123456)
SERIAL = f"urn:epc:id:sgtin:{BRAND}.{ITEM}.S1"
OTHER_SERIAL = f"urn:epc:id:sgtin:{BRAND}.{ITEM}.S2"
LOT = f"urn:epc:class:lgtin:{BRAND}.{ITEM}.L1"
PRODUCT_CLASS = f"urn:epc:idpat:sgtin:{BRAND}.{ITEM}.*"
PALLET = f"urn:epc:id:sscc:{BRAND}.0000000001"
BRAND_SITE = f"urn:epc:id:sgln:{BRAND}.00001.0"
DISTRIBUTOR_PARTY = f"urn:epc:id:pgln:{DISTRIBUTOR}.00000"
DISTRIBUTOR_SITE = f"urn:epc:id:sgln:{DISTRIBUTOR}.00001.0"
DISTRIBUTOR_PALLET = f"urn:epc:id:sscc:{DISTRIBUTOR}.0000000002"
ATTACKER_ITEM = "054321"
ATTACKER_SERIAL = f"urn:epc:id:sgtin:{ATTACKER}.{ATTACKER_ITEM}.X1"
ATTACKER_LOT = f"urn:epc:class:lgtin:{ATTACKER}.{ATTACKER_ITEM}.XL"
ATTACKER_PALLET = f"urn:epc:id:sscc:{ATTACKER}.0000000009"
EXPIRES = datetime.now(UTC).date() + timedelta(days=365)
ATTACKER_NAME = "Mallory Trading"


def path(uri: str) -> str:
    """The Digital Link path of an EPC URI (what a QR code would carry)."""
    key = parse_identifier(uri)
    assert key is not None
    return "/" + key.canonical()


def ev(kind: str, day: int, **fields: Any) -> dict[str, Any]:
    """An event on day `day` of 2025 (UTC): long past, so never refused as future."""
    when = datetime(2025, 1, 1, 8, tzinfo=UTC) + timedelta(days=day)
    return {
        "type": kind,
        "eventTime": when.isoformat().replace("+00:00", "Z"),
        "eventTimeZoneOffset": "+00:00",
        **fields,
    }


def on_lot(day: int, lot: str, biz_step: str, disposition: str | None = None) -> dict[str, Any]:
    fields: dict[str, Any] = {"bizStep": biz_step, "quantityList": [{"epcClass": lot}]}
    if disposition is not None:
        fields["disposition"] = disposition
    return ev("ObjectEvent", day, action="OBSERVE", **fields)


def on_items(
    day: int, epcs: list[str], biz_step: str, disposition: str | None = None
) -> dict[str, Any]:
    fields: dict[str, Any] = {"bizStep": biz_step, "epcList": epcs}
    if disposition is not None:
        fields["disposition"] = disposition
    return ev("ObjectEvent", day, action="OBSERVE", **fields)


def commissioning(day: int = 10) -> dict[str, Any]:
    """The brand makes two serials of its lot, and says what they are."""
    return ev(
        "ObjectEvent",
        day,
        action="ADD",
        bizStep="commissioning",
        disposition="active",
        epcList=[SERIAL, OTHER_SERIAL],
        quantityList=[{"epcClass": LOT, "quantity": 100}],
        readPoint={"id": BRAND_SITE},
        ilmd={
            "cbvmda:lotNumber": "L1",
            "cbvmda:countryOfOrigin": "NZ",
            "cbvmda:regulatedProductName": "Milk powder",
            "cbvmda:itemExpirationDate": EXPIRES.isoformat(),
        },
    )


def packing(day: int, parent: str, children: list[str], action: str = "ADD") -> dict[str, Any]:
    step = "packing" if action == "ADD" else "unpacking"
    return ev(
        "AggregationEvent", day, action=action, bizStep=step, parentID=parent, childEPCs=children
    )


def shipping(day: int, epcs: list[str], to: str | None) -> dict[str, Any]:
    event = on_items(day, epcs, "shipping", "in_transit")
    if to is not None:
        event["destinationList"] = [{"type": "owning_party", "destination": to}]
    return event


def receiving(day: int, epcs: list[str]) -> dict[str, Any]:
    event = on_items(day, epcs, "receiving", "in_progress")
    event["bizLocation"] = {"id": DISTRIBUTOR_SITE}
    return event


async def parties(client: Client) -> dict[str, Signer]:
    return {
        "brand": await register(client, "Canterbury Dairy", [BRAND]),
        "distributor": await register(client, "Shanghai Distribution", [DISTRIBUTOR]),
        "attacker": await register(client, ATTACKER_NAME, [ATTACKER]),
        "authority": await register(
            client, "Yangshan Port Inspection", [AUTHORITY], role="authority"
        ),
    }


async def inspector(client: Client) -> str:
    async with client.app[LEDGER].pool.acquire() as conn:
        _, token = await tokens.add_token(conn, "Inspector Li", "inspector")
    return token


async def views(client: Client, uri: str, token: str) -> tuple[dict[str, Any], dict[str, Any], str]:
    """What the public (JSON), an inspector (JSON) and a browser (HTML) are shown."""
    where = path(uri)
    public = await history(client, where)
    inside = await history(client, where, Authorization=f"Bearer {token}")
    response = await client.get(where + "?lang=en", headers={"Accept": "text/html"})
    assert response.status == 200, await response.text()
    return public, inside, await response.text()


def public_status(answer: dict[str, Any]) -> dict[str, Any]:
    """Every public field an attacker must not be able to change."""
    status, product = answer["status"], answer["product"]
    return {
        **{k: status[k] for k in ("recalled", "recalls", "inspections", "destroyed", "returned")},
        "expired": status["expired"],
        "producer": product["producer"],
        "lot": product["lot"],
        "name": product["name"],
        "country": product["originCountry"],
        "expiry": product["expiryDate"],
    }


def indexes(answer: dict[str, Any]) -> set[int]:
    return {e["index"] for e in answer["events"]}


def listed(answer: dict[str, Any], index: int) -> dict[str, Any] | None:
    return next((e for e in answer["events"] if e["index"] == index), None)
