"""History assembly over real HTTP: lots, containers, transformations, recalls, proofs."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.keys import HISTORY, LEDGER
from tests.conftest import settled
from tests.epcis_samples import document
from tests.ingest.test_capture import Signer, post, register
from traceledger.accounts import tokens
from traceledger.audit.history_check import verify_history
from traceledger.settings import Settings
from traceledger.standards.gs1 import parse_digital_link
from traceledger.tlog.note import Verifier

Client = TestClient[web.Request, web.Application]

DAIRY, PROCESSOR, AUTHORITY = "9421234", "6901234", "6909999"
CAN = f"urn:epc:id:sgtin:{DAIRY}.012345.CAN1"
CAN_DL = "/01/09421234123456/21/CAN1"  # GTIN-14 of 9421234.012345 (check digit 6)
LOT_A = f"urn:epc:class:lgtin:{DAIRY}.012345.LOTA"
LOT_C = f"urn:epc:class:lgtin:{PROCESSOR}.054321.LOTC"
BLEND = f"urn:epc:id:sgtin:{PROCESSOR}.099999.MIX1"
BLEND_DL = "/01/06901234999990/21/MIX1"
CASE = f"urn:epc:id:sscc:{DAIRY}.0000000001"
PORT = "urn:epc:id:sgln:6909999.00001.0"
# The can's best-before date: always a year ahead, so the story never goes stale.
CAN_EXPIRES = datetime.now(UTC).date() + timedelta(days=365)


def ev(kind: str, when: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "eventTime": f"2026-0{when}T08:00:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        **fields,
    }


def lot_event(when: str, lot: str, biz_step: str, disposition: str | None = None) -> dict[str, Any]:
    """A class-level observation of a whole lot (an inspection, a recall, a disposal)."""
    fields: dict[str, Any] = {"bizStep": biz_step, "quantityList": [{"epcClass": lot}]}
    if disposition is not None:
        fields["disposition"] = disposition
    return ev("ObjectEvent", when, action="OBSERVE", **fields)


@pytest.fixture
async def story(client: Client) -> dict[str, Signer]:
    return await tell_story(client)


async def tell_story(client: Client) -> dict[str, Signer]:
    """A can of milk powder from NZ: commissioned, packed, shipped, inspected at the port,
    blended into a Chinese product, its lot recalled; 9 events by three parties."""
    dairy = await register(client, "Canterbury Dairy", [DAIRY])
    proc = await register(client, "Shanghai Blending", [PROCESSOR])
    port = await register(client, "Yangshan Port Inspection", [AUTHORITY], role="authority")
    commission = ev(
        "ObjectEvent",
        "9-01",
        action="ADD",
        bizStep="commissioning",
        disposition="active",
        epcList=[CAN],
        quantityList=[{"epcClass": LOT_A, "quantity": 500, "uom": "KGM"}],
        readPoint={"id": f"urn:epc:id:sgln:{DAIRY}.00001.0"},
        ilmd={
            "cbvmda:lotNumber": "LOTA",
            "cbvmda:countryOfOrigin": "NZ",
            "cbvmda:itemExpirationDate": CAN_EXPIRES.isoformat(),
        },
        certificationInfo="https://cert.example.org/organic/123",
    )
    pack = ev(
        "AggregationEvent", "9-02", action="ADD", bizStep="packing", parentID=CASE, childEPCs=[CAN]
    )
    ship = ev(
        "ObjectEvent",
        "9-03",
        action="OBSERVE",
        bizStep="shipping",
        disposition="in_transit",
        epcList=[CASE],
    )
    unpack = ev(
        "AggregationEvent",
        "9-10",
        action="DELETE",
        bizStep="unpacking",
        parentID=CASE,
        childEPCs=[CAN],
    )
    case_later = ev(
        "ObjectEvent",
        "9-11",
        action="OBSERVE",
        bizStep="shipping",
        disposition="in_transit",
        epcList=[CASE],
    )
    assert (await post(client, document(commission, pack, ship, unpack, case_later), dairy))[
        0
    ] == 201
    inspect = ev(
        "ObjectEvent",
        "9-05",
        action="OBSERVE",
        bizStep="inspecting",
        disposition="conformant",
        quantityList=[{"epcClass": LOT_A}],
        readPoint={"id": PORT},
    )
    assert (await post(client, document(inspect), port))[0] == 201
    domestic = ev(
        "ObjectEvent",
        "9-06",
        action="ADD",
        bizStep="commissioning",
        disposition="active",
        quantityList=[{"epcClass": LOT_C, "quantity": 100}],
        ilmd={"cbvmda:countryOfOrigin": "CN"},
    )
    blend = ev(
        "TransformationEvent",
        "9-07",
        bizStep="commissioning",
        inputQuantityList=[
            {"epcClass": LOT_A, "quantity": 50, "uom": "KGM"},
            {"epcClass": LOT_C, "quantity": 50, "uom": "KGM"},
        ],
        outputEPCList=[BLEND],
        ilmd={
            "cbvmda:lotNumber": "MIXLOT",
            "cbvmda:countryOfOrigin": "CN",
            "cbvmda:regulatedProductName": "Infant formula stage 1",
        },
        **{"traceledger:confidential": ["ilmd"]},
    )
    assert (await post(client, document(domestic, blend), proc))[0] == 201
    recall = lot_event("9-20", LOT_A, "holding", "recalled")
    assert (await post(client, document(recall), port))[0] == 201
    await settled(client.app[LEDGER], 9)
    return {"dairy": dairy, "proc": proc, "port": port}


async def history(client: Client, path: str, **headers: str) -> dict[str, Any]:
    response = await client.get(path, headers={"Accept": "application/json", **headers})
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


def steps(h: dict[str, Any]) -> list[tuple[str, str]]:
    return [(e["bizStep"], e["relation"]) for e in h["events"]]


async def test_a_serial_learns_its_lot_and_sees_lot_and_container_events(
    client: Client, story: dict[str, Signer]
) -> None:
    h = await history(client, CAN_DL)
    assert h["identifier"]["key"] == "01/09421234123456/21/CAN1"
    assert h["product"]["lot"] == "LOTA"
    assert h["product"]["originCountry"] == "NZ"
    assert h["product"]["producer"]["name"] == "Canterbury Dairy"
    got = steps(h)
    assert ("commissioning", "item") in got
    assert ("shipping", "container") in got  # the case shipped while the can was inside
    assert ("inspecting", "lot") in got  # the port inspected the can's lot
    # After unpacking, the case's travels are no longer the can's.
    assert sum(1 for s, r in got if s == "shipping" and r == "container") == 1
    assert h["status"]["recalled"] is True
    assert h["status"]["inspections"][0]["outcome"] == "conformant"


async def test_a_blended_product_inherits_its_input_lots_history_and_recall(
    client: Client, story: dict[str, Signer]
) -> None:
    h = await history(client, BLEND_DL)
    relations = {(e["bizStep"], e["relation"], e["via"]) for e in h["events"]}
    assert ("inspecting", "input", "01/09421234123456/10/LOTA") in relations
    assert h["status"]["recalled"] is True  # lot A upstream was recalled
    assert h["status"]["recalls"][0]["by"] == "Yangshan Port Inspection"
    countries = {i["key"]: i["country"] for i in h["origin"]["inputs"]}
    assert countries == {"01/09421234123456/10/LOTA": "NZ", "01/06901234543216/10/LOTC": "CN"}


async def test_every_inclusion_proof_verifies_against_the_checkpoint(
    client: Client, story: dict[str, Signer]
) -> None:
    for path in (CAN_DL, BLEND_DL, "/01/09421234123456/10/LOTA"):
        h = await history(client, path)
        verifier = Verifier.parse(h["verifierKey"])
        report = verify_history(h, verifier)
        assert not report.failures
        assert report.verified + report.withheld == len(h["events"]) > 0
    # Tampering with what is shown breaks verification.
    h = await history(client, CAN_DL)
    h["events"][0]["inclusionProof"][0] = h["events"][0]["inclusionProof"][1]
    assert verify_history(h, Verifier.parse(h["verifierKey"])).failures


async def test_confidential_fields_are_shown_only_to_inspectors(
    client: Client, story: dict[str, Signer]
) -> None:
    public = await history(client, BLEND_DL)
    blend = next(e for e in public["events"] if e["type"] == "TransformationEvent")
    assert blend["confidential"] is True
    assert blend["ilmd"] is None
    assert blend["payload"] is None
    async with client.app[LEDGER].pool.acquire() as conn:
        _, token = await tokens.add_token(conn, "Inspector Li", "inspector")
    inside = await history(client, BLEND_DL, Authorization=f"Bearer {token}")
    blend = next(e for e in inside["events"] if e["type"] == "TransformationEvent")
    assert blend["ilmd"]["cbvmda:regulatedProductName"] == "Infant formula stage 1"
    async with client.app[LEDGER].pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM audit_log") == 1
    bad = await client.get(
        BLEND_DL, headers={"Authorization": "Bearer nope", "Accept": "application/json"}
    )
    assert bad.status == 401


async def test_bad_and_unknown_digital_links_are_problems(
    client: Client, story: dict[str, Signer]
) -> None:
    for path, status in (
        ("/01/09421234123457/21/CAN1", 400),  # wrong check digit
        ("/01/abc", 400),
        ("/01/09421234123456/21/NOPE", 404),
        ("/00/123", 400),
    ):
        response = await client.get(path, headers={"Accept": "application/json"})
        assert response.status == status, path
        assert response.content_type == "application/problem+json"


async def test_gtin_13_and_percent_encoding_resolve_to_the_same_item(
    client: Client, story: dict[str, Signer]
) -> None:
    a = await history(client, CAN_DL)
    b = await history(client, "/01/09421234123456/21/%43AN1?format=json")
    assert a["identifier"]["key"] == b["identifier"]["key"]


async def test_link_type_all_returns_a_linkset(client: Client, story: dict[str, Signer]) -> None:
    response = await client.get(CAN_DL + "?linkType=all")
    assert response.status == 200
    assert response.content_type == "application/linkset+json"
    (links,) = (await response.json(content_type=None))["linkset"]
    assert links["anchor"].endswith("/01/09421234123456/21/CAN1")
    assert "https://gs1.org/voc/pip" in links
    assert links["https://gs1.org/voc/recallStatus"][0]["title"] == "recalled"


async def test_browsers_get_the_page_in_their_language(
    client: Client, story: dict[str, Signer]
) -> None:
    zh = await client.get(BLEND_DL, headers={"Accept": "text/html", "Accept-Language": "zh-CN"})
    assert zh.status == 200
    assert zh.content_type == "text/html"
    text = await zh.text()
    assert "召回" in text
    assert "default-src 'none'" in zh.headers["Content-Security-Policy"]
    en = await client.get(BLEND_DL + "?lang=en", headers={"Accept": "text/html"})
    assert "Recalled" in await en.text()
    missing = await client.get("/01/09421234123456/21/NOPE", headers={"Accept": "text/html"})
    assert missing.status == 404
    assert missing.content_type == "text/html"


async def test_a_repeated_lookup_is_served_from_the_cache_until_an_event_concerns_it(
    client: Client, story: dict[str, Signer]
) -> None:
    service = client.app[HISTORY]
    can = parse_digital_link("https://id.gs1.org" + CAN_DL)
    first = await service.lookup(can)
    assert await service.lookup(can) is first
    # An event about something else moves the log on but leaves the answer current: it is
    # served again, still proven against the checkpoint it was assembled for.
    other = lot_event("9-21", LOT_C, "storing")
    assert (await post(client, document(other), story["proc"]))[0] == 201
    await settled(client.app[LEDGER], 10)
    again = await service.lookup(can)
    assert again is first
    assert again.answer["treeSize"] == 9
    h = await history(client, CAN_DL)
    assert h["treeSize"] == 9
    assert not verify_history(h, Verifier.parse(h["verifierKey"])).failures
    # An event on the can's lot is part of its history: the next lookup assembles anew.
    destroyed = lot_event("9-22", LOT_A, "destroying", "destroyed")
    assert (await post(client, document(destroyed), story["port"]))[0] == 201
    await settled(client.app[LEDGER], 11)
    h = await history(client, CAN_DL)
    assert h["treeSize"] >= 11
    assert h["status"]["destroyed"] is True
    assert not verify_history(h, Verifier.parse(h["verifierKey"])).failures


async def test_inspectors_and_the_public_never_share_a_cached_answer(
    client: Client, story: dict[str, Signer]
) -> None:
    public = await history(client, BLEND_DL)
    async with client.app[LEDGER].pool.acquire() as conn:
        _, token = await tokens.add_token(conn, "Inspector Wu", "inspector")
    inside = await history(client, BLEND_DL, Authorization=f"Bearer {token}")
    again = await history(client, BLEND_DL)
    blend = [
        next(e for e in h["events"] if e["type"] == "TransformationEvent")
        for h in (public, inside, again)
    ]
    assert [b["ilmd"] is None for b in blend] == [True, False, True]


async def test_the_json_body_names_the_path_each_caller_asked_with(
    client: Client, story: dict[str, Signer]
) -> None:
    a = await history(client, CAN_DL)
    b = await history(client, "/01/09421234123456/21/%43AN1")
    assert a["identifier"]["input"] == CAN_DL
    assert b["identifier"]["input"] == "/01/09421234123456/21/CAN1"  # aiohttp decodes it
    assert {**a, "identifier": None} == {**b, "identifier": None}


@pytest.mark.parametrize("cache_bytes", [0])
async def test_with_the_cache_off_every_lookup_is_assembled_anew(
    settings: Settings, cache_bytes: int
) -> None:
    quiet = dataclasses.replace(settings, lookup_cache_bytes=cache_bytes)
    async with TestClient(TestServer(create_app(quiet))) as client:
        dairy = await register(client, "Canterbury Dairy", [DAIRY])
        commission = ev("ObjectEvent", "9-01", action="ADD", bizStep="commissioning", epcList=[CAN])
        assert (await post(client, document(commission), dairy))[0] == 201
        await settled(client.app[LEDGER], 1)
        service = client.app[HISTORY]
        can = parse_digital_link("https://id.gs1.org" + CAN_DL)
        assert await service.lookup(can) is not await service.lookup(can)
        assert len(service.cache) == 0
