"""Risk catalogs in the log, port arrivals and auditable sampling, over real HTTP."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.keys import LEDGER
from tests.conftest import settled as settled_ledger
from tests.epcis_samples import document
from tests.ingest.test_capture import Signer, post, register
from traceledger.accounts import tokens
from traceledger.ingest.catalogs import document as catalog_document
from traceledger.ingest.catalogs import publishing
from traceledger.ingest.catalogs.indexing import index_entry as index_catalog
from traceledger.ingest.indexer import Indexer
from traceledger.inspect.catalogs import matching
from traceledger.inspect.catalogs.arrivals import ArrivalSampler
from traceledger.inspect.catalogs.sampling import DEFAULT_BASE_RATE, sampling_draw
from traceledger.ledger import Ledger
from traceledger.log.sequencer import Entry
from traceledger.settings import Settings
from traceledger.standards import dsse
from traceledger.tlog.checkpoint import open_checkpoint
from traceledger.tlog.note import Verifier

Client = TestClient[web.Request, web.Application]

PRODUCER, IMPORTER, CUSTOMS, OTHER = "9421234", "6901234", "6909999", "4012345"
PORT_URN = f"urn:epc:id:sgln:{CUSTOMS}.00001.0"
PORT = "414/6909999000012"  # GLN of that SGLN (check digit 2)
INLAND = f"urn:epc:id:sgln:{IMPORTER}.00001.0"
FORMULA_GTIN = "09421234123456"  # 9421234.012345, check digit 6
LOT_A = f"urn:epc:class:lgtin:{PRODUCER}.012345.LOTA"
LOT_A_KEY = f"01/{FORMULA_GTIN}/10/LOTA"
BISCUIT_LOT = f"urn:epc:class:lgtin:{OTHER}.054321.B1"
CASE = f"urn:epc:id:sscc:{PRODUCER}.0000000001"
CASE_KEY = "00/094212340000000016"


def ev(when: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "eventTime": f"2026-{when}T08:00:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        **fields,
    }


def high_risk(version: int, *entries: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "type": catalog_document.CATALOG_TYPE,
        "catalog": "high-risk",
        "version": version,
        "effectiveFrom": "2026-01-01T00:00:00+08:00",
        "entries": list(entries),
        "ports": [PORT],
        **extra,
    }


FORMULA_NZ = {
    "gtin": FORMULA_GTIN,
    "countryOfOrigin": "NZ",
    "productClass": "infant formula",
    "reason": "melamine findings in 2026 surveillance",
    "inspectionRate": 1,
}


def signed(
    doc: dict[str, Any], signer: Signer, payload_type: str = catalog_document.PAYLOAD_TYPE
) -> bytes:
    return dsse.sign(payload_type, json.dumps(doc).encode(), signer.key).to_json()


async def publish(client: Client, body: bytes) -> tuple[int, dict[str, Any]]:
    response = await client.post(
        "/v1/catalogs", data=body, headers={"Content-Type": "application/json"}
    )
    return response.status, await response.json(content_type=None)


async def get(client: Client, path: str, token: str | None) -> tuple[int, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.get(path, headers=headers)
    return response.status, await response.json(content_type=None)


async def settled(client: Client) -> None:
    """Wait until everything appended is covered by a checkpoint and indexed."""
    await settled_ledger(client.app[LEDGER])


async def inspector_token(client: Client, role: str = "inspector") -> str:
    async with client.app[LEDGER].pool.acquire() as conn:
        _, token = await tokens.add_token(conn, f"Yangshan {role}", role)
    return token


@pytest.fixture
async def customs(client: Client) -> Signer:
    return await register(client, "Yangshan Port Inspection", [CUSTOMS], role="authority")


async def test_an_authority_publishes_versions_that_are_logged_and_listed(
    client: Client, customs: Signer
) -> None:
    v1 = signed(high_risk(1, FORMULA_NZ), customs)
    status, first = await publish(client, v1)
    assert status == 201, first
    assert (first["catalog"], first["version"], first["status"]) == ("high-risk", 1, "appended")
    status, second = await publish(
        client,
        signed(
            high_risk(
                2, FORMULA_NZ, {"companyPrefix": OTHER, "reason": "r", "inspectionRate": 0.5}
            ),
            customs,
        ),
    )
    assert status == 201, second
    # The identical envelope again gets the identical receipt, and nothing is appended.
    replay = await client.post(
        "/v1/catalogs", data=v1, headers={"Content-Type": "application/json"}
    )
    assert replay.status == 200
    assert await replay.json() == first
    await settled(client)

    token = await inspector_token(client)
    status, shown = await get(client, "/v1/catalogs/high-risk", token)
    assert status == 200, shown
    assert shown["current"]["version"] == 2
    assert [(v["version"], v["index"], v["status"]) for v in shown["versions"]] == [
        (1, first["index"], "superseded"),
        (2, second["index"], "current"),
    ]
    assert shown["current"]["signer"]["name"] == "Yangshan Port Inspection"
    assert [e.get("gtin") or e.get("companyPrefix") for e in shown["current"]["entries"]] == [
        FORMULA_GTIN,
        OTHER,
    ]
    status, old = await get(client, "/v1/catalogs/high-risk?version=1", token)
    assert status == 200
    assert len(old["selected"]["entries"]) == 1
    assert old["selected"]["status"] == "superseded"
    assert old["current"]["version"] == 2
    assert (await get(client, "/v1/catalogs/high-risk?version=7", token))[0] == 404

    # Each version is a log entry whose envelope re-verifies against the authority's key.
    # An authority's catalog entry: its body is for officials (and its signer).
    entry = await client.get(
        f"/v1/entries/{first['index']}?include=body", headers={"Authorization": f"Bearer {token}"}
    )
    stored = await entry.json()
    envelope = dsse.from_json_object(json.loads(base64.b64decode(stored["envelope"])))
    assert dsse.verify(envelope, {customs.key_id: customs.key.public_key()}.get)
    payload = base64.b64decode(stored["payload"])
    assert payload == catalog_document.canonical_json(json.loads(envelope.payload))

    status, listing = await get(client, "/v1/catalogs", token)
    assert status == 200
    by_name = {c["catalog"]: c for c in listing["catalogs"]}
    assert by_name["high-risk"]["current"]["version"] == 2
    assert by_name["high-risk"]["versions"] == 2
    assert by_name["port-special-control"]["current"] is None


async def test_a_scheduled_version_is_not_current_until_its_effective_time(
    client: Client, customs: Signer
) -> None:
    assert (await publish(client, signed(high_risk(1, FORMULA_NZ), customs)))[0] == 201
    later = high_risk(2, effectiveFrom="2099-01-01T00:00:00Z")
    assert (await publish(client, signed(later, customs)))[0] == 201
    await settled(client)
    status, shown = await get(client, "/v1/catalogs/high-risk", await inspector_token(client))
    assert status == 200
    assert shown["current"]["version"] == 1
    assert [v["status"] for v in shown["versions"]] == ["current", "scheduled"]


async def test_a_non_authority_is_refused_with_403(client: Client) -> None:
    importer = await register(client, "Importer", [IMPORTER])
    status, problem = await publish(client, signed(high_risk(1, FORMULA_NZ), importer))
    assert status == 403, problem
    assert problem["type"] == "/problems/forbidden"
    assert "not an authority" in problem["detail"]


async def test_a_stale_version_is_refused_with_409(client: Client, customs: Signer) -> None:
    assert (await publish(client, signed(high_risk(3, FORMULA_NZ), customs)))[0] == 201
    for version in (3, 2):  # another v3, and an older one
        status, problem = await publish(
            client, signed(high_risk(version, description=f"again {version}"), customs)
        )
        assert status == 409, problem
        assert problem["type"] == "/problems/stale-catalog-version"
        assert problem["currentVersion"] == 3
    # The other catalog has its own version sequence.
    special = {**high_risk(1), "catalog": "port-special-control"}
    assert (await publish(client, signed(special, customs)))[0] == 201


async def test_concurrent_publications_of_one_version_record_only_one(
    client: Client, customs: Signer
) -> None:
    bodies = [signed(high_risk(1, description=f"draft {i}"), customs) for i in range(6)]
    results = await asyncio.gather(*(publish(client, b) for b in bodies))
    assert sorted(status for status, _ in results) == [201] + [409] * 5
    async with client.app[LEDGER].pool.acquire() as conn:
        assert await publishing.latest_version(conn, "high-risk") == 1
        assert await conn.fetchval("SELECT size FROM log_head") == 1


async def test_a_bad_document_is_refused_with_422_listing_every_problem(
    client: Client, customs: Signer
) -> None:
    bad = {
        "type": catalog_document.CATALOG_TYPE,
        "catalog": "low-risk",
        "version": 0,
        "effectiveFrom": "yesterday",
        "ports": ["414/6909999000011"],  # wrong check digit
        "entries": [
            {"gtin": "09421234123457", "reason": "x", "inspectionRate": 0.5},
            {"gtin": FORMULA_GTIN, "companyPrefix": PRODUCER, "reason": "x", "inspectionRate": 1},
            {"companyPrefix": PRODUCER, "reason": "", "inspectionRate": 1.5, "colour": "red"},
        ],
    }
    status, problem = await publish(client, signed(bad, customs))
    assert status == 422, problem
    assert problem["type"] == "/problems/invalid-catalog"
    pointers = {e["pointer"] for e in problem["errors"]}
    assert pointers == {
        "/catalog",
        "/version",
        "/effectiveFrom",
        "/ports/0",
        "/entries/0/gtin",
        "/entries/1",
        "/entries/2/colour",
        "/entries/2/reason",
        "/entries/2/inspectionRate",
    }
    assert (await client.get("/problems/invalid-catalog")).status == 200
    # A catalog must come signed as a catalog, not as an EPCIS document.
    status, problem = await publish(client, signed(high_risk(1), customs, "application/json"))
    assert status == 415, problem
    status, problem = await publish(client, signed(high_risk(1), customs)[:-2])
    assert status == 400, problem


async def test_catalog_views_need_an_inspector_or_regulator_token(
    client: Client, customs: Signer
) -> None:
    for path in ("/v1/catalogs", "/v1/catalogs/high-risk", "/v1/port/arrivals"):
        status, problem = await get(client, path, None)
        assert status == 401, (path, problem)
        assert problem["type"] == "/problems/unauthorized"
        status, problem = await get(client, path, "tl_not-a-real-token")
        assert status == 401, (path, problem)
    token = await inspector_token(client, "regulator")
    assert (await get(client, "/v1/catalogs/high-risk", token))[0] == 404  # none published
    assert (await get(client, "/v1/catalogs/low-risk", token))[0] == 404
    assert (await get(client, "/v1/port/arrivals?since=soon", token))[0] == 400
    assert (await get(client, "/v1/port/arrivals?port=414/123", token))[0] == 400
    async with client.app[LEDGER].pool.acquire() as conn:
        audited = await conn.fetch("SELECT path, status FROM audit_log ORDER BY id")
    assert [(r["path"], r["status"]) for r in audited] == [
        ("/v1/catalogs/high-risk", 404),
        ("/v1/catalogs/low-risk", 404),
        ("/v1/port/arrivals?since=soon", 400),
        ("/v1/port/arrivals?port=414/123", 400),
    ]


def recompute(seed_b64: str, event_id: str, identifier: str, rate: float) -> tuple[float, bool]:
    """What an auditor does with the published data: no server code involved."""
    digest = hashlib.sha256(
        base64.b64decode(seed_b64) + event_id.encode() + identifier.encode()
    ).digest()
    draw = int.from_bytes(digest[:8], "big") / 2**64
    return draw, draw < rate


@pytest.fixture
async def port_story(client: Client, customs: Signer) -> dict[str, Signer]:
    producer = await register(client, "Canterbury Dairy", [PRODUCER])
    other = await register(client, "Hamburg Biscuits", [OTHER])
    importer = await register(client, "Shanghai Importer", [IMPORTER])
    status, _ = await publish(client, signed(high_risk(1, FORMULA_NZ), customs))
    assert status == 201
    commission = ev(
        "09-01",
        action="ADD",
        bizStep="commissioning",
        disposition="active",
        quantityList=[{"epcClass": LOT_A, "quantity": 500, "uom": "KGM"}],
        ilmd={
            "cbvmda:countryOfOrigin": "NZ",
            "cbvmda:regulatedProductName": "Infant formula stage 1",
        },
    )
    pack = {
        **ev("09-02", action="ADD", bizStep="packing", parentID=CASE),
        "type": "AggregationEvent",
        "childQuantityList": [{"epcClass": LOT_A, "quantity": 500, "uom": "KGM"}],
    }
    assert (await post(client, document(commission, pack), producer))[0] == 201
    biscuits = ev(
        "09-01",
        action="ADD",
        bizStep="commissioning",
        disposition="active",
        quantityList=[{"epcClass": BISCUIT_LOT, "quantity": 10}],
        ilmd={"cbvmda:countryOfOrigin": "DE"},
    )
    assert (await post(client, document(biscuits), other))[0] == 201
    arrive_case = ev(
        "09-20",
        action="OBSERVE",
        bizStep="arriving",
        epcList=[CASE],
        bizLocation={"id": PORT_URN},
    )
    arrive_biscuits = ev(
        "09-21",
        action="OBSERVE",
        bizStep="receiving",
        quantityList=[{"epcClass": BISCUIT_LOT, "quantity": 10}],
        readPoint={"id": PORT_URN},
    )
    inland = ev(
        "09-22",
        action="OBSERVE",
        bizStep="receiving",
        epcList=[CASE],
        bizLocation={"id": INLAND},
    )
    status, receipt = await post(client, document(arrive_case, arrive_biscuits, inland), importer)
    assert status == 201, receipt
    await settled(client)
    return {"producer": producer, "importer": importer}


async def test_an_arrival_matching_the_catalog_is_flagged_and_its_sampling_recomputes(
    client: Client, port_story: dict[str, Signer]
) -> None:
    token = await inspector_token(client)
    status, body = await get(client, f"/v1/port/arrivals?port={PORT}", token)
    assert status == 200, body
    arrivals = body["arrivals"]
    assert [a["bizStep"] for a in arrivals] == ["arriving", "receiving"]  # not the inland one
    case, biscuits = arrivals

    assert case["port"] == PORT
    assert case["identifiers"] == [{"key": CASE_KEY, "role": "epc", "contents": [LOT_A_KEY]}]
    assert case["gtins"] == [FORMULA_GTIN]
    assert case["countriesOfOrigin"] == ["NZ"]
    assert case["flagged"] is True
    [match] = case["matches"]
    assert (match["catalog"], match["version"], match["entry"]) == ("high-risk", 1, 0)
    assert match["reason"] == FORMULA_NZ["reason"]
    assert match["key"] == LOT_A_KEY
    assert biscuits["flagged"] is False
    assert biscuits["countriesOfOrigin"] == ["DE"]

    verifier = Verifier.parse(client.app[LEDGER].verifier.encode())
    for arrival in arrivals:
        sampling = arrival["sampling"]
        assert sampling["status"] in ("selected", "not-selected")
        # The seed is the root of a signed checkpoint, the first one covering the arrival.
        note = body["checkpoints"][str(sampling["checkpointSize"])]
        checkpoint = open_checkpoint(note, verifier, verifier.name)
        assert base64.b64decode(sampling["seed"]) == checkpoint.root_hash
        assert checkpoint.size > arrival["index"]
        for decision in sampling["decisions"]:
            draw, selected = recompute(
                sampling["seed"], arrival["eventID"], decision["identifier"], decision["rate"]
            )
            assert draw == decision["draw"]
            assert selected == decision["selected"]
    assert case["sampling"]["decisions"][0]["rate"] == 1.0  # the entry's rate: always checked
    assert case["sampling"]["status"] == "selected"
    assert biscuits["sampling"]["decisions"][0]["rate"] == DEFAULT_BASE_RATE

    # Asking again gives the same decisions: nothing about them is random at query time.
    again = (await get(client, "/v1/port/arrivals", token))[1]
    assert [a["sampling"] for a in again["arrivals"]] == [a["sampling"] for a in arrivals]
    # Time window and port filters.
    window = "since=2026-09-21T00:00:00%2B08:00&until=2026-09-22T00:00:00%2B08:00"
    assert [
        a["index"] for a in (await get(client, f"/v1/port/arrivals?{window}", token))[1]["arrivals"]
    ] == [biscuits["index"]]
    other_port = "/v1/port/arrivals?port=414/6901234000016"
    assert (await get(client, other_port, token))[1]["arrivals"] == []


async def test_a_later_catalog_version_does_not_change_earlier_decisions(
    client: Client, customs: Signer, port_story: dict[str, Signer]
) -> None:
    token = await inspector_token(client)
    before = (await get(client, "/v1/port/arrivals", token))[1]["arrivals"]
    everything = {"companyPrefix": OTHER, "reason": "biscuits", "inspectionRate": 1}
    assert (await publish(client, signed(high_risk(2, everything), customs)))[0] == 201
    await settled(client)
    after = (await get(client, "/v1/port/arrivals", token))[1]["arrivals"]
    assert after == before


async def test_catalog_hits_for_the_origin_view(
    client: Client, port_story: dict[str, Signer]
) -> None:
    async with client.app[LEDGER].pool.acquire() as conn:
        hits = await matching.catalog_hits(conn, [LOT_A_KEY, CASE_KEY], None)
        assert [(h["catalog"], h["key"], h["inspectionRate"]) for h in hits] == [
            ("high-risk", LOT_A_KEY, 1.0)
        ]
        # The entry names New Zealand: the same lot declared from elsewhere does not match.
        assert await matching.catalog_hits(conn, [LOT_A_KEY], "AU") == []
        assert await matching.catalog_hits(conn, [LOT_A], "NZ") != []  # URNs work too


async def test_an_arrival_without_a_covering_checkpoint_is_pending(settings: Settings) -> None:
    async with Ledger.open(settings, integrate=False) as ledger:
        doc = high_risk(1, FORMULA_NZ)
        payload = catalog_document.canonical_json(doc)
        arrival = ev(
            "09-20",
            eventID="urn:uuid:5b4cf3c6-1111-4c1e-9a3a-000000000001",
            action="OBSERVE",
            bizStep="arriving",
            quantityList=[{"epcClass": LOT_A}],
            bizLocation={"id": PORT_URN},
        )
        await ledger.sequencer.append(
            [
                Entry(hashlib.sha256(payload).digest(), payload),
                Entry(hashlib.sha256(b"arrival").digest(), json.dumps(arrival).encode()),
            ]
        )
        async with ledger.pool.acquire() as conn:  # not indexed yet, but already recorded
            assert await publishing.latest_version(conn, "high-risk") == 1
        await Indexer(ledger.pool, others=[index_catalog]).index_once()
        async with ledger.pool.acquire() as conn:
            assert await publishing.latest_version(conn, "high-risk") == 1
        service = ArrivalSampler(ledger.pool, base_rate=0.5)
        [found] = (await service.arrivals())["arrivals"]
        assert found["sampling"]["status"] == "pending"
        assert found["sampling"]["seed"] is None
        assert found["sampling"]["decisions"] == [
            {"identifier": LOT_A_KEY, "rate": 0.5, "matched": False}  # origin unknown
        ]


def test_the_draw_is_sha256_of_seed_event_and_identifier() -> None:
    seed = bytes(range(32))
    bits, draw = sampling_draw(seed, "urn:uuid:x", "01/09421234123456/10/LOTA")
    digest = hashlib.sha256(seed + b"urn:uuid:x" + b"01/09421234123456/10/LOTA").digest()
    assert bits == int.from_bytes(digest[:8], "big")
    assert draw == bits / 2**64
    assert 0 <= draw < 1


@pytest.mark.parametrize("declarer", ["rival", "producer"])
async def test_only_the_signer_can_declare_a_commissioning_erroneous_for_sampling(
    client: Client, customs: Signer, declarer: str
) -> None:
    """Attack 2 of issue 11: a rival repeating the eventID of another company's
    commissioning in an error declaration must not let a high-risk lot pass unflagged;
    the producer's own declaration does retract it (the legitimate twin)."""
    signers = {
        "producer": await register(client, "Canterbury Dairy", [PRODUCER]),
        "rival": await register(client, "Rival Foods", [OTHER]),
    }
    importer = await register(client, "Shanghai Importer", [IMPORTER])
    assert (await publish(client, signed(high_risk(1, FORMULA_NZ), customs)))[0] == 201
    event_id = "urn:uuid:0e7c3a1e-2b8a-4d7e-8d5e-3c1f5b2a0001"
    lot = [{"epcClass": LOT_A, "quantity": 500, "uom": "KGM"}]
    commission = ev(
        "09-01",
        action="ADD",
        bizStep="commissioning",
        quantityList=lot,
        eventID=event_id,
        ilmd={"cbvmda:countryOfOrigin": "NZ", "cbvmda:regulatedProductName": "Infant formula"},
    )
    assert (await post(client, document(commission), signers["producer"]))[0] == 201
    # The declaration repeats the event (the rival's names its own goods instead).
    declared = (
        commission
        if declarer == "producer"
        else ev("09-01", action="OBSERVE", epcList=[f"urn:epc:id:sgtin:{OTHER}.054321.1"])
    )
    declared = {
        **declared,
        "eventID": event_id,
        "errorDeclaration": {"declarationTime": "2026-09-03T08:00:00+08:00"},
    }
    status, receipt = await post(client, document(declared), signers[declarer])
    assert status == 201, receipt
    arrive = ev(
        "09-20",
        action="OBSERVE",
        bizStep="arriving",
        quantityList=lot,
        bizLocation={"id": PORT_URN},
    )
    assert (await post(client, document(arrive), importer))[0] == 201
    await settled(client)
    token = await inspector_token(client)
    [arrival] = (await get(client, f"/v1/port/arrivals?port={PORT}", token))[1]["arrivals"]
    assert arrival["flagged"] is (declarer == "rival"), json.dumps(arrival)
    assert arrival["countriesOfOrigin"] == ([] if declarer == "producer" else ["NZ"])
