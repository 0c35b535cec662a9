"""Lot exports: an EPCIS 2.0 document that re-imports as duplicates, and a safe, sortable CSV."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.keys import LEDGER
from tests.epcis_samples import document
from tests.ingest.test_capture import post, register
from tests.inspect.test_query import (
    ALL,
    AUTHORITY,
    CAN1,
    DAIRY,
    LOT_A_PATH,
    NAMESPACES,
    PROC_GLN,
    PROCESSOR,
    PRODUCT_NAME,
    World,
    build_world,
    settle,
)
from traceledger.inspect.export import (
    CSV_COLUMNS,
    EPCIS_CONTEXT,
    ExportedEvent,
    LotExport,
    csv_text,
    epcis_document,
)
from traceledger.standards.eventhash import document_context, event_hash
from traceledger.standards.gs1 import GS1Key, check_digit
from traceledger.standards.schemas import SchemaSet

Client = TestClient[web.Request, web.Application]

LOT_A_EXPORT = f"/v1/export/{LOT_A_PATH}"
LOT_C_EXPORT = "/v1/export/01/06901234543216/10/LOTC"
DAIRY_GLN = "942123400001" + check_digit("942123400001")
PORT_GLN = "690999900001" + check_digit("690999900001")
# The lot's own events, its cans' events, the case's while the cans were in it, and the
# blend that consumed a can; not the processor's other lot.
LOT_A_EVENTS = ALL - {"make_c"}


@pytest.fixture
async def world(client: Client) -> World:
    return await build_world(client)


async def fetch(world: World, path: str, token: str | None = "inspector") -> Any:
    headers = {"Authorization": f"Bearer {world.tokens[token]}"} if token else {}
    return await world.client.get(path, headers=headers)


async def jsonld(world: World, path: str, token: str = "inspector") -> dict[str, Any]:
    response = await fetch(world, path + ".jsonld", token)
    assert response.status == 200, await response.text()
    assert response.content_type == "application/ld+json"
    assert "attachment" in response.headers["Content-Disposition"]
    body: dict[str, Any] = await response.json(content_type=None)
    return body


async def test_the_jsonld_export_is_a_valid_epcis_document_of_the_lot(world: World) -> None:
    doc = await jsonld(world, LOT_A_EXPORT)
    assert doc["@context"][0] == EPCIS_CONTEXT
    assert doc["type"] == "EPCISDocument"
    assert doc["schemaVersion"] == "2.0"
    assert datetime.fromisoformat(doc["creationDate"].replace("Z", "+00:00")) <= datetime.now(UTC)
    assert SchemaSet().document_errors(doc) == []
    events = doc["epcisBody"]["eventList"]
    assert world.names(events) == LOT_A_EVENTS
    times = [datetime.fromisoformat(e["eventTime"]) for e in events]
    assert times == sorted(times)
    # Two parties' "ex" namespaces are both kept: one under another name.
    assert set(doc["@context"][1].values()) == set(NAMESPACES.values())
    blend = next(e for e in events if e["type"] == "TransformationEvent")
    assert blend["ilmd"]["cbvmda:lotNumber"] == "MIXLOT"  # an inspector sees it all


async def test_the_export_reimports_with_every_event_a_duplicate(world: World) -> None:
    doc = await jsonld(world, LOT_A_EXPORT)
    archive = await register(
        world.client, "City Archive", [DAIRY, PROCESSOR, AUTHORITY], role="authority"
    )
    status, receipt = await post(world.client, doc, archive)
    assert status in (200, 201), receipt
    statuses = {e["status"] for e in receipt["entries"]}
    assert statuses == {"duplicate"}
    assert len(receipt["entries"]) == len(LOT_A_EVENTS)
    assert {e["index"] for e in receipt["entries"]} == {
        world.indexes[name] for name in LOT_A_EVENTS
    }


async def test_the_owner_of_the_lot_may_export_it_and_others_may_not(world: World) -> None:
    own = await jsonld(world, LOT_A_EXPORT, "dairy")
    blend = next(e for e in own["epcisBody"]["eventList"] if e["type"] == "TransformationEvent")
    assert "ilmd" not in blend  # the processor marked it confidential
    assert (await jsonld(world, LOT_C_EXPORT, "proc"))["epcisBody"]["eventList"]
    refused = await fetch(world, LOT_A_EXPORT + ".csv", "proc")
    assert refused.status == 403
    assert refused.content_type == "application/problem+json"
    assert (await fetch(world, LOT_A_EXPORT + ".jsonld", "port")).status == 403
    assert (await fetch(world, LOT_A_EXPORT + ".jsonld", None)).status == 401
    assert (await fetch(world, LOT_A_EXPORT + ".csv", "regulator")).status == 200
    async with world.client.app[LEDGER].pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT t.name, a.path, a.status FROM audit_log a"
            " JOIN access_tokens t ON t.id = a.token_id ORDER BY a.id"
        )
    assert [(r["name"], r["path"], r["status"]) for r in rows] == [
        ("dairy system", LOT_A_EXPORT + ".jsonld", 200),
        ("proc system", LOT_C_EXPORT + ".jsonld", 200),
        ("proc system", LOT_A_EXPORT + ".csv", 403),
        ("port system", LOT_A_EXPORT + ".jsonld", 403),
        ("regulator Li", LOT_A_EXPORT + ".csv", 200),
    ]


async def test_unknown_and_malformed_lots_are_problems(world: World) -> None:
    missing = await fetch(world, "/v1/export/01/09421234123456/10/NOPE.jsonld")
    assert missing.status == 404
    assert missing.content_type == "application/problem+json"
    bad = await fetch(world, "/v1/export/01/09421234123457/10/LOTA.csv")
    assert bad.status == 400
    assert (await bad.json(content_type=None))["type"] == "/problems/invalid-identifier"


async def test_a_lot_named_only_in_its_serials_ilmd_exports_their_events(world: World) -> None:
    cans = [f"urn:epc:id:sgtin:{DAIRY}.012345.B{i}" for i in range(3)]
    made = {
        "type": "ObjectEvent",
        "eventTime": "2026-09-10T08:00:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        "action": "ADD",
        "bizStep": "commissioning",
        "epcList": cans,
        "ilmd": {"cbvmda:lotNumber": "LOTB"},
    }
    sold = {**made, "action": "OBSERVE", "bizStep": "retail_selling", "epcList": cans[:1]}
    del sold["ilmd"]
    status, _ = await post(world.client, document(made, sold), world.signers["dairy"])
    assert status == 201
    await settle(world.client, len(ALL) + 2)
    doc = await jsonld(world, "/v1/export/01/09421234123456/10/LOTB")
    assert [e["bizStep"] for e in doc["epcisBody"]["eventList"]] == [
        "commissioning",
        "retail_selling",
    ]
    _, rows = await csv_rows(world, "/v1/export/01/09421234123456/10/LOTB")
    assert {r["traceability_lot_code"] for r in rows} == {"LOTB"}
    assert [r["cte"] for r in rows] == ["creation"] * 3 + ["retail_sale"]


async def csv_rows(world: World, path: str) -> tuple[str, list[dict[str, str]]]:
    response = await fetch(world, path + ".csv")
    assert response.status == 200
    assert response.content_type == "text/csv"
    text = await response.text()
    reader = csv.reader(io.StringIO(text, newline=""))
    header = next(reader)
    assert tuple(header) == CSV_COLUMNS
    return text, [dict(zip(header, row, strict=True)) for row in reader]


async def test_the_csv_has_one_row_per_event_line_with_key_data_elements(world: World) -> None:
    text, rows = await csv_rows(world, LOT_A_EXPORT)
    assert text.endswith("\r\n")
    assert all(line.endswith("\r") for line in text.split("\n")[:-1])  # RFC 4180: CRLF
    # commission 2 cans + the lot, pack case + 2 cans, ship, inspect, receive,
    # unpack case + 2 cans, blend can + lot C + output.
    assert len(rows) == 3 + 3 + 1 + 1 + 1 + 3 + 3
    assert {r["event_id"] for r in rows} == {world.ids[n] for n in LOT_A_EVENTS}

    made = next(r for r in rows if r["cte"] == "creation" and r["line_role"] == "class")
    assert made["traceability_lot_code"] == "LOTA"
    assert made["product_gtin"] == "09421234123456"
    assert (made["quantity"], made["unit_of_measure"]) == ("500", "KGM")
    assert made["location"] == DAIRY_GLN
    assert made["location_description"] == "Canterbury Dairy"
    assert made["recorded_by"] == "Canterbury Dairy"
    assert made["event_time_utc"] == "2026-09-01T00:00:00.000000Z"
    assert made["event_time_local"] == "2026-09-01T08:00:00+08:00"
    # The cell would be a formula: it is defused, and its comma and quotes survive.
    assert made["product_description"] == "'" + PRODUCT_NAME
    can = next(r for r in rows if r["cte"] == "creation" and r["serial_number"] == "CAN1")
    assert (can["traceability_lot_code"], can["quantity"], can["unit_of_measure"]) == (
        "LOTA",
        "1",
        "EA",
    )

    ship = next(r for r in rows if r["cte"] == "shipping")
    assert ship["from"].startswith("owning_party: ")
    assert ship["to"] == f"location: {PROC_GLN}"
    assert ship["reference_documents"] == "po: urn:epcglobal:cbv:bt:6901234000014:PO-77"
    assert ship["identifier"].startswith("00/")  # the case (SSCC)

    inspected = next(r for r in rows if r["cte"] == "inspection")
    assert (inspected["location"], inspected["location_description"]) == (
        PORT_GLN,
        "Yangshan Port Inspection",
    )
    assert inspected["disposition"] == "conformant"

    blend = {r["line_role"]: r for r in rows if r["cte"] == "transformation"}
    assert blend["input"]["traceability_lot_code"] == "LOTA"  # the can's lot, from its making
    assert blend["inputClass"]["traceability_lot_code"] == "LOTC"
    assert blend["output"]["traceability_lot_code"] == "MIXLOT"
    assert blend["output"]["product_description"] == "Formula"

    for row in rows:
        for cell in row.values():
            assert not cell.startswith(("=", "+", "-", "@")), cell
    # Sortable: the UTC column sorts as the events happened.
    utc = [r["event_time_utc"] for r in rows]
    assert utc == sorted(utc)


def _event(extra: dict[str, Any]) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "eventTime": "2026-09-01T08:00:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        "action": "OBSERVE",
        "epcList": [CAN1],
        **extra,
    }


def test_clashing_namespace_prefixes_are_renamed_keeping_every_event_hash() -> None:
    when = datetime(2026, 9, 1, tzinfo=UTC)
    first = _event({"ex:temperature": 4})
    second = _event({"ex:temperature": 5, "action": "ADD", "ilmd": {"ex:note": "ex:keep"}})
    export = LotExport(
        GS1Key("gtin", "09421234123456", lot="LOTA"),
        [
            ExportedEvent(0, when, first, 1, {"ex": "https://a.example/"}),
            ExportedEvent(1, when, second, 1, {"ex": "https://b.example/", "cbx": "https://c/"}),
        ],
        {1: "Dairy"},
        {},
    )
    doc = epcis_document(export)
    assert doc["@context"][1] == {
        "cbx": "https://c/",
        "ex": "https://a.example/",
        "ex2": "https://b.example/",
    }
    renamed = doc["epcisBody"]["eventList"][1]
    assert "ex2:temperature" in renamed
    assert SchemaSet().document_errors(doc) == []
    context = document_context(doc)
    assert event_hash(doc["epcisBody"]["eventList"][0], context) == event_hash(
        first, {"ex": "https://a.example/"}
    )
    assert event_hash(renamed, context) == event_hash(
        second, {"ex": "https://b.example/", "cbx": "https://c/"}
    )
    # An event with no lines still makes a row; every cell is defused.
    lonely = _event({"epcList": [], "bizStep": "@evil"})
    csv_export = LotExport(export.key, [ExportedEvent(2, when, lonely, None, {})], {}, {})
    (_, row) = list(csv.reader(io.StringIO(csv_text(csv_export), newline="")))
    assert row[CSV_COLUMNS.index("biz_step")] == "'@evil"
    assert row[CSV_COLUMNS.index("identifier")] == ""
