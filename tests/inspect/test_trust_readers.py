"""Traces, holders and the recalls list believe what the trust rules believe (issue 11).

A dairy makes three serials of lot L1 and ships two to a distributor, which receives
one and packs it in its own case. A rival packs the third serial (which it never held)
into its own pallet and recalls the pallet; an authority recalls the lot; the rival then
repeats the authority recall's eventID in an error declaration. Over HTTP on PostgreSQL.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.keys import LEDGER
from tests.conftest import settled
from tests.epcis_samples import document
from tests.ingest.test_capture import Signer, post, register
from tests.inspect.test_named_queries import token_for
from traceledger.inspect.entitlement import recall_entitled, verdict_of
from traceledger.log.sequencer import Entry
from traceledger.standards.gs1 import parse_identifier
from traceledger.standards.schemas import SchemaSet
from traceledger.trust.claims import Claim
from traceledger.trust.parties import Party

Client = TestClient[web.Request, web.Application]

DAIRY, DIST, RIVAL, PORT = "0614141", "4012345", "0712345", "0512345"
LOT = f"urn:epc:class:lgtin:{DAIRY}.107346.L1"
S1, S2, S3 = (f"urn:epc:id:sgtin:{DAIRY}.107346.S{n}" for n in (1, 2, 3))
DIST_CASE = f"urn:epc:id:sscc:{DIST}.0000000001"
RIVAL_PALLET = f"urn:epc:id:sscc:{RIVAL}.0000000001"
RIVAL_ITEM = f"urn:epc:id:sgtin:{RIVAL}.107346.R1"
AUTHORITY_RECALL_ID = "urn:uuid:6b1e9a52-0d0c-4c55-9f61-2f2a0c1d0001"


def key_of(uri: str) -> str:
    parsed = parse_identifier(uri)
    assert parsed is not None
    return parsed.item_key().canonical()


def ev(day: int, **fields: Any) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "eventTime": f"2026-05-{day:02d}T08:00:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        "action": "OBSERVE",
        **fields,
    }


def site(gcp: str) -> dict[str, str]:
    return {"id": f"urn:epc:id:sgln:{gcp}.00001.0"}


def packed(day: int, parent: str, children: list[str], gcp: str) -> dict[str, Any]:
    return {
        **ev(day, action="ADD", bizStep="packing", bizLocation=site(gcp)),
        "type": "AggregationEvent",
        "parentID": parent,
        "childEPCs": children,
    }


def recall(day: int, **what: Any) -> dict[str, Any]:
    return ev(day, bizStep="holding", disposition="recalled", **what)


@dataclass
class Story:
    client: Client
    parties: dict[str, Signer] = field(default_factory=dict)
    index: dict[str, int] = field(default_factory=dict)
    # (eventID, eventTime) -> name: the rival's declaration repeats an eventID.
    ids: dict[tuple[str, str], str] = field(default_factory=dict)

    async def capture(self, party: str, name: str, event: dict[str, Any]) -> int:
        status, receipt = await post(self.client, document(event), self.parties[party])
        assert status == 201, receipt
        self.index[name] = receipt["entries"][0]["index"]
        self.ids[(receipt["entries"][0]["eventID"], event["eventTime"])] = name
        return self.index[name]

    async def unsigned(self, name: str, event: dict[str, Any]) -> int:
        """An entry without a registered signer (as logged before the capture rules)."""
        payload = json.dumps(event, separators=(",", ":")).encode()
        (appended,) = await self.client.app[LEDGER].sequencer.append(
            [Entry(hashlib.sha256(payload).digest(), payload)]
        )
        self.index[name] = appended.index
        return appended.index


@pytest.fixture
async def story(client: Client) -> Story:
    story = Story(client)
    for name, gcp, role in (
        ("dairy", DAIRY, "enterprise"),
        ("distributor", DIST, "enterprise"),
        ("rival", RIVAL, "enterprise"),
        ("port", PORT, "authority"),
    ):
        story.parties[name] = await register(client, name, [gcp], role=role)
    made = ev(
        1,
        action="ADD",
        bizStep="commissioning",
        epcList=[S1, S2, S3],
        bizLocation=site(DAIRY),
        ilmd={"cbvmda:lotNumber": "L1"},
    )
    await story.capture("dairy", "made", made)
    to_dist = [{"type": "owning_party", "destination": f"urn:epc:id:pgln:{DIST}.00001"}]
    shipped = ev(2, bizStep="shipping", epcList=[S1, S2], destinationList=to_dist)
    await story.capture("dairy", "shipped", shipped)
    await story.capture("distributor", "received", ev(3, bizStep="receiving", epcList=[S1]))
    await story.capture("distributor", "dist packs", packed(4, DIST_CASE, [S1], DIST))
    await story.capture("rival", "rival packs", packed(4, RIVAL_PALLET, [S3], RIVAL))
    # Its own pallet, "at" the dairy's lot (a place field naming goods is not the goods).
    rival_recall = recall(5, epcList=[RIVAL_PALLET], bizLocation={"id": LOT})
    await story.capture("rival", "rival recall", rival_recall)
    lot = [{"epcClass": LOT, "quantity": 3}]
    authority_recall = recall(6, quantityList=lot, eventID=AUTHORITY_RECALL_ID)
    await story.capture("port", "authority recall", authority_recall)
    await story.capture("dairy", "owner recall", recall(7, epcList=[S3]))
    await story.unsigned("unsigned recall", recall(8, quantityList=lot))
    retract = ev(
        9,
        epcList=[RIVAL_ITEM],
        eventID=AUTHORITY_RECALL_ID,
        errorDeclaration={
            "declarationTime": "2026-05-09T09:00:00+08:00",
            "reason": "incorrect_data",
        },
    )
    await story.capture("rival", "rival declaration", retract)
    await settled(client.app[LEDGER])
    return story


async def get(client: Client, path: str, token: str) -> dict[str, Any]:
    response = await client.get(path, headers={"Authorization": f"Bearer {token}"})
    assert response.status == 200, await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


async def test_the_forward_trace_follows_believed_goods_claims_and_custody(
    client: Client, story: Story
) -> None:
    inspector = await token_for(client, None, "inspector")
    scope = await get(client, f"/v1/trace/forward/{key_of(LOT)}", inspector)
    assert {s["key"] for s in scope["serials"]} == {key_of(s) for s in (S1, S2, S3)}
    # The distributor's case holds a serial it received; the rival's pallet is not reached.
    assert [c["key"] for c in scope["containers"]] == [key_of(DIST_CASE)]
    assert story.index["rival packs"] not in scope["events"]
    assert story.index["rival recall"] not in scope["events"]  # names the lot as a place
    refused = {r["index"]: r for r in scope["notBelieved"]}
    assert refused[story.index["rival packs"]]["rule"] == "custody"
    # The distributor holds what it received and what was shipped to it.
    holders = {(h["key"], h["party"]): h["index"] for h in scope["holders"]}
    assert holders[(key_of(S1), "distributor")] == story.index["received"]
    assert holders[(key_of(S2), "distributor")] == story.index["shipped"]
    assert not any(party == "rival" for _, party in holders)


async def test_recalls_list_entitled_recalls_only_and_a_repeated_event_id_retracts_nothing(
    client: Client, story: Story
) -> None:
    regulator = await token_for(client, None, "regulator")
    answer = await get(client, "/v1/recalls", regulator)
    listed = {r["index"]: r for r in answer["recalls"]}
    # The authority's recall of anyone's lot and the owner's own recall are believed, and
    # the rival's declaration repeating the authority's eventID does not retract it.
    assert {story.index[n] for n in ("authority recall", "owner recall", "rival recall")} == set(
        listed
    )
    by_port = listed[story.index["authority recall"]]
    assert by_port["by"] == "port"
    [lot_scope] = by_port["scope"]
    assert lot_scope["key"] == key_of(LOT)
    assert {h["party"] for h in lot_scope["holders"]} == {"distributor"}
    # The rival's recall reaches its own pallet, never the lot its place field names.
    assert [s["key"] for s in listed[story.index["rival recall"]]["scope"]] == [
        key_of(RIVAL_PALLET)
    ]
    [unsigned] = answer["notBelieved"]
    assert (unsigned["index"], unsigned["entitled"], unsigned["rule"]) == (
        story.index["unsigned recall"],
        False,
        "signature",
    )
    # The authority itself may retract its recall: then it is no longer in force.
    withdraw = recall(6, quantityList=[{"epcClass": LOT, "quantity": 3}])
    withdraw |= {
        "eventID": AUTHORITY_RECALL_ID,
        "errorDeclaration": {"declarationTime": "2026-05-10T09:00:00+08:00"},
    }
    await story.capture("port", "withdrawn", withdraw)
    await settled(client.app[LEDGER])
    after = await get(client, "/v1/recalls", regulator)
    assert story.index["authority recall"] not in {r["index"] for r in after["recalls"]}


async def test_the_origin_graph_leaves_unbelieved_claims_out_and_lists_them(
    client: Client, story: Story
) -> None:
    inspector = await token_for(client, None, "inspector")
    origin = await get(client, f"/v1/origin/{key_of(S3)}", inspector)
    assert key_of(RIVAL_PALLET) not in {n["key"] for n in origin["nodes"]}
    assert not any(e["type"] == "aggregation" for e in origin["edges"])
    shown = {i for n in origin["nodes"] for i in n["events"]}
    assert story.index["rival packs"] not in shown
    refused = {r["index"]: r["rule"] for r in origin["notBelieved"]}
    assert refused[story.index["rival packs"]] == "custody"
    # Recalled by its owner and by the authority; the rival's pallet recall is not its own.
    recalls = {r["index"] for r in origin["status"]["recalls"]}
    assert story.index["owner recall"] in recalls
    assert story.index["rival recall"] not in recalls
    # The legitimate twin: the distributor packed what it held, and that is on S1's graph.
    s1 = await get(client, f"/v1/origin/{key_of(S1)}", inspector)
    assert story.index["dist packs"] in {i for n in s1["nodes"] for i in n["events"]}
    assert [r["index"] for r in s1["notBelieved"]] == [story.index["unsigned recall"]]


async def test_recall_entitlement_is_the_owner_or_an_authority_never_a_delegate(
    client: Client, story: Story
) -> None:
    async with client.app[LEDGER].pool.acquire() as conn:
        for party, believed in (("dairy", True), ("port", True), ("rival", False)):
            signer = story.parties[party].enterprise_id
            assert await recall_entitled(conn, signer, [key_of(LOT)]) is believed, party
    # A contract manufacturer the dairy delegated may say what the goods are, not recall them.
    maker = Party(7, "maker", delegated=(DAIRY,))
    keys = ((key_of(LOT), "class"),)
    claim = Claim(
        1, 7, datetime(2026, 5, 1, tzinfo=UTC), "ObjectEvent", "OBSERVE", None, "recalled", keys
    )
    verdict = verdict_of(claim, {7: maker})
    assert (verdict.believed, verdict.rule) == (False, "verdict")


async def test_an_enterprise_reads_events_on_goods_it_held_from_when_it_held_them(
    client: Client, story: Story
) -> None:
    async def seen(party: str) -> set[str]:
        token = await token_for(client, story.parties[party])
        answer = await get(client, "/v1/events?perPage=100", token)
        events = answer["events"]
        return {story.ids.get((e.get("eventID", ""), e["eventTime"]), "other") for e in events}

    distributor = await seen("distributor")
    # The shipment naming it the destination, the authority's recall of the lot of the
    # serials it held; not the commissioning before it held them, nor the owner's recall
    # of the serial it never held.
    assert {"shipped", "received", "dist packs", "authority recall"} <= distributor
    assert not {"made", "owner recall"} & distributor
    # The rival packed a serial it never held: that gives it no view of the dairy's goods.
    rival = await seen("rival")
    assert rival == {"rival packs", "rival recall", "rival declaration"}


async def test_an_export_carries_believed_goods_events_and_names_the_rest_for_officials(
    client: Client, story: Story
) -> None:
    path = f"/v1/export/{key_of(LOT)}.jsonld"
    inspector = await token_for(client, None, "inspector")
    doc = await get(client, path, inspector)
    assert SchemaSet().document_errors(doc) == []
    exported = {
        story.ids.get((e.get("eventID", ""), e["eventTime"]), "other")
        for e in doc["epcisBody"]["eventList"]
    }
    assert {"made", "shipped", "received", "dist packs", "authority recall"} <= exported
    # Not the rival's packing of a serial it never held, nor its recall "at" the lot.
    assert not {"rival packs", "rival recall", "unsigned recall"} & exported
    refused = {r["index"]: r["rule"] for r in doc["traceledger:notBelieved"]}
    assert refused[story.index["rival packs"]] == "custody"
    assert refused[story.index["unsigned recall"]] == "signature"
    # The owner exports its lot; the list of claims not believed is for officials.
    owner = await get(client, path, await token_for(client, story.parties["dairy"]))
    assert "traceledger:notBelieved" not in owner
    assert len(owner["epcisBody"]["eventList"]) == len(doc["epcisBody"]["eventList"])


async def test_a_backdated_receipt_opens_nothing_logged_before_it(
    client: Client, story: Story
) -> None:
    """The rival "receives" the dairy's third serial, dated as early as its making: that
    is its own word, so it sees what is logged about the serial from then on, never the
    recall logged before its receipt."""
    await story.capture("rival", "rival receipt", ev(1, bizStep="receiving", epcList=[S3]))
    await story.capture("dairy", "later recall", recall(10, epcList=[S3]))
    await settled(client.app[LEDGER])
    token = await token_for(client, story.parties["rival"])
    events = (await get(client, "/v1/events?perPage=100", token))["events"]
    seen = {story.ids.get((e.get("eventID", ""), e["eventTime"]), "other") for e in events}
    assert "later recall" in seen
    assert not {"made", "owner recall", "authority recall"} & seen
