"""The nine attacks of issue 11, each through real HTTP on real PostgreSQL, each beside the
legitimate claim it imitates.

An attacker here is a registered enterprise with its own key and prefix, acting in bad
faith. What it signs is kept (evidence of who said what); what the public is told about
someone else's goods must not move: the status, the producer, the lot of a serial.
Inspectors see the unbelieved claims that name the goods, each with the rule it broke.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import os
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.app import create_app
from gateway.cli.main import main as cli
from gateway.keys import HISTORY, LEDGER
from tests.conftest import cli_args, settled
from tests.epcis_samples import document
from tests.ingest.test_capture import Signer, post, post_raw, register
from tests.inspect import test_catalog as catalog
from tests.lookup.test_history import history
from tests.trust.story import (
    ATTACKER,
    ATTACKER_ITEM,
    ATTACKER_LOT,
    ATTACKER_NAME,
    ATTACKER_PALLET,
    ATTACKER_SERIAL,
    BRAND,
    DISTRIBUTOR_PALLET,
    DISTRIBUTOR_PARTY,
    EXPIRES,
    ITEM,
    LOT,
    MAKER,
    PALLET,
    PRODUCT_CLASS,
    SERIAL,
    Client,
    commissioning,
    ev,
    indexes,
    inspector,
    listed,
    on_items,
    on_lot,
    packing,
    parties,
    path,
    public_status,
    receiving,
    shipping,
    views,
)
from traceledger.accounts import registry
from traceledger.lookup.prebuilder import Prebuilder
from traceledger.settings import Settings
from traceledger.standards.dsse import sign_document


@dataclasses.dataclass
class Story:
    """The brand's lot, made, packed on a pallet, shipped to and received by the distributor."""

    who: dict[str, Signer]
    token: str
    before: dict[str, dict[str, Any]]  # the public status of the serial and the lot


async def record(client: Client, signer: Signer, *events: dict[str, Any]) -> list[int]:
    """Post events and wait until they are provable; their log indexes."""
    status, receipt = await post(client, document(*events), signer)
    assert status == 201, receipt
    await settled(client.app[LEDGER])
    return [e["index"] for e in receipt["entries"]]


async def tell(client: Client) -> Story:
    who = await parties(client)
    await record(client, who["brand"], commissioning(10), packing(11, PALLET, [SERIAL]))
    await record(client, who["brand"], shipping(12, [PALLET], DISTRIBUTOR_PARTY))
    await record(client, who["distributor"], receiving(13, [PALLET]))
    token = await inspector(client)
    before = {uri: public_status((await views(client, uri, token))[0]) for uri in (SERIAL, LOT)}
    assert before[SERIAL]["lot"] == "L1"
    assert before[SERIAL]["producer"]["name"] == "Canterbury Dairy"
    assert before[SERIAL]["country"] == "NZ"
    assert not before[SERIAL]["recalled"]
    assert not before[SERIAL]["destroyed"]
    return Story(who, token, before)


@pytest.fixture
async def story(client: Client) -> Story:
    return await tell(client)


async def unmoved(
    client: Client,
    story: Story,
    attack: list[int],
    rule: str | None,
    uris: tuple[str, ...] = (SERIAL, LOT),
) -> dict[str, Any]:
    """The victim's pages say what they said before the attack. With `rule`, inspectors
    see each attacking event naming the goods, unbelieved for that rule; without, the
    events are not about the goods at all (inspectors do not see them either)."""
    inside: dict[str, Any] = {}
    for uri in uris:
        public, inside, html = await views(client, uri, story.token)
        assert public_status(public) == story.before[uri], uri
        assert not indexes(public) & set(attack), uri
        assert ATTACKER_NAME not in html, uri
        for index in attack:
            shown = listed(inside, index)
            if rule is None:
                assert shown is None, (uri, shown)
            elif shown is not None:
                assert (shown["entitled"], shown["rule"]) == (False, rule), shown
                assert shown["reason"], shown
                assert shown["signer"] == story.who["attacker"].enterprise_id
    if rule is not None:  # on the serial's page at least, every attacking event is listed
        serial = (await views(client, SERIAL, story.token))[1]
        assert all(listed(serial, i) is not None for i in attack), attack
    return inside


# 1. Location and party fields name places and parties, not goods.


async def test_1_a_recall_naming_the_victims_lot_as_a_place_or_party_is_not_about_it(
    client: Client, story: Story
) -> None:
    attacker = story.who["attacker"]
    own = ev(
        "ObjectEvent",
        1,
        action="ADD",
        bizStep="commissioning",
        quantityList=[{"epcClass": ATTACKER_LOT, "quantity": 1}],
    )
    await record(client, attacker, own)
    recall = on_lot(20, ATTACKER_LOT, "holding", "recalled")
    failed = on_lot(21, ATTACKER_LOT, "inspecting", "non_conformant")
    attack = await record(
        client,
        attacker,
        {**recall, "bizLocation": {"id": LOT}},
        {**recall, "eventTime": "2025-01-22T08:00:00Z", "readPoint": {"id": SERIAL}},
        {
            **recall,
            "eventTime": "2025-01-23T08:00:00Z",
            "sourceList": [{"type": "owning_party", "source": LOT}],
        },
        {**failed, "destinationList": [{"type": "location", "destination": LOT}]},
    )
    await unmoved(client, story, attack, rule=None)
    # The attacker's recall of its own goods stands, on its own goods' page.
    own_page = await history(client, path(ATTACKER_LOT))
    assert own_page["status"]["recalled"] is True
    assert set(attack) <= indexes(own_page)
    # The twin: the owner's recall of its own lot works.
    [index] = await record(client, story.who["brand"], on_lot(30, LOT, "holding", "recalled"))
    public = await history(client, path(SERIAL))
    assert public["status"]["recalled"] is True
    assert [(r["index"], r["by"]) for r in public["status"]["recalls"]] == [
        (index, "Canterbury Dairy")
    ]


# 2. Only the signer of an event, or an authority, may declare it erroneous.


def declaring(event: dict[str, Any], event_id: str, day: int) -> dict[str, Any]:
    """An error declaration naming `event_id`: a copy of the event, as EPCIS has it."""
    return {
        **event,
        "eventID": event_id,
        "errorDeclaration": {
            "declarationTime": ev("ObjectEvent", day)["eventTime"],
            "reason": "urn:epcglobal:cbv:er:incorrect_data",
        },
    }


async def recalled_by_the_authority(client: Client, story: Story) -> tuple[int, str]:
    """The twin: an authority recalls anyone's lot (here the brand's)."""
    status, receipt = await post(
        client, document(on_lot(20, LOT, "holding", "recalled")), story.who["authority"]
    )
    assert status == 201, receipt
    await settled(client.app[LEDGER])
    [entry] = receipt["entries"]
    for uri in (SERIAL, LOT):
        public = (await views(client, uri, story.token))[0]
        assert [(r["index"], r["by"]) for r in public["status"]["recalls"]] == [
            (entry["index"], "Yangshan Port Inspection")
        ]
        story.before[uri] = public_status(public)
    return entry["index"], entry["eventID"]


async def test_2_an_error_declaration_by_another_party_does_not_retract_a_recall(
    client: Client, story: Story
) -> None:
    _, recall_id = await recalled_by_the_authority(client, story)
    # A copy that says "recalled" would need an authority (403): the declaration is a
    # copy of anything that carries the recall's eventID.
    copy = on_lot(20, LOT, "holding")
    attack = await record(client, story.who["attacker"], declaring(copy, recall_id, 25))
    await unmoved(client, story, attack, rule="correction")


async def test_2_the_recall_stays_listed_for_regulators(client: Client, story: Story) -> None:
    index, recall_id = await recalled_by_the_authority(client, story)
    await record(
        client, story.who["attacker"], declaring(on_lot(20, LOT, "holding"), recall_id, 25)
    )
    response = await client.get("/v1/recalls", headers={"Authorization": f"Bearer {story.token}"})
    assert response.status == 200
    assert index in [r["index"] for r in (await response.json())["recalls"]]


async def test_2_the_authority_and_the_signer_may_retract_their_own_events(
    client: Client, story: Story
) -> None:
    """The twin: the authority's own declaration retracts its recall; the brand may
    declare its own event erroneous."""
    _, recall_id = await recalled_by_the_authority(client, story)
    await record(
        client, story.who["authority"], declaring(on_lot(20, LOT, "holding"), recall_id, 25)
    )
    public = await history(client, path(SERIAL))
    assert public["status"]["recalled"] is False
    destroyed = on_lot(26, LOT, "destroying", "destroyed")
    status, receipt = await post(client, document(destroyed), story.who["brand"])
    assert status == 201, receipt
    await settled(client.app[LEDGER])
    assert (await history(client, path(SERIAL)))["status"]["destroyed"] is True
    mistake = declaring(destroyed, receipt["entries"][0]["eventID"], 27)
    await record(client, story.who["brand"], mistake)
    assert (await history(client, path(SERIAL)))["status"]["destroyed"] is False


async def test_2_a_commissioning_declared_erroneous_by_another_party_is_still_sampled(
    client: Client,
) -> None:
    """A high-risk lot still arrives flagged when someone else declares its commissioning
    erroneous (the catalog story of tests/inspect/test_catalog.py)."""
    customs = await register(
        client, "Yangshan Port Inspection", [catalog.CUSTOMS], role="authority"
    )
    producer = await register(client, "Canterbury Dairy", [catalog.PRODUCER])
    importer = await register(client, "Shanghai Importer", [catalog.IMPORTER])
    attacker = await register(client, ATTACKER_NAME, [catalog.OTHER])
    assert catalog.OTHER == ATTACKER
    published = catalog.signed(catalog.high_risk(1, catalog.FORMULA_NZ), customs)
    assert (await catalog.publish(client, published))[0] == 201
    made = ev(
        "ObjectEvent",
        605,
        action="ADD",
        bizStep="commissioning",
        disposition="active",
        quantityList=[{"epcClass": catalog.LOT_A, "quantity": 500, "uom": "KGM"}],
        ilmd={
            "cbvmda:countryOfOrigin": "NZ",
            "cbvmda:regulatedProductName": "Infant formula stage 1",
        },
    )
    pack = ev(
        "AggregationEvent",
        606,
        action="ADD",
        bizStep="packing",
        parentID=catalog.CASE,
        childQuantityList=[{"epcClass": catalog.LOT_A, "quantity": 500, "uom": "KGM"}],
    )
    status, receipt = await post(client, document(made, pack), producer)
    assert status == 201, receipt
    arrive = on_items(615, [catalog.CASE], "arriving") | {"bizLocation": {"id": catalog.PORT_URN}}
    await record(client, importer, arrive)
    token = await inspector(client)
    arrivals = f"/v1/port/arrivals?port={catalog.PORT}"
    [before] = (await catalog.get(client, arrivals, token))[1]["arrivals"]
    assert (before["countriesOfOrigin"], before["flagged"]) == (["NZ"], True)
    declared = declaring(
        on_lot(605, catalog.LOT_A, "holding"), receipt["entries"][0]["eventID"], 607
    )
    await record(client, attacker, declared)
    status, body = await catalog.get(client, arrivals, token)
    assert status == 200, body
    [case] = body["arrivals"]
    assert case["countriesOfOrigin"] == ["NZ"]
    assert case["flagged"] is True


# 3. Packing and unpacking another party's goods needs custody of them.


async def test_3_packing_the_victims_serial_into_the_attackers_pallet_and_recalling_it(
    client: Client, story: Story
) -> None:
    attacker = story.who["attacker"]
    pack = packing(14, ATTACKER_PALLET, [SERIAL])
    [packed] = await record(client, attacker, pack)
    [recall] = await record(
        client, attacker, on_items(15, [ATTACKER_PALLET], "holding", "recalled")
    )
    await unmoved(client, story, [packed], rule="custody", uris=(SERIAL,))
    public, inside, _ = await views(client, SERIAL, story.token)
    assert recall not in indexes(public) | indexes(inside)


async def test_3_a_backdated_unpacking_does_not_take_the_serial_out_of_a_recalled_pallet(
    client: Client, story: Story
) -> None:
    authority = story.who["authority"]
    [recall] = await record(client, authority, on_items(20, [PALLET], "holding", "recalled"))
    public = await history(client, path(SERIAL))
    assert [r["index"] for r in public["status"]["recalls"]] == [recall]
    story.before[SERIAL] = public_status(public)
    attack = await record(client, story.who["attacker"], packing(15, PALLET, [SERIAL], "DELETE"))
    await unmoved(client, story, attack, rule="custody", uris=(SERIAL,))


async def test_3_a_distributor_that_received_the_goods_may_repack_and_destroy_them(
    client: Client, story: Story
) -> None:
    """The twin: custody by the log (the pallet was shipped to it, and it received it)."""
    distributor = story.who["distributor"]
    done = await record(
        client,
        distributor,
        packing(14, PALLET, [SERIAL], "DELETE"),
        packing(15, DISTRIBUTOR_PALLET, [SERIAL]),
        on_items(16, [SERIAL], "destroying", "destroyed"),
    )
    public, inside, _ = await views(client, SERIAL, story.token)
    assert set(done) <= indexes(public)
    assert public["status"]["destroyed"] is True
    assert all(listed(inside, i)["entitled"] is True for i in done)  # type: ignore[index]
    # The brand's other serial never left the brand: not destroyed.
    other = await history(client, "/01/09421234123456/21/S2")
    assert other["status"]["destroyed"] is False


# 4. A serial's lot is what its (entitled) commissioning says.


async def test_4_a_backdated_commissioning_naming_the_serial_as_read_point_is_not_its_lot(
    client: Client, story: Story
) -> None:
    fake = ev(
        "ObjectEvent",
        1,
        action="ADD",
        bizStep="commissioning",
        epcList=[ATTACKER_SERIAL],
        readPoint={"id": SERIAL},
        bizLocation={"id": LOT},
        ilmd={
            "cbvmda:lotNumber": "EVIL",
            "cbvmda:countryOfOrigin": "KP",
            "cbvmda:regulatedProductName": "Fake powder",
            "cbvmda:itemExpirationDate": "2025-02-01",
        },
    )
    attack = await record(client, story.who["attacker"], fake)
    await unmoved(client, story, attack, rule=None)
    # And it may not create the brand's serial itself: refused at the door.
    status, problem = await post(
        client, document({**fake, "epcList": [SERIAL], "readPoint": None}), story.who["attacker"]
    )
    assert status in (403, 422), problem


# 5. Transactions never make anyone the producer.


async def test_5_a_backdated_transaction_on_the_victims_lot_does_not_make_the_attacker_producer(
    client: Client, story: Story
) -> None:
    deal = ev(
        "TransactionEvent",
        1,
        action="ADD",
        bizStep="commissioning",
        quantityList=[{"epcClass": LOT, "quantity": 100}],
        bizTransactionList=[
            {"type": "po", "bizTransaction": f"urn:epc:id:gdti:{ATTACKER}.00000.1"}
        ],
        ilmd={"cbvmda:countryOfOrigin": "KP"},
    )
    status, receipt = await post(client, document(deal), story.who["attacker"])
    if status == 201:  # a transaction is its signer's account: kept, never producer-making
        await settled(client.app[LEDGER])
        for uri in (SERIAL, LOT):
            public = (await views(client, uri, story.token))[0]
            assert public_status(public) == story.before[uri]
            assert public["origin"]["producer"] == "Canterbury Dairy"
    else:  # an ILMD says what goods are: only for their owner
        assert status in (403, 422), receipt


async def test_5_without_ilmd_a_backdated_transaction_is_kept_and_changes_nothing(
    client: Client, story: Story
) -> None:
    deal = ev(
        "TransactionEvent",
        1,
        action="ADD",
        quantityList=[{"epcClass": LOT, "quantity": 100}],
        bizTransactionList=[
            {"type": "po", "bizTransaction": f"urn:epc:id:gdti:{ATTACKER}.00000.1"}
        ],
    )
    await record(client, story.who["attacker"], deal)
    for uri in (SERIAL, LOT):
        public = (await views(client, uri, story.token))[0]
        assert public_status(public) == story.before[uri]
        assert public["origin"]["producer"] == "Canterbury Dairy"


# 6. A bare product class never sets an item's status.


async def test_6_destroying_a_bare_product_class_destroys_no_item(
    client: Client, story: Story
) -> None:
    attack = await record(
        client, story.who["attacker"], on_lot(20, PRODUCT_CLASS, "destroying", "destroyed")
    )
    await unmoved(client, story, attack, rule="custody")
    # Not even the brand's own word about every item of the product is a word about one.
    await record(client, story.who["brand"], on_lot(21, PRODUCT_CLASS, "destroying", "destroyed"))
    for uri in (SERIAL, LOT):
        assert (await history(client, path(uri)))["status"]["destroyed"] is False
    # The twin: the lot's own destruction by its owner reaches its serials.
    await record(client, story.who["brand"], on_lot(22, LOT, "destroying", "destroyed"))
    assert (await history(client, path(SERIAL)))["status"]["destroyed"] is True


# 7. Attribution by verified signatures only.


def with_signature(body: bytes, key_id: str) -> bytes:
    envelope = json.loads(body)
    dummy = base64.b64encode(os.urandom(64)).decode()
    envelope["signatures"].insert(0, {"keyid": key_id, "sig": dummy})
    return json.dumps(envelope).encode()


async def test_7_a_dummy_signature_with_an_authoritys_revoked_key_id_is_refused(
    client: Client, story: Story
) -> None:
    authority = story.who["authority"]
    new_key = Ed25519PrivateKey.generate()
    async with client.app[LEDGER].pool.acquire() as conn:
        await registry.add_key(conn, authority.enterprise_id, new_key.public_key())
        await registry.revoke_key(conn, authority.key_id)
    body, content_type = sign_document(
        document(on_lot(20, ATTACKER_LOT, "holding")), story.who["attacker"].key
    )
    for key_id in (authority.key_id, "no-such-key"):
        status, problem = await post_raw(client, with_signature(body, key_id), content_type)
        assert status == 401, problem
        assert key_id in problem["detail"]


async def test_7_an_envelope_verified_by_its_signers_keys_is_credited_to_its_signer(
    client: Client, story: Story
) -> None:
    """The twin: the authority's active key, and the attacker's own, each credited."""
    [index] = await record(client, story.who["authority"], on_lot(20, LOT, "holding", "recalled"))
    public = await history(client, path(SERIAL))
    recall = listed(public, index)
    assert recall is not None
    assert recall["signer"] == story.who["authority"].enterprise_id
    assert public["status"]["recalls"][0]["by"] == "Yangshan Port Inspection"
    parties = {p["id"]: p for p in public["parties"]}
    assert parties[story.who["authority"].enterprise_id]["authority"] is True


# 8. A walk costs what the distinct lots cost, never the paths through them.

WIDTH, LAYERS = 7, 6  # 6 layers of 7 lots and one final lot: 43 transformations


def layered(prefix: str, layers: int) -> tuple[list[dict[str, Any]], str]:
    """Lots in layers, each made from every lot of the layer before; the final lot's URI."""

    def lot(layer: int, n: int) -> str:
        return f"urn:epc:class:lgtin:{ATTACKER}.{ATTACKER_ITEM}.{prefix}{layer}X{n}"

    events = [
        ev(
            "ObjectEvent",
            1,
            action="ADD",
            bizStep="commissioning",
            quantityList=[{"epcClass": lot(0, n), "quantity": 1} for n in range(WIDTH)],
            ilmd={"cbvmda:countryOfOrigin": "DE"},
        )
    ]
    final = f"urn:epc:class:lgtin:{ATTACKER}.{ATTACKER_ITEM}.{prefix}FINAL"
    for layer in range(1, layers + 2):
        outputs = [final] if layer == layers + 1 else [lot(layer, n) for n in range(WIDTH)]
        inputs = [{"epcClass": lot(layer - 1, n), "quantity": 1} for n in range(WIDTH)]
        events += [
            ev(
                "TransformationEvent",
                1 + layer,
                bizStep="commissioning",
                inputQuantityList=inputs,
                outputQuantityList=[{"epcClass": output, "quantity": 1}],
                ilmd={"cbvmda:regulatedProductName": f"layer {layer}"},
            )
            for output in outputs
        ]
    return events, final


def tree_entries(inputs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    out = []
    for entry in inputs:
        out.append(entry)
        out += tree_entries(entry["inputs"])
    return out


async def test_8_a_layered_graph_of_transformations_costs_its_lots_not_its_paths(
    client: Client,
) -> None:
    attacker = await register(client, ATTACKER_NAME, [ATTACKER])
    small, small_final = layered("B", 0)  # one layer: 7 lots, one transformation
    large, large_final = layered("A", LAYERS)
    assert sum(e["type"] == "TransformationEvent" for e in large) == 43
    await record(client, attacker, *small)
    await record(client, attacker, *large)
    # While the big answer is assembled, the service answers others.
    big, health = await asyncio.gather(
        client.get(path(large_final), headers={"Accept": "application/json"}),
        client.get("/healthz"),
    )
    assert (big.status, health.status) == (200, 200)
    large_bytes = await big.read()
    answer = json.loads(large_bytes)
    baseline = await client.get(path(small_final), headers={"Accept": "application/json"})
    small_bytes = await baseline.read()
    base = json.loads(small_bytes)
    assert (base["truncated"], base["leftOut"]) == (False, 0)

    # Each lot is listed once with its inputs; wherever it is reached again, by key only.
    entries = tree_entries(answer["origin"]["inputs"])
    full = [e["key"] for e in entries if not e.get("listedAbove")]
    assert len(full) == len(set(full))
    assert all(e["inputs"] == [] for e in entries if e.get("listedAbove"))
    for entry in entries:
        if not entry.get("listedAbove") and "X" in entry["key"].rsplit("/", 1)[-1][2:]:
            layer = int(entry["key"].rsplit("/", 1)[-1][1])
            assert len(entry["inputs"]) == (WIDTH if layer >= 1 else 0), entry["key"]
    # Linear: entries at most one per edge (7 * 7 per layer), never per path (7 ** 6).
    assert len(entries) <= WIDTH + WIDTH * WIDTH * LAYERS
    # The answer's size per event is that of the one-layer answer, within a factor.
    per_event = len(large_bytes) / len(answer["events"])
    assert per_event <= 3 * len(small_bytes) / len(base["events"])
    assert len(large_bytes) <= 3 * len(small_bytes) * (LAYERS + 1) * WIDTH
    # Over its budget (here the depth of 6 hops), the answer says what it left out.
    assert answer["truncated"] is True
    assert answer["leftOut"] >= 1


# 9. Times before 1900 are refused; no stored time makes a page fail.


async def test_9_times_before_1900_are_refused_with_422(client: Client, story: Story) -> None:
    ancient = on_lot(0, LOT, "holding") | {"eventTime": "0001-01-01T00:00:00Z"}
    status, problem = await post(client, document(ancient), story.who["brand"])
    assert status == 422, problem
    assert problem["errors"][0]["pointer"].endswith("/eventTime")
    declared = {
        **on_lot(0, LOT, "holding"),
        "eventID": "ni:///sha-256;" + "0" * 64 + "?ver=CBV2.0",
        "errorDeclaration": {"declarationTime": "1899-12-31T23:59:59Z"},
    }
    status, problem = await post(client, document(declared), story.who["brand"])
    assert status == 422, problem
    # The twin: the first moment of 1900 is a time like any other.
    assert (
        await post(
            client,
            document(on_lot(0, LOT, "holding") | {"eventTime": "1900-01-01T00:00:00Z"}),
            story.who["brand"],
        )
    )[0] == 201


@pytest.fixture
async def quiet(settings: Settings) -> AsyncIterator[Client]:
    """The service without its own prebuilder, so the test builds when it chooses."""
    without = dataclasses.replace(settings, prebuild_answers=False)
    async with TestClient(TestServer(create_app(without))) as test_client:
        yield test_client


@pytest.mark.parametrize("stored", ["-infinity", "0001-01-01 00:00:00+00", "infinity"])
async def test_9_a_row_at_the_edge_of_time_fails_no_page_and_no_prebuild(
    quiet: Client, stored: str
) -> None:
    client = quiet
    story = await tell(client)
    edges = await record(
        client,
        story.who["brand"],
        on_lot(20, LOT, "storing"),
        on_items(21, [SERIAL], "storing"),
        on_lot(22, PRODUCT_CLASS, "storing"),
    )
    async with client.app[LEDGER].pool.acquire() as conn:
        # As a row written before times were checked would hold it.
        await conn.execute(
            "UPDATE events SET event_time = $1::text::timestamptz WHERE idx = ANY($2)",
            stored,
            edges,
        )
        await conn.execute("UPDATE prebuild_state SET next_idx = 0")
    for uri in (SERIAL, LOT, f"urn:epc:id:sgtin:{BRAND}.{ITEM}.S2"):
        public, inside, _ = await views(client, uri, story.token)
        assert public_status(public)["lot"] == "L1"
        assert set(edges) & indexes(inside)
    ledger = client.app[LEDGER]
    builder = Prebuilder(ledger.pool, client.app[HISTORY])
    while await builder.build_once():
        pass
    async with ledger.pool.acquire() as conn:
        built = {r["key"] for r in await conn.fetch("SELECT key FROM prebuilt_answers")}
    assert {path(SERIAL)[1:], path(LOT)[1:]} <= built


# The delegation twin: a contract manufacturer labels for the brand.


async def test_a_delegated_contract_manufacturer_commissions_the_brands_serials(
    client: Client, settings: Settings, story: Story
) -> None:
    maker = await register(client, "Contract Packers", [MAKER])
    made = ev(
        "ObjectEvent",
        30,
        action="ADD",
        bizStep="commissioning",
        epcList=[f"urn:epc:id:sgtin:{BRAND}.{ITEM}.C9"],
        ilmd={"cbvmda:lotNumber": "C1", "cbvmda:itemExpirationDate": EXPIRES.isoformat()},
    )
    # Before the brand delegates, it may not.
    assert (await post(client, document(made), maker))[0] == 403
    args = [*cli_args(settings), "enterprise", "delegate", str(story.who["brand"].enterprise_id)]
    args += ["--to", str(maker.enterprise_id), "--gcp", BRAND]
    assert await asyncio.to_thread(cli, args) == 0
    await record(client, maker, made)
    public = await history(client, "/01/09421234123456/21/C9")
    assert public["product"]["lot"] == "C1"
    assert public["product"]["producer"]["name"] == "Contract Packers"
    # The attacker, delegated nothing, still may not.
    assert (
        await post(
            client, document(made | {"eventTime": "2025-02-02T00:00:00Z"}), story.who["attacker"]
        )
    )[0] == 403
