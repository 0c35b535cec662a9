"""Issue 11 at capture, over real HTTP on real PostgreSQL: attribution by verified
signatures only (attack 7), times before 1900 refused (attack 9), and delegation (a
contract manufacturer commissions the brand's serials). Each attack with its
legitimate twin."""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.keys import LEDGER
from tests.conftest import settled
from tests.epcis_samples import OTHER_GCP, PRODUCER_GCP, document, object_event
from tests.ingest.test_capture import Signer, head_size, post, post_raw, register
from traceledger.accounts import registry
from traceledger.ingest.custody import CUSTODY_TYPE
from traceledger.standards import dsse

Client = TestClient[web.Request, web.Application]
JSON = "application/json"


@pytest.fixture
async def producer(client: Client) -> Signer:
    return await register(client, "Shanghai Dairy", [PRODUCER_GCP])


def with_signatures(envelope: dsse.Envelope, *extra: dsse.Signature) -> bytes:
    return dsse.Envelope(
        envelope.payload_type, envelope.payload, (*envelope.signatures, *extra)
    ).to_json()


def signed(doc: dict[str, Any], *keys: Ed25519PrivateKey) -> dsse.Envelope:
    return dsse.sign("application/ld+json", json.dumps(doc).encode(), *keys)


async def credited(client: Client) -> list[int | None]:
    """The enterprise each indexed event is credited to, in log order."""
    await settled(client.app[LEDGER])
    async with client.app[LEDGER].pool.acquire() as conn:
        rows = await conn.fetch("SELECT enterprise_id FROM events ORDER BY idx")
    return [r["enterprise_id"] for r in rows]


def refused_key(status: int, problem: dict[str, Any], key_id: str, position: str) -> None:
    assert status == 401, problem
    assert problem["type"] == "/problems/bad-signature"
    assert problem["keyId"] == key_id
    assert problem["position"] == position
    assert (
        f"signature with key id {key_id} does not verify against an active key"
        in (problem["detail"])
    )


# ------------------------------------------------------------------ attack 7: signatures


async def test_a_dummy_signature_with_an_authoritys_revoked_key_id_is_refused(
    client: Client, producer: Signer
) -> None:
    authority = await register(client, "Food Safety Authority", ["6901234"], role="authority")
    async with client.app[LEDGER].pool.acquire() as conn:
        await registry.revoke_key(conn, authority.key_id)
    recall = object_event(1, action="OBSERVE", biz_step="holding", disposition="recalled")
    envelope = signed(document(recall), producer.key)
    dummy = dsse.Signature(authority.key_id, os.urandom(64))
    status, problem = await post_raw(client, with_signatures(envelope, dummy), JSON)
    refused_key(status, problem, authority.key_id, "/signatures/1")
    assert "revoked" in problem["detail"]
    # First or last, the dummy is refused, and nothing was written either way.
    first = dsse.Envelope(envelope.payload_type, envelope.payload, (dummy, *envelope.signatures))
    status, problem = await post_raw(client, first.to_json(), JSON)
    refused_key(status, problem, authority.key_id, "/signatures/0")
    assert await head_size(client) == 0


async def test_an_unknown_key_id_or_a_wrong_signature_beside_a_valid_one_is_refused(
    client: Client, producer: Signer
) -> None:
    authority = await register(client, "Port Authority", ["6901234"], role="authority")
    envelope = signed(document(object_event(1)), producer.key)
    unknown = dsse.keyid(Ed25519PrivateKey.generate().public_key())
    for extra, why in (
        (dsse.Signature(unknown, os.urandom(64)), "no such active key"),
        (dsse.Signature(authority.key_id, os.urandom(64)), "the signature is wrong"),
    ):
        status, problem = await post_raw(client, with_signatures(envelope, extra), JSON)
        refused_key(status, problem, extra.keyid, "/signatures/1")
        assert why in problem["detail"]
    # The MessagePack form is checked the same way.
    packed = dsse.Envelope(
        envelope.payload_type,
        envelope.payload,
        (*envelope.signatures, dsse.Signature(unknown, os.urandom(64))),
    ).to_msgpack()
    status, problem = await post_raw(client, packed, "application/msgpack")
    refused_key(status, problem, unknown, "/signatures/1")
    assert await head_size(client) == 0


async def test_one_valid_signature_is_accepted_and_credited_to_its_signer(
    client: Client, producer: Signer
) -> None:
    status, receipt = await post(client, document(object_event(1)), producer)
    assert status == 201, receipt
    assert await credited(client) == [producer.enterprise_id]


async def test_several_valid_signatures_are_accepted_and_the_first_signer_is_credited(
    client: Client, producer: Signer
) -> None:
    rotated = Ed25519PrivateKey.generate()
    importer = await register(client, "Importer", ["0012345"])
    async with client.app[LEDGER].pool.acquire() as conn:
        await registry.add_key(conn, producer.enterprise_id, rotated.public_key())
    # Old and new key of one enterprise during a rotation.
    both = signed(document(object_event(1)), producer.key, rotated)
    assert (await post_raw(client, both.to_json(), JSON))[0] == 201
    # Two enterprises: the first is the signer, whose rights alone count.
    cosigned = signed(document(object_event(2)), producer.key, importer.key)
    assert (await post_raw(client, cosigned.to_json(), JSON))[0] == 201
    reversed_ = signed(document(object_event(3)), importer.key, producer.key)
    status, problem = await post_raw(client, reversed_.to_json(), JSON)
    assert status == 403, problem  # the importer may not commission the producer's serials
    assert await credited(client) == [producer.enterprise_id] * 2


async def test_stored_envelopes_credit_only_a_signature_that_verifies(
    client: Client, producer: Signer
) -> None:
    """The indexer's rule for envelopes already in a log (accepted before every signature
    had to verify): a dummy signature with an authority's key id credits nobody."""
    authority = await register(client, "Authority", ["6901234"], role="authority")
    envelope = signed(document(object_event(1)), producer.key)
    dummy = dsse.Signature(authority.key_id, os.urandom(64))
    forged = dsse.Envelope(envelope.payload_type, envelope.payload, (dummy, *envelope.signatures))
    stranger = dsse.Signature(dsse.keyid(Ed25519PrivateKey.generate().public_key()), b"x" * 64)
    only_dummies = dsse.Envelope(envelope.payload_type, envelope.payload, (dummy, stranger))
    async with client.app[LEDGER].pool.acquire() as conn:
        await registry.revoke_key(conn, producer.key_id)  # revoked since: still its signature
        assert await registry.signing_enterprise(conn, forged) == producer.enterprise_id
        assert await registry.signing_enterprise(conn, only_dummies) is None


async def test_a_custody_envelope_cannot_be_posted_as_ones_own(
    client: Client, producer: Signer
) -> None:
    """Only the ledger makes custody envelopes (which name the enterprise credited)."""
    statement = {"submittedWith": "submitted with an access token", "enterprise": {"id": 1}}
    envelope = dsse.sign(CUSTODY_TYPE, json.dumps(statement).encode(), producer.key)
    assert (await post_raw(client, envelope.to_json(), JSON))[0] == 415
    assert await head_size(client) == 0


# ----------------------------------------------------------------------- attack 9: times

XML_EVENT = """<?xml version="1.0" encoding="UTF-8"?>
<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2" schemaVersion="2.0"
    creationDate="2026-03-01T08:00:00Z">
  <EPCISBody><EventList><ObjectEvent>
    <eventTime>{when}</eventTime>
    <eventTimeZoneOffset>+14:00</eventTimeZoneOffset>
    <epcList><epc>urn:epc:id:sgtin:0614141.107346.5</epc></epcList>
    <action>ADD</action>
    <bizStep>commissioning</bizStep>
    <disposition>active</disposition>
  </ObjectEvent></EventList></EPCISBody>
</epcis:EPCISDocument>"""


def refused_time(status: int, problem: dict[str, Any], pointer: str) -> None:
    assert status == 422, problem
    assert problem["type"] == "/problems/invalid-events"
    (error,) = problem["errors"]
    assert error["pointer"] == "/epcisBody/eventList/0" + pointer
    assert "is before 1900-01-01T00:00:00Z" in error["reason"]


@pytest.mark.parametrize(
    "when",
    [
        "0001-01-01T00:00:00Z",
        "0001-01-01T00:00:00+14:00",  # overflows once moved to UTC
        "1899-12-31T23:59:59.999Z",
        "1900-01-01T00:00:00+01:00",  # 1899 in UTC
    ],
)
async def test_an_event_time_before_1900_is_422_never_500(
    client: Client, producer: Signer, when: str
) -> None:
    status, problem = await post(client, document(object_event(1, when=when)), producer)
    refused_time(status, problem, "/eventTime")
    xml = dsse.sign("application/xml", XML_EVENT.format(when=when).encode(), producer.key)
    refused_time(*await post_raw(client, xml.to_json(), JSON), "/eventTime")
    assert await head_size(client) == 0


async def test_a_declaration_time_before_1900_is_422(client: Client, producer: Signer) -> None:
    assert (await post(client, document(object_event(1, eventID="urn:uuid:1")), producer))[0] == 201
    declaration = object_event(
        1,
        eventID="urn:uuid:1",
        errorDeclaration={
            "declarationTime": "0001-01-01T00:00:00+14:00",
            "reason": "incorrect_data",
        },
    )
    status, problem = await post(client, document(declaration), producer)
    refused_time(status, problem, "/errorDeclaration/declarationTime")
    assert await head_size(client) == 1


async def test_the_rest_binding_refuses_times_before_1900_the_same_way(client: Client) -> None:
    from tests.gateway.test_epcis_rest import enterprise, jsonld

    dairy = await enterprise(client, "Dairy", [PRODUCER_GCP])
    old = object_event(1, when="0001-01-01T00:00:00Z")
    response = await client.post(
        "/capture", data=jsonld(document(old)), headers={"Content-Type": JSON, **dairy.headers}
    )
    job = await response.json()
    assert job["success"] is False, job
    refused_time(job["errors"][0]["status"], job["errors"][0], "/eventTime")
    response = await client.post(
        "/events", data=jsonld(old), headers={"Content-Type": JSON, **dairy.headers}
    )
    assert response.status == 422
    assert await head_size(client) == 0


async def test_1900_and_a_normal_date_are_accepted_and_stored_with_their_zone(
    client: Client, producer: Signer
) -> None:
    events = [
        object_event(1, when="1900-01-01T00:00:00Z", eventID="urn:uuid:1900"),
        object_event(2, when="2026-10-01T08:00:00+08:00"),
    ]
    status, receipt = await post(client, document(*events), producer)
    assert status == 201, receipt
    declaration = object_event(
        1,
        when="1900-01-01T00:00:00Z",
        eventID="urn:uuid:1900",
        errorDeclaration={"declarationTime": "1900-01-01T00:00:00Z", "reason": "incorrect_data"},
    )
    status, receipt = await post(client, document(declaration), producer)
    assert status == 201, receipt
    await settled(client.app[LEDGER])
    async with client.app[LEDGER].pool.acquire() as conn:
        times = [r["event_time"] for r in await conn.fetch("SELECT event_time FROM events")]
    assert all(t.tzinfo is not None for t in times)
    assert set(times) == {datetime(1900, 1, 1, tzinfo=UTC), datetime(2026, 10, 1, tzinfo=UTC)}


# ------------------------------------------------------------------------- delegation


def commission(serial: int, gcp: str) -> dict[str, Any]:
    return object_event(serial, gcp=gcp, ilmd={"cbvmda:lotNumber": f"LOT-{serial}"})


async def test_a_delegated_contract_manufacturer_commissions_the_brands_serials(
    client: Client,
) -> None:
    brand = await register(client, "Brand", [PRODUCER_GCP, OTHER_GCP])
    maker = await register(client, "Contract Manufacturer", ["0012345"])
    stranger = await register(client, "Stranger", ["0054321"])
    async with client.app[LEDGER].pool.acquire() as conn:
        await registry.delegate(conn, brand.enterprise_id, maker.enterprise_id, None)
    status, receipt = await post(client, document(commission(1, PRODUCER_GCP)), maker)
    assert status == 201, receipt
    assert (await post(client, document(commission(2, OTHER_GCP)), maker))[0] == 201
    status, problem = await post(client, document(commission(3, PRODUCER_GCP)), stranger)
    assert status == 403, problem
    assert "or ones delegated to you" in problem["errors"][0]["reason"]
    # Creating is delegated; recalling the brand's goods stays the brand's.
    recall = object_event(1, action="OBSERVE", biz_step="holding", disposition="recalled")
    assert (await post(client, document(recall), maker))[0] == 403
    assert await credited(client) == [maker.enterprise_id] * 2


async def test_a_delegation_limited_to_one_prefix_does_not_reach_the_others(
    client: Client,
) -> None:
    brand = await register(client, "Brand", [PRODUCER_GCP, OTHER_GCP])
    maker = await register(client, "Contract Manufacturer", ["0012345"])
    async with client.app[LEDGER].pool.acquire() as conn:
        await registry.delegate(conn, brand.enterprise_id, maker.enterprise_id, PRODUCER_GCP)
        listed = await registry.get_enterprise(conn, maker.enterprise_id)
    assert listed.delegated_prefixes == (PRODUCER_GCP,)
    assert (await post(client, document(commission(1, PRODUCER_GCP)), maker))[0] == 201
    status, problem = await post(client, document(commission(2, OTHER_GCP)), maker)
    assert status == 403, problem
    assert problem["errors"][0]["pointer"] == "/epcisBody/eventList/0/epcList/0"


async def test_a_delegate_commissions_through_the_rest_binding_too(client: Client) -> None:
    from tests.gateway.test_epcis_rest import enterprise, jsonld

    brand = await register(client, "Brand", [PRODUCER_GCP])
    maker = await enterprise(client, "Contract Manufacturer", ["0012345"])
    doc = jsonld(commission(1, PRODUCER_GCP))
    headers = {"Content-Type": JSON, **maker.headers}
    assert (await client.post("/events", data=doc, headers=headers)).status == 403
    async with client.app[LEDGER].pool.acquire() as conn:
        await registry.delegate(conn, brand.enterprise_id, maker.id, None)
    assert (await client.post("/events", data=doc, headers=headers)).status == 201


@pytest.mark.parametrize("hidden", ["disposition", "bizStep", "epcList"])
async def test_a_recall_cannot_keep_what_makes_it_a_recall_confidential(
    client: Client, producer: Signer, hidden: str
) -> None:
    recall = object_event(1, action="OBSERVE", biz_step="holding", disposition="recalled")
    recall["traceledger:confidential"] = [hidden]
    before = await head_size(client)
    status, problem = await post(client, document(recall), producer)
    assert status == 422, problem
    assert f"cannot keep {hidden} confidential" in json.dumps(problem)
    assert await head_size(client) == before


async def test_a_recall_may_keep_its_extensions_confidential(
    client: Client, producer: Signer
) -> None:
    recall = object_event(1, action="OBSERVE", biz_step="holding", disposition="recalled")
    recall |= {"example:lab": "report 7", "traceledger:confidential": ["example:lab"]}
    status, receipt = await post(client, document(recall), producer)
    assert status == 201, receipt
