"""GET /v1/events: the EPCIS 2.0 query subset, its pagination, who sees what, the audit."""

from __future__ import annotations

import asyncio
import re
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import given
from hypothesis import strategies as st

from gateway.cli.main import main as cli_main
from gateway.keys import LEDGER
from tests.conftest import cli_args, settled
from tests.epcis_samples import document
from tests.ingest.test_capture import Signer, post, register
from traceledger.accounts import tokens
from traceledger.errors import RegistryError
from traceledger.inspect.query import Position, decode_page_token, encode_page_token
from traceledger.inspect.visibility import owned_key_patterns
from traceledger.settings import Settings
from traceledger.standards.gs1 import GS1Key, check_digit

Client = TestClient[web.Request, web.Application]

DAIRY, PROCESSOR, AUTHORITY = "9421234", "6901234", "6909999"
CAN1 = f"urn:epc:id:sgtin:{DAIRY}.012345.CAN1"
CAN1_DL = "https://id.gs1.org/01/09421234123456/21/CAN1"
CAN2 = f"urn:epc:id:sgtin:{DAIRY}.012345.CAN2"
LOT_A = f"urn:epc:class:lgtin:{DAIRY}.012345.LOTA"
LOT_A_PATH = "01/09421234123456/10/LOTA"
LOT_C = f"urn:epc:class:lgtin:{PROCESSOR}.054321.LOTC"
BLEND = f"urn:epc:id:sgtin:{PROCESSOR}.099999.MIX1"
CASE = f"urn:epc:id:sscc:{DAIRY}.0000000001"
DAIRY_SITE = f"urn:epc:id:sgln:{DAIRY}.00001.0"
PROC_SITE = f"urn:epc:id:sgln:{PROCESSOR}.00001.0"
PROC_GLN = "6901234000016"
PORT = f"urn:epc:id:sgln:{AUTHORITY}.00001.0"
# A formula, were a spreadsheet to run it; and a comma and quotes for RFC 4180 quoting.
PRODUCT_NAME = '=1+2 "Whole" milk powder, 25 kg'


def at(day: str, hour: str = "08") -> str:
    return f"2026-09-{day}T{hour}:00:00+08:00"


def ev(kind: str, when: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "eventTime": when, "eventTimeZoneOffset": "+08:00", **fields}


WORLD_EVENTS: dict[str, tuple[str, dict[str, Any]]] = {
    "commission": (
        "dairy",
        ev(
            "ObjectEvent",
            at("01"),
            action="ADD",
            bizStep="commissioning",
            disposition="active",
            epcList=[CAN1, CAN2],
            quantityList=[{"epcClass": LOT_A, "quantity": 500, "uom": "KGM"}],
            readPoint={"id": DAIRY_SITE},
            bizLocation={"id": DAIRY_SITE},
            ilmd={
                "cbvmda:lotNumber": "LOTA",
                "cbvmda:countryOfOrigin": "NZ",
                "cbvmda:regulatedProductName": PRODUCT_NAME,
            },
        ),
    ),
    "pack": (
        "dairy",
        ev(
            "AggregationEvent",
            at("02"),
            action="ADD",
            bizStep="packing",
            parentID=CASE,
            childEPCs=[CAN1, CAN2],
            bizLocation={"id": DAIRY_SITE},
        ),
    ),
    "ship": (
        "dairy",
        ev(
            "ObjectEvent",
            at("03"),
            action="OBSERVE",
            bizStep="shipping",
            disposition="in_transit",
            epcList=[CASE],
            readPoint={"id": DAIRY_SITE},
            bizTransactionList=[
                {"type": "po", "bizTransaction": "urn:epcglobal:cbv:bt:6901234000014:PO-77"}
            ],
            sourceList=[{"type": "owning_party", "source": f"urn:epc:id:pgln:{DAIRY}.00001"}],
            destinationList=[{"type": "location", "destination": PROC_SITE}],
            **{"ex:carrier": "Southern Cross Shipping"},
        ),
    ),
    "inspect": (
        "port",
        ev(
            "ObjectEvent",
            at("05"),
            action="OBSERVE",
            bizStep="inspecting",
            disposition="conformant",
            quantityList=[{"epcClass": LOT_A}],
            readPoint={"id": PORT},
            bizLocation={"id": PORT},
        ),
    ),
    "receive": (
        "proc",
        ev(
            "ObjectEvent",
            at("06"),
            action="OBSERVE",
            bizStep="receiving",
            disposition="in_progress",
            epcList=[CASE],
            readPoint={"id": PROC_SITE},
            bizLocation={"id": PROC_SITE},
        ),
    ),
    "unpack": (
        "proc",
        ev(
            "AggregationEvent",
            at("06", "10"),
            action="DELETE",
            bizStep="unpacking",
            parentID=CASE,
            childEPCs=[CAN1, CAN2],
            bizLocation={"id": PROC_SITE},
        ),
    ),
    "make_c": (
        "proc",
        ev(
            "ObjectEvent",
            at("07"),
            action="ADD",
            bizStep="commissioning",
            disposition="active",
            quantityList=[{"epcClass": LOT_C, "quantity": 100, "uom": "KGM"}],
            bizLocation={"id": PROC_SITE},
        ),
    ),
    "blend": (
        "proc",
        ev(
            "TransformationEvent",
            at("08"),
            bizStep="commissioning",
            inputEPCList=[CAN1],
            inputQuantityList=[{"epcClass": LOT_C, "quantity": 50, "uom": "KGM"}],
            outputEPCList=[BLEND],
            bizLocation={"id": PROC_SITE},
            ilmd={"cbvmda:lotNumber": "MIXLOT", "cbvmda:regulatedProductName": "Formula"},
            **{"traceledger:confidential": ["ilmd"], "ex:mixingTemperature": 21},
        ),
    ),
}
ALL = frozenset(WORLD_EVENTS)
CAN1_EVENTS = {"commission", "pack", "unpack", "blend"}
ACTIVE_OR_MOVING = {"ship", "commission", "make_c"}
AT_PROCESSOR = {"receive", "unpack", "make_c", "blend"}


class World:
    def __init__(self, client: Client) -> None:
        self.client = client
        self.signers: dict[str, Signer] = {}
        self.ids: dict[str, str] = {}  # event name -> eventID
        self.indexes: dict[str, int] = {}
        self.tokens: dict[str, str] = {}

    def names(self, events: list[dict[str, Any]]) -> set[str]:
        by_id = {v: k for k, v in self.ids.items()}
        return {by_id.get(e["eventID"], e["eventID"]) for e in events}


async def settle(client: Client, size: int) -> None:
    """Wait until `size` entries are signed into a checkpoint and indexed."""
    await settled(client.app[LEDGER], size, within=30)


# Each party names its own extension namespace "ex": an export must keep them apart.
NAMESPACES = {
    "dairy": "https://ns.dairy.example/epcis/",
    "proc": "https://ns.blending.example/epcis/",
}


async def capture(world: World, signer: str, *names: str) -> None:
    doc = document(*(WORLD_EVENTS[n][1] for n in names))
    if signer in NAMESPACES:
        doc["@context"] = [*doc["@context"], {"ex": NAMESPACES[signer]}]
    status, receipt = await post(world.client, doc, world.signers[signer])
    assert status == 201, receipt
    for name, entry in zip(names, receipt["entries"], strict=True):
        world.ids[name] = entry["eventID"]
        world.indexes[name] = entry["index"]


async def build_world(client: Client) -> World:
    """Three parties, a lot of milk powder, its cans and case, and a blend made from it."""
    w = World(client)
    w.signers["dairy"] = await register(client, "Canterbury Dairy", [DAIRY])
    w.signers["proc"] = await register(client, "Shanghai Blending", [PROCESSOR])
    w.signers["port"] = await register(
        client, "Yangshan Port Inspection", [AUTHORITY], role="authority"
    )
    await capture(w, "dairy", "commission", "pack", "ship")
    await capture(w, "port", "inspect")
    await capture(w, "proc", "receive", "unpack", "make_c", "blend")
    async with client.app[LEDGER].pool.acquire() as conn:
        for role in ("inspector", "regulator"):
            w.tokens[role] = (await tokens.add_token(conn, f"{role} Li", role))[1]
        for name in ("dairy", "proc", "port"):
            ent = w.signers[name].enterprise_id
            w.tokens[name] = (
                await tokens.add_token(conn, f"{name} system", "enterprise", enterprise_id=ent)
            )[1]
    await settle(client, len(WORLD_EVENTS))
    return w


@pytest.fixture
async def world(client: Client) -> World:
    return await build_world(client)


async def query(
    world: World, params: dict[str, str] | str, token: str = "inspector", status: int = 200
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {world.tokens[token]}"}
    if isinstance(params, str):
        response = await world.client.get("/v1/events?" + params, headers=headers)
    else:
        response = await world.client.get("/v1/events", params=params, headers=headers)
    body: dict[str, Any] = await response.json(content_type=None)
    assert response.status == status, body
    return body


async def names(world: World, params: dict[str, str], token: str = "inspector") -> set[str]:
    return world.names((await query(world, params, token))["events"])


# ---------------------------------------------------------------------------------------------
# Filters


async def test_without_parameters_every_event_comes_in_time_order(world: World) -> None:
    body = await query(world, {})
    assert world.names(body["events"]) == ALL
    times = [e["eventTime"] for e in body["events"]]
    assert times == sorted(times)
    assert body["nextPageToken"] is None
    blend = next(e for e in body["events"] if e["eventID"] == world.ids["blend"])
    assert blend == {**WORLD_EVENTS["blend"][1], "eventID": world.ids["blend"]}  # as captured


FILTERS: list[tuple[dict[str, str], set[str]]] = [
    ({"eventType": "TransformationEvent"}, {"blend"}),
    ({"eventType": "AggregationEvent|TransformationEvent"}, {"pack", "unpack", "blend"}),
    ({"eventType": "AggregationEvent,TransformationEvent"}, {"pack", "unpack", "blend"}),
    ({"GE_eventTime": at("05"), "LT_eventTime": at("07")}, {"inspect", "receive", "unpack"}),
    ({"GE_eventTime": "2026-09-08T00:00:00Z"}, {"blend"}),
    ({"LT_eventTime": at("02")}, {"commission"}),
    ({"EQ_bizStep": "shipping"}, {"ship"}),
    ({"EQ_bizStep": "https://ref.gs1.org/cbv/BizStep-shipping"}, {"ship"}),
    ({"EQ_bizStep": "urn:epcglobal:cbv:bizstep:shipping"}, {"ship"}),
    ({"EQ_bizStep": "packing,unpacking"}, {"pack", "unpack"}),
    ({"EQ_disposition": "conformant"}, {"inspect"}),
    (
        {"EQ_disposition": "urn:epcglobal:cbv:disp:in_transit|active"},
        {"ship", "commission", "make_c"},
    ),
    ({"MATCH_epc": CAN1}, {"commission", "pack", "unpack", "blend"}),
    ({"MATCH_epc": CAN1_DL}, {"commission", "pack", "unpack", "blend"}),
    (
        {"MATCH_epc": "https://example.com/01/09421234123456/10/LOTA/21/CAN1"},
        {"commission", "pack", "unpack", "blend"},
    ),
    ({"MATCH_epc": CASE}, {"ship", "receive"}),
    ({"MATCH_epc": BLEND}, {"blend"}),
    (
        {"MATCH_epc": f"urn:epc:idpat:sgtin:{DAIRY}.012345.*"},
        {"commission", "pack", "unpack", "blend"},
    ),
    ({"MATCH_anyEPC": CASE}, {"pack", "ship", "receive", "unpack"}),
    ({"MATCH_anyEPC": f"{CASE}|{BLEND}"}, {"pack", "ship", "receive", "unpack", "blend"}),
    ({"MATCH_epcClass": LOT_A}, {"commission", "inspect"}),
    ({"MATCH_epcClass": "https://id.gs1.org/" + LOT_A_PATH}, {"commission", "inspect"}),
    ({"MATCH_epcClass": "https://id.gs1.org/01/09421234123456"}, {"commission", "inspect"}),
    ({"MATCH_epcClass": f"{LOT_A}|{LOT_C}"}, {"commission", "inspect", "make_c", "blend"}),
    ({"EQ_bizLocation": PROC_SITE}, {"receive", "unpack", "make_c", "blend"}),
    (
        {"EQ_bizLocation": f"https://id.gs1.org/414/{PROC_GLN}"},
        {"receive", "unpack", "make_c", "blend"},
    ),
    ({"EQ_readPoint": PORT}, {"inspect"}),
    ({"EQ_readPoint": DAIRY_SITE}, {"commission", "ship"}),
    ({"EQ_bizLocation": PROC_SITE, "eventType": "ObjectEvent"}, {"receive", "make_c"}),
    ({"MATCH_epc": CAN1, "EQ_bizStep": "packing|unpacking"}, {"pack", "unpack"}),
    ({"MATCH_epc": "urn:uuid:7b6e43c6-8e8e-4a9f-9c7e-000000000000"}, set()),
]


async def test_each_parameter_filters_as_epcis_says(world: World) -> None:
    # One world for every case: building it is most of a test's time.
    for params, expected in FILTERS:
        assert await names(world, params) == expected, params


MORE_FILTERS: list[tuple[dict[str, str], set[str]]] = [
    ({"EQ_action": "ADD"}, {"commission", "pack", "make_c"}),
    ({"EQ_action": "DELETE|OBSERVE"}, {"unpack", "ship", "inspect", "receive"}),
    ({"MATCH_parentID": CASE}, {"pack", "unpack"}),
    ({"MATCH_parentID": CAN1}, set()),
    ({"MATCH_inputEPC": CAN1}, {"blend"}),
    ({"MATCH_inputEPC": BLEND}, set()),
    ({"MATCH_outputEPC": BLEND}, {"blend"}),
    ({"EQ_source_owning_party": f"urn:epc:id:pgln:{DAIRY}.00001"}, {"ship"}),
    ({"EQ_source_possessing_party": f"urn:epc:id:pgln:{DAIRY}.00001"}, set()),
    ({"EQ_destination_location": PROC_SITE}, {"ship"}),
    ({"EQ_destination_location": f"https://id.gs1.org/414/{PROC_GLN}"}, {"ship"}),
    ({"EQ_destination_owning_party": PROC_SITE}, set()),
    ({"EXISTS_errorDeclaration": ""}, set()),
]


async def test_the_further_epcis_parameters_filter_as_epcis_says(world: World) -> None:
    for params, expected in MORE_FILTERS:
        assert await names(world, params) == expected, params
    chosen = f"{world.ids['ship']}|{world.ids['blend']}"
    assert await names(world, {"EQ_eventID": chosen}) == {"ship", "blend"}


async def test_error_declarations_are_found_with_exists_error_declaration(world: World) -> None:
    declared = {
        **WORLD_EVENTS["ship"][1],
        "errorDeclaration": {"declarationTime": at("09"), "reason": "incorrect_data"},
    }
    status, _ = await post(world.client, document(declared), world.signers["dairy"])
    assert status == 201
    await settle(world.client, len(WORLD_EVENTS) + 1)
    body = await query(world, "EXISTS_errorDeclaration")
    assert [e["errorDeclaration"]["reason"] for e in body["events"]] == ["incorrect_data"]
    assert await names(world, {"EXISTS_errorDeclaration": "true", "EQ_bizStep": "receiving"}) == (
        set()
    )


async def test_record_time_bounds_follow_when_the_log_recorded_each_event(world: World) -> None:
    async with world.client.app[LEDGER].pool.acquire() as conn:
        boundary = await conn.fetchval("SELECT now()")
    late = ev("ObjectEvent", at("01"), action="OBSERVE", bizStep="storing", epcList=[CAN2])
    status, receipt = await post(world.client, document(late), world.signers["dairy"])
    assert status == 201
    await settle(world.client, len(WORLD_EVENTS) + 1)
    since = boundary.isoformat()
    after = await query(world, {"GE_recordTime": since})
    assert [e["eventID"] for e in after["events"]] == [receipt["entries"][0]["eventID"]]
    assert await names(world, {"LT_recordTime": since}) == ALL


async def test_order_by_and_direction_sort_the_results(world: World) -> None:
    newest_first = (await query(world, {"orderBy": "eventTime"}))["events"]
    times = [e["eventTime"] for e in newest_first]
    assert times == sorted(times, reverse=True)  # EPCIS: DESC unless told otherwise
    oldest_first = await query(world, {"orderBy": "eventTime", "orderDirection": "ASC"})
    assert [e["eventTime"] for e in oldest_first["events"]] == sorted(times)
    recorded = await query(world, {"orderBy": "recordTime", "orderDirection": "ASC"})
    by_index = sorted(ALL, key=lambda n: world.indexes[n])
    assert [world.names([e]).pop() for e in recorded["events"]] == by_index
    # Paging keeps the order, one event at a time, in both directions.
    for direction in ("ASC", "DESC"):
        got: list[str] = []
        params = {"orderBy": "recordTime", "orderDirection": direction, "perPage": "1"}
        page = await query(world, params)
        while True:
            got += [world.names([e]).pop() for e in page["events"]]
            if page["nextPageToken"] is None:
                break
            page = await query(world, {**params, "nextPageToken": page["nextPageToken"]})
        assert got == (by_index if direction == "ASC" else by_index[::-1])


async def test_event_count_limit_caps_the_results_across_pages(world: World) -> None:
    got: list[dict[str, Any]] = []
    params = {"eventCountLimit": "3", "perPage": "2"}
    page = await query(world, params)
    while True:
        got += page["events"]
        if page["nextPageToken"] is None:
            break
        page = await query(world, {**params, "nextPageToken": page["nextPageToken"]})
    everything = (await query(world, {}))["events"]
    assert got == everything[:3]


async def test_an_unencoded_plus_in_a_time_still_means_the_offset(world: World) -> None:
    body = await query(world, "GE_eventTime=2026-09-08T00:00:00+08:00")
    assert world.names(body["events"]) == {"blend"}


async def test_repeated_list_parameters_add_values(world: World) -> None:
    body = await query(world, "EQ_bizStep=shipping&EQ_bizStep=inspecting")
    assert world.names(body["events"]) == {"ship", "inspect"}


async def test_redacted_events_are_left_out(world: World) -> None:
    async with world.client.app[LEDGER].pool.acquire() as conn:
        await conn.execute(
            "UPDATE entries SET payload = NULL WHERE idx = $1", world.indexes["make_c"]
        )
    assert await names(world, {}) == ALL - {"make_c"}


# ---------------------------------------------------------------------------------------------
# Pagination


async def test_pages_follow_each_other_without_duplicates_or_gaps(world: World) -> None:
    # Twenty events at the very same instant: the index breaks the tie.
    same_time = [
        ev(
            "ObjectEvent",
            at("04"),
            action="OBSERVE",
            bizStep="storing",
            epcList=[f"urn:epc:id:sgtin:{DAIRY}.012345.S{i}"],
        )
        for i in range(20)
    ]
    status, _ = await post(world.client, document(*same_time), world.signers["dairy"])
    assert status == 201
    await settle(world.client, len(WORLD_EVENTS) + 20)
    everything = (await query(world, {"perPage": "1000"}))["events"]
    assert len(everything) == len(WORLD_EVENTS) + 20

    seen: list[dict[str, Any]] = []
    headers = {"Authorization": f"Bearer {world.tokens['inspector']}"}
    url: str | None = "/v1/events?perPage=3"
    pages = 0
    while url is not None:
        response = await world.client.get(url, headers=headers)
        assert response.status == 200
        body = await response.json()
        assert len(body["events"]) <= 3
        seen += body["events"]
        pages += 1
        link = response.headers.get("Link")
        if body["nextPageToken"] is None:
            assert link is None
            url = None
        else:
            assert link is not None
            found = re.fullmatch(r'<https?://[^/]+(/v1/events\?[^>]+)>; rel="next"', link)
            assert found is not None, link
            assert f"nextPageToken={body['nextPageToken']}" in found.group(1)
            url = found.group(1)
    assert pages == -(-len(everything) // 3)
    assert [e["eventID"] for e in seen] == [e["eventID"] for e in everything]
    assert len({e["eventID"] for e in seen}) == len(seen)


async def test_pagination_keeps_the_filters(world: World) -> None:
    first = await query(world, {"MATCH_epc": CAN1, "perPage": "1"})
    assert len(first["events"]) == 1
    got = world.names(first["events"])
    token = first["nextPageToken"]
    while token is not None:
        page = await query(world, {"MATCH_epc": CAN1, "perPage": "1", "nextPageToken": token})
        got |= world.names(page["events"])
        token = page["nextPageToken"]
    assert got == {"commission", "pack", "unpack", "blend"}


def test_page_tokens_round_trip() -> None:
    from datetime import UTC, datetime

    when = datetime(2026, 9, 1, 0, 0, 0, 123456, tzinfo=UTC)
    for position in (Position(when, 42), Position(None, 7, served=3)):
        assert decode_page_token(encode_page_token(position)) == position


# ---------------------------------------------------------------------------------------------
# Refusals


BAD_PARAMETERS = [
    ("colour=red", "colour"),
    ("EQ_action=UPSERT", "EQ_action"),
    ("EQ_quantity=3", "EQ_quantity"),  # EPCIS, but not in our subset
    ("eventType=QuantityEvent", "eventType"),
    ("eventType=", "eventType"),
    ("GE_eventTime=yesterday", "GE_eventTime"),
    ("LT_eventTime=2026-09-01T08:00:00", "LT_eventTime"),  # no offset
    ("GE_eventTime=2026-09-01T00:00:00Z&GE_eventTime=2026-09-02T00:00:00Z", "GE_eventTime"),
    ("EQ_bizStep=dancing", "EQ_bizStep"),
    ("EQ_disposition=https://ref.gs1.org/cbv/Disp-nonsense", "EQ_disposition"),
    ("MATCH_epc=https://id.gs1.org/01/09421234123457/21/CAN1", "MATCH_epc"),  # check digit
    (f"MATCH_epc={LOT_A}", "MATCH_epc"),  # a lot is a class, not an EPC
    ("MATCH_anyEPC=urn:epc:id:sgtin:12", "MATCH_anyEPC"),
    (f"MATCH_epcClass={CAN1}", "MATCH_epcClass"),  # one instance, not a class
    ("EQ_bizLocation=urn:epc:id:sgln:123", "EQ_bizLocation"),
    ("perPage=0", "perPage"),
    ("perPage=1001", "perPage"),
    ("perPage=ten", "perPage"),
    ("nextPageToken=garbage", "nextPageToken"),
    ("nextPageToken=WzEsMl0", "nextPageToken"),  # base64 of [1,2]
    ("orderBy=bizStep", "orderBy"),
    ("orderBy=eventTime&orderDirection=UP", "orderDirection"),
    ("eventCountLimit=0", "eventCountLimit"),
    ("EXISTS_errorDeclaration=false", "EXISTS_errorDeclaration"),
    ("GE_recordTime=now", "GE_recordTime"),
    ("EQ_source_nonsense=urn:epc:id:pgln:9421234.00001", "EQ_source_nonsense"),
    ("MATCH_parentID=urn:epc:id:sscc:12", "MATCH_parentID"),
]


async def test_bad_parameters_are_400_naming_the_parameter(world: World) -> None:
    headers = {"Authorization": f"Bearer {world.tokens['regulator']}"}
    for params, parameter in BAD_PARAMETERS:
        response = await world.client.get("/v1/events?" + params, headers=headers)
        assert response.status == 400, params
        assert response.content_type == "application/problem+json"
        problem = await response.json(content_type=None)
        assert problem["parameter"] == parameter, params
        assert problem["type"] == "/problems/bad-request"


async def test_without_a_valid_token_the_query_is_401(world: World) -> None:
    for headers in ({}, {"Authorization": "Bearer tl_wrong"}, {"Authorization": "Basic eDp5"}):
        response = await world.client.get("/v1/events", headers=headers)
        assert response.status == 401
        assert response.content_type == "application/problem+json"
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
    async with world.client.app[LEDGER].pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM audit_log") == 0


async def test_a_revoked_token_is_refused(world: World) -> None:
    async with world.client.app[LEDGER].pool.acquire() as conn:
        token_id = await conn.fetchval("SELECT id FROM access_tokens WHERE name = 'dairy system'")
        await tokens.revoke_token(conn, token_id)
    response = await world.client.get(
        "/v1/events", headers={"Authorization": f"Bearer {world.tokens['dairy']}"}
    )
    assert response.status == 401


# ---------------------------------------------------------------------------------------------
# Who sees what


async def test_inspectors_and_regulators_see_everything(world: World) -> None:
    assert await names(world, {}, "inspector") == ALL
    assert await names(world, {}, "regulator") == ALL


async def test_an_enterprise_sees_its_own_events_and_events_on_its_goods(world: World) -> None:
    # The dairy signed commission/pack/ship; the others name its lot, case or cans.
    assert await names(world, {}, "dairy") == ALL - {"make_c"}
    # The processor: its own events, and from the shipment naming its site the
    # destination on, the goods it held: the shipment itself and the authority's verdict
    # on the lot of the cans in the case (issue 11). Not the dairy's earlier events.
    assert await names(world, {}, "proc") == {
        "ship",
        "inspect",
        "receive",
        "unpack",
        "make_c",
        "blend",
    }
    # An authority's enterprise token is an enterprise token: its own inspection only.
    assert await names(world, {}, "port") == {"inspect"}
    # Filters narrow within what one may see, never beyond it.
    assert await names(world, {"MATCH_epcClass": LOT_C}, "dairy") == {"blend"}
    assert await names(world, {"EQ_bizStep": "commissioning"}, "proc") == {"make_c", "blend"}


async def test_confidential_fields_are_withheld_from_other_enterprises(world: World) -> None:
    def blend(body: dict[str, Any]) -> dict[str, Any]:
        found: dict[str, Any] = next(
            e for e in body["events"] if e["eventID"] == world.ids["blend"]
        )
        return found

    assert "ilmd" not in blend(await query(world, {"eventType": "TransformationEvent"}, "dairy"))
    assert "ilmd" in blend(await query(world, {"eventType": "TransformationEvent"}, "proc"))
    assert "ilmd" in blend(await query(world, {"eventType": "TransformationEvent"}, "inspector"))


async def test_enterprise_pages_cover_exactly_what_it_may_see(world: World) -> None:
    seen: list[str] = []
    token: str | None = None
    while True:
        params = {"perPage": "2"} | ({"nextPageToken": token} if token else {})
        body = await query(world, params, "dairy")
        seen += [e["eventID"] for e in body["events"]]
        token = body["nextPageToken"]
        if token is None:
            break
    assert world.names([{"eventID": i} for i in seen]) == ALL - {"make_c"}
    assert len(seen) == len(set(seen))


async def test_an_enterprise_token_does_not_open_the_inspector_views(world: World) -> None:
    response = await world.client.get(
        "/01/09421234123456/10/LOTA",
        headers={"Authorization": f"Bearer {world.tokens['dairy']}", "Accept": "application/json"},
    )
    assert response.status == 403


async def test_every_query_by_a_token_holder_is_audited(world: World) -> None:
    pool = world.client.app[LEDGER].pool
    async with pool.acquire() as conn:
        before = await conn.fetchval("SELECT count(*) FROM audit_log")
    await query(world, {"EQ_bizStep": "shipping"}, "regulator")
    await query(world, {"perPage": "0"}, "dairy", status=400)
    async with pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT t.name, a.method, a.path, a.status FROM audit_log a"
            " JOIN access_tokens t ON t.id = a.token_id WHERE a.id > 0 ORDER BY a.id OFFSET $1",
            before,
        )
    assert [(r["name"], r["method"], r["path"], r["status"]) for r in rows] == [
        ("regulator Li", "GET", "/v1/events?EQ_bizStep=shipping", 200),
        ("dairy system", "GET", "/v1/events?perPage=0", 400),
    ]


# ---------------------------------------------------------------------------------------------
# Enterprise tokens


async def test_enterprise_tokens_name_a_registered_enterprise(world: World) -> None:
    dairy = world.signers["dairy"].enterprise_id
    async with world.client.app[LEDGER].pool.acquire() as conn:
        with pytest.raises(RegistryError, match="needs the enterprise"):
            await tokens.add_token(conn, "x", "enterprise")
        with pytest.raises(RegistryError, match="no enterprise"):
            await tokens.add_token(conn, "x", "enterprise", enterprise_id=99999)
        with pytest.raises(RegistryError, match="belongs to no enterprise"):
            await tokens.add_token(conn, "x", "inspector", enterprise_id=dairy)
        _, token = await tokens.add_token(conn, "ERP", "enterprise", enterprise_id=dairy)
        found = await tokens.check_token(conn, token)
        assert found is not None
        assert (found.role, found.enterprise_id, found.is_authority) == ("enterprise", dairy, False)
        # The database holds the rule too.
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "INSERT INTO access_tokens (name, role, token_hash) VALUES ('y', 'enterprise', $1)",
                b"\x01" * 32,
            )
        with pytest.raises(asyncpg.CheckViolationError):
            await conn.execute(
                "INSERT INTO access_tokens (name, role, token_hash, enterprise_id)"
                " VALUES ('y', 'regulator', $1, $2)",
                b"\x02" * 32,
                dairy,
            )


async def test_cli_adds_an_enterprise_token(
    world: World, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    base = cli_args(settings)
    ent = str(world.signers["proc"].enterprise_id)
    args = [*base, "token", "add", "--role", "enterprise", "--enterprise", ent, "Blending ERP"]
    assert await asyncio.to_thread(cli_main, args) == 0
    token = capsys.readouterr().out.strip().splitlines()[-1]
    assert token.startswith("tl_")
    world.tokens["erp"] = token
    assert await names(world, {}, "erp") == await names(world, {}, "proc")
    missing = [*base, "token", "add", "--role", "enterprise", "No one"]
    assert await asyncio.to_thread(cli_main, missing) != 0


# ---------------------------------------------------------------------------------------------
# Ownership patterns agree with GS1Key.owned_by


def _like(pattern: str, text: str) -> bool:
    regex = "".join("." if c == "_" else ".*" if c == "%" else re.escape(c) for c in pattern)
    return re.fullmatch(regex, text, re.DOTALL) is not None


def _gtin(body: str) -> str:
    return body + check_digit(body)


@given(
    prefix=st.sampled_from(["9421234", "94212", "942123456", "6901234"]),
    scheme=st.sampled_from(["gtin", "sscc", "gln", "grai", "giai", "pgln", "gdti"]),
    digits=st.text(alphabet="0123456789", min_size=17, max_size=17),
)
def test_owned_key_patterns_match_exactly_what_owned_by_says(
    prefix: str, scheme: str, digits: str
) -> None:
    # Keys built around the prefix, so both owned and foreign keys come up.
    body = (digits[0] + "9421234" + digits)[:30]
    key = {
        "gtin": GS1Key("gtin", _gtin(body[:13]), serial="S1"),
        "sscc": GS1Key("sscc", _gtin(body[:17])),
        "gln": GS1Key("gln", _gtin(body[1:13])),
        "grai": GS1Key("grai", "0" + _gtin(body[1:13]), serial="7"),
        "giai": GS1Key("giai", body[1:20]),
        "pgln": GS1Key("pgln", _gtin(body[1:13])),
        "gdti": GS1Key("gdti", _gtin(body[1:13]), serial="1"),
    }[scheme]
    canonical = key.canonical()
    matched = any(_like(p, canonical) for p in owned_key_patterns([prefix]))
    assert matched == key.owned_by(prefix), canonical
