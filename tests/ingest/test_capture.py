"""POST /v1/capture over real HTTP: signed EPCIS in, durable indexes out, precise refusals."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import msgpack
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway.app import create_app
from gateway.keys import LEDGER
from tests.epcis_samples import OTHER_GCP, PRODUCER_GCP, document, future_time, object_event
from traceledger.accounts import registry
from traceledger.settings import Settings
from traceledger.standards import dsse
from traceledger.standards.dsse import sign_document

Client = TestClient[web.Request, web.Application]


@dataclass
class Signer:
    enterprise_id: int
    key: Ed25519PrivateKey
    key_id: str


async def register(
    client: Client, name: str, gcp: list[str], role: str = "enterprise", rate: float | None = None
) -> Signer:
    key = Ed25519PrivateKey.generate()
    async with client.app[LEDGER].pool.acquire() as conn:
        ent, kid = await registry.add_enterprise(
            conn, name, gcp, key.public_key(), role=role, rate_limit=rate
        )
    return Signer(ent, key, kid)


@pytest.fixture
async def producer(client: Client) -> Signer:
    return await register(client, "Shanghai Dairy", [PRODUCER_GCP])


async def post(
    client: Client, doc: dict[str, Any] | bytes, signer: Signer, *, as_msgpack: bool = False
) -> tuple[int, dict[str, Any]]:
    body, content_type = sign_document(doc, signer.key, as_msgpack=as_msgpack)
    return await post_raw(client, body, content_type)


async def post_raw(client: Client, body: bytes, content_type: str) -> tuple[int, dict[str, Any]]:
    response = await client.post("/v1/capture", data=body, headers={"Content-Type": content_type})
    return response.status, await response.json(content_type=None)


async def head_size(client: Client) -> int:
    async with client.app[LEDGER].pool.acquire() as conn:
        size: int = await conn.fetchval("SELECT size FROM log_head")
        return size


async def test_a_signed_document_is_appended_with_an_index_per_event(
    client: Client, producer: Signer
) -> None:
    status, receipt = await post(client, document(object_event(1), object_event(2)), producer)
    assert status == 201, receipt
    assert [e["index"] for e in receipt["entries"]] == [0, 1]
    assert {e["status"] for e in receipt["entries"]} == {"appended"}
    assert all(e["eventID"].startswith("ni:///sha-256;") for e in receipt["entries"])
    assert receipt["treeSize"] == 2
    assert len(receipt["envelope"]) == 64


async def test_replaying_the_identical_envelope_returns_the_identical_body(
    client: Client, producer: Signer
) -> None:
    body, content_type = sign_document(document(object_event(1)), producer.key)
    first = await client.post("/v1/capture", data=body, headers={"Content-Type": content_type})
    again = await client.post("/v1/capture", data=body, headers={"Content-Type": content_type})
    assert (first.status, again.status) == (201, 200)
    assert await first.read() == await again.read()
    assert await head_size(client) == 1


async def test_an_event_already_recorded_is_reported_duplicate_with_its_index(
    client: Client, producer: Signer
) -> None:
    await post(client, document(object_event(1), object_event(2)), producer)
    # Same events, new envelope (different key order and time zone for the same instant).
    same = object_event(2, when="2026-10-01T00:00:00Z")
    status, receipt = await post(client, document(object_event(3), same), producer)
    assert status == 201
    assert [(e["index"], e["status"]) for e in receipt["entries"]] == [
        (2, "appended"),
        (1, "duplicate"),
    ]


async def test_messagepack_envelope_and_payload_are_accepted(
    client: Client, producer: Signer
) -> None:
    payload = msgpack.packb(document(object_event(7)), use_bin_type=True)
    envelope = dsse.sign("application/msgpack", payload, producer.key)
    status, receipt = await post_raw(client, envelope.to_msgpack(), "application/msgpack")
    assert status == 201, receipt
    status, receipt = await post(client, document(object_event(8)), producer, as_msgpack=True)
    assert status == 201, receipt


async def test_one_bad_event_refuses_the_whole_batch_naming_every_problem(
    client: Client, producer: Signer
) -> None:
    bad_gtin = object_event(2)
    bad_gtin["epcList"] = ["https://id.example.com/01/10614141073465/21/2"]  # wrong check digit
    bad_step = object_event(3, biz_step="juggling")
    late = object_event(4, when=future_time(3600))
    status, problem = await post(
        client, document(object_event(1), bad_gtin, bad_step, late), producer
    )
    assert status == 422, problem
    assert problem["type"] == "/problems/invalid-events"
    where = {(e["event"], e["pointer"]) for e in problem["errors"]}
    assert (1, "/epcisBody/eventList/1/epcList/0") in where
    assert (2, "/epcisBody/eventList/2/bizStep") in where
    assert (3, "/epcisBody/eventList/3/eventTime") in where
    assert all(e["reason"] for e in problem["errors"])
    assert await head_size(client) == 0


async def test_schema_errors_name_the_event_and_pointer(client: Client, producer: Signer) -> None:
    no_action = object_event(1)
    del no_action["action"]
    status, problem = await post(client, document(object_event(0), no_action), producer)
    assert status == 422
    assert any(e["event"] == 1 for e in problem["errors"])
    assert await head_size(client) == 0


async def test_malformed_bodies_are_400_with_a_position(client: Client, producer: Signer) -> None:
    status, problem = await post_raw(
        client, b'{"payloadType": "application/json",', "application/json"
    )
    assert status == 400
    assert problem["type"] == "/problems/malformed-body"
    assert "line 1" in problem["position"]
    envelope = dsse.sign("application/ld+json", b'{"type": "EPCISDocument", ', producer.key)
    status, problem = await post_raw(client, envelope.to_json(), "application/json")
    assert status == 400
    assert problem["position"].startswith("payload line")


async def test_unknown_key_and_bad_signature_are_401(client: Client, producer: Signer) -> None:
    stranger = Signer(0, Ed25519PrivateKey.generate(), "")
    status, problem = await post(client, document(object_event(1)), stranger)
    assert status == 401
    assert problem["type"] == "/problems/bad-signature"
    body = json.loads(sign_document(document(object_event(1)), producer.key)[0])
    sig = bytearray(base64.b64decode(body["signatures"][0]["sig"]))
    sig[0] ^= 1
    body["signatures"][0]["sig"] = base64.b64encode(bytes(sig)).decode()
    status, problem = await post_raw(client, json.dumps(body).encode(), "application/json")
    assert status == 401
    assert "does not verify" in problem["detail"]
    assert await head_size(client) == 0


async def test_rotated_keys_both_work_and_a_revoked_key_is_refused_from_then_on(
    client: Client, producer: Signer
) -> None:
    new_key = Ed25519PrivateKey.generate()
    async with client.app[LEDGER].pool.acquire() as conn:
        new_id = await registry.add_key(conn, producer.enterprise_id, new_key.public_key())
    rotated = Signer(producer.enterprise_id, new_key, new_id)
    assert (await post(client, document(object_event(1)), producer))[0] == 201
    assert (await post(client, document(object_event(2)), rotated))[0] == 201
    async with client.app[LEDGER].pool.acquire() as conn:
        await registry.revoke_key(conn, producer.key_id)
    status, problem = await post(client, document(object_event(3)), producer)
    assert status == 401
    assert "revoked" in problem["detail"]
    assert (await post(client, document(object_event(4)), rotated))[0] == 201
    assert await head_size(client) == 3  # what was signed before the revocation stays


async def test_creating_identifiers_under_another_prefix_is_forbidden(
    client: Client, producer: Signer
) -> None:
    status, problem = await post(client, document(object_event(1, gcp=OTHER_GCP)), producer)
    assert status == 403, problem
    assert problem["errors"][0]["pointer"] == "/epcisBody/eventList/0/epcList/0"
    assert await head_size(client) == 0


async def test_shipping_and_receiving_may_name_anyones_goods(
    client: Client, producer: Signer
) -> None:
    importer = await register(client, "Importer", ["0012345"])
    shipping = object_event(1, action="OBSERVE", biz_step="shipping", disposition="in_transit")
    receiving = object_event(
        1,
        action="OBSERVE",
        biz_step="receiving",
        disposition="in_progress",
        when="2026-10-03T08:00:00+08:00",
    )
    assert (await post(client, document(shipping, receiving), importer))[0] == 201


async def test_only_authorities_inspect_or_recall_other_companies_goods(
    client: Client, producer: Signer
) -> None:
    importer = await register(client, "Importer", ["0012345"])
    customs = await register(client, "Port Authority", ["6901234"], role="authority")
    inspect = object_event(1, action="OBSERVE", biz_step="inspecting", disposition="conformant")
    recall = object_event(
        1,
        action="OBSERVE",
        biz_step="holding",
        disposition="recalled",
        when="2026-10-05T08:00:00+08:00",
    )
    assert (await post(client, document(inspect), importer))[0] == 403
    assert (await post(client, document(recall), importer))[0] == 403
    assert (await post(client, document(inspect, recall), customs))[0] == 201
    own_recall = object_event(2, action="OBSERVE", biz_step="holding", disposition="recalled")
    assert (await post(client, document(own_recall), producer))[0] == 201


async def test_wrong_media_types_are_415(client: Client, producer: Signer) -> None:
    body, _ = sign_document(document(object_event(1)), producer.key)
    assert (await post_raw(client, body, "text/plain"))[0] == 415
    envelope = dsse.sign("text/csv", b"a,b", producer.key)
    status, problem = await post_raw(client, envelope.to_json(), "application/json")
    assert status == 415
    assert "payloadType" in problem["detail"]


@pytest.fixture
async def small_client(settings: Settings) -> AsyncIterator[Client]:
    tight = Settings(
        **{
            **settings.__dict__,
            "max_body_bytes": 4096,
            "max_pending_entries": 10,
            "max_batch_entries": 10,
        }
    )
    async with TestClient(TestServer(create_app(tight))) as test_client:
        yield test_client


async def test_a_body_over_the_limit_is_413_before_it_is_read(small_client: Client) -> None:
    signer = await register(small_client, "Big", [PRODUCER_GCP])
    doc = document(*(object_event(i) for i in range(40)))
    status, problem = await post(small_client, doc, signer)
    assert status == 413
    assert problem["type"] == "/problems/payload-too-large"


async def test_a_saturated_writer_answers_503_with_retry_after(small_client: Client) -> None:
    signer = await register(small_client, "Busy", [PRODUCER_GCP])
    pool = small_client.app[LEDGER].pool
    async with pool.acquire() as blocker, blocker.transaction():
        # Hold the single-writer lock so appends pile up in the sequencer's queue.
        await blocker.execute("SELECT size FROM log_head FOR UPDATE")
        tasks = [
            asyncio.create_task(post(small_client, document(object_event(i)), signer))
            for i in range(12)
        ]
        done, _ = await asyncio.wait(tasks, timeout=2)
        refused = [t.result() for t in done]
    results = refused + [await t for t in tasks if t not in done]
    assert any(status == 503 for status, _ in results)
    assert all(status in (201, 503) for status, _ in results)


async def test_an_enterprise_over_its_rate_limit_gets_429_with_retry_after(
    client: Client,
) -> None:
    slow = await register(client, "Slow", [PRODUCER_GCP], rate=2)
    assert (await post(client, document(object_event(1), object_event(2)), slow))[0] == 201
    body, content_type = sign_document(document(object_event(3)), slow.key)
    response = await client.post("/v1/capture", data=body, headers={"Content-Type": content_type})
    assert response.status == 429
    assert int(response.headers["Retry-After"]) >= 1
