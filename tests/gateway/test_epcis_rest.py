"""The EPCIS 2.0 REST binding over real HTTP, as a standard client speaks it: plain
documents (JSON-LD and XML) with an enterprise's bearer token or an RFC 9421 signature,
capture jobs that survive a restart, single events, discovery; and what the ledger
records about how each event came in.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import (
    ContentDigest,
    HTTPMessageSigner,
    MappingKeyResolver,
    algorithms,
)

from gateway.app import create_app
from gateway.keys import LEDGER
from tests.conftest import settled
from tests.epcis_samples import PRODUCER_GCP, document, object_event
from tests.standards.test_epcis_xml import EPCIS_12, HOSTILE
from traceledger.accounts import registry, tokens
from traceledger.settings import Settings
from traceledger.standards import dsse

Client = TestClient[web.Request, web.Application]


@dataclass
class Enterprise:
    id: int
    key: Ed25519PrivateKey
    key_id: str
    token: str
    headers: dict[str, str] = field(default_factory=dict)


async def enterprise(
    client: Client, name: str, gcp: list[str], role: str = "enterprise"
) -> Enterprise:
    key = Ed25519PrivateKey.generate()
    async with client.app[LEDGER].pool.acquire() as conn:
        ent, kid = await registry.add_enterprise(conn, name, gcp, key.public_key(), role=role)
        _, token = await tokens.add_token(conn, f"{name} ERP", "enterprise", ent)
    return Enterprise(ent, key, kid, token, {"Authorization": f"Bearer {token}"})


@pytest.fixture
async def dairy(client: Client) -> Enterprise:
    return await enterprise(client, "Dairy", [PRODUCER_GCP, "4012345"])


async def post(
    client: Client, path: str, body: bytes, who: Enterprise | None, media: str
) -> tuple[int, Any, dict[str, str]]:
    headers = {"Content-Type": media, **(who.headers if who else {})}
    response = await client.post(path, data=body, headers=headers)
    return response.status, await response.json(content_type=None), dict(response.headers)


async def signers_entry(client: Client, who: Enterprise, index: int) -> dict[str, Any]:
    """The entry as its signer reads it (once indexed: the index says who signed it)."""
    await settled(client.app[LEDGER])
    response = await client.get(
        f"/v1/entries/{index}?include=body", headers={"Authorization": f"Bearer {who.token}"}
    )
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


def jsonld(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc).encode()


async def log_size(client: Client) -> int:
    async with client.app[LEDGER].pool.acquire() as conn:
        return int(await conn.fetchval("SELECT size FROM log_head"))


async def job_count(client: Client) -> int:
    async with client.app[LEDGER].pool.acquire() as conn:
        return int(await conn.fetchval("SELECT count(*) FROM capture_jobs"))


# ---------------------------------------------------------------------------- discovery


async def test_discovery_headers_on_the_root_and_capture(client: Client) -> None:
    response = await client.options("/")
    assert response.status == 204
    assert response.headers["GS1-EPCIS-Version"] == "2.0.0"
    assert response.headers["GS1-CBV-Version"] == "2.0.0"
    assert "GS1-Extensions" in response.headers
    assert "GET" in response.headers["Allow"]
    response = await client.get("/")
    assert response.status == 200
    assert response.headers["GS1-EPCIS-Version"] == "2.0.0"
    assert {"capture", "events"} <= set((await response.json())["member"])
    response = await client.options("/capture")
    assert response.status == 204
    assert response.headers["GS1-Capture-Error-Behaviour"] == "rollback"
    assert int(response.headers["GS1-EPCIS-Capture-Limit"]) > 0


# ------------------------------------------------------------------------------ capture


async def test_capture_answers_202_with_a_job_that_says_what_was_appended(
    client: Client, dairy: Enterprise
) -> None:
    status, job, headers = await post(
        client,
        "/capture",
        jsonld(document(object_event(1), object_event(2))),
        dairy,
        "application/ld+json",
    )
    assert status == 202, job
    assert headers["Location"] == f"/capture/{job['captureID']}"
    assert headers["GS1-EPCIS-Version"] == "2.0.0"
    assert "GS1-CBV-Version" in headers
    response = await client.get(headers["Location"], headers=dairy.headers)
    polled = await response.json()
    assert response.status == 200
    assert {
        k: polled[k] for k in ("captureID", "running", "success", "captureErrorBehaviour", "errors")
    } == {
        "captureID": job["captureID"],
        "running": False,
        "success": True,
        "captureErrorBehaviour": "rollback",
        "errors": [],
    }
    assert [e["index"] for e in polled["entries"]] == [0, 1]
    listed = await (await client.get("/capture", headers=dairy.headers)).json()
    assert [j["captureID"] for j in listed] == [job["captureID"]]


async def test_an_xml_document_and_an_xml_query_document_are_captured(
    client: Client, dairy: Enterprise
) -> None:
    from tests.standards.test_epcis_xml import QUERY_DOCUMENT

    status, job, _ = await post(client, "/capture", EPCIS_12, dairy, "application/xml")
    assert status == 202, job
    assert job["success"], job
    assert len(job["entries"]) == 4
    status, job, _ = await post(client, "/capture", QUERY_DOCUMENT, dairy, "text/xml")
    assert status == 202, job
    assert job["success"], job


async def test_a_json_query_document_is_captured(client: Client, dairy: Enterprise) -> None:
    doc = document(object_event(5))
    query = {**doc, "type": "EPCISQueryDocument", "id": "_:document1", "schemaVersion": "2"}
    query["epcisBody"] = {
        "queryResults": {"queryName": "SimpleEventQuery", "resultsBody": doc["epcisBody"]}
    }
    status, job, _ = await post(client, "/capture", jsonld(query), dairy, "application/json")
    assert status == 202, job
    assert job["success"], job


async def test_invalid_events_make_a_refused_job_and_nothing_is_written(
    client: Client, dairy: Enterprise
) -> None:
    bad = object_event(1, action="TELEPORT")
    status, job, _ = await post(
        client, "/capture", jsonld(document(bad)), dairy, "application/json"
    )
    assert status == 202
    assert job["success"] is False
    assert job["running"] is False
    assert job["errors"][0]["status"] == 422
    assert job["errors"][0]["errors"][0]["pointer"].startswith("/epcisBody/eventList/0")
    assert await log_size(client) == 0


async def test_proceed_is_refused_with_a_clear_400(client: Client, dairy: Enterprise) -> None:
    response = await client.post(
        "/capture",
        data=jsonld(document(object_event(1))),
        headers={
            **dairy.headers,
            "Content-Type": "application/json",
            "GS1-Capture-Error-Behaviour": "proceed",
        },
    )
    assert response.status == 400
    assert "rollback" in (await response.json())["detail"]
    assert await log_size(client) == 0
    assert await job_count(client) == 0


@pytest.mark.parametrize(
    "name", ["billion laughs", "external entity", "parameter entity", "external DTD"]
)
async def test_hostile_xml_is_refused_400_and_nothing_is_written(
    client: Client, dairy: Enterprise, name: str
) -> None:
    status, problem, _ = await post(client, "/capture", HOSTILE[name], dairy, "application/xml")
    assert status == 400, problem
    assert problem["type"] == "/problems/malformed-body"
    assert await log_size(client) == 0
    assert await job_count(client) == 0


async def test_capture_needs_an_enterprise_token(client: Client, dairy: Enterprise) -> None:
    body = jsonld(document(object_event(1)))
    assert (await post(client, "/capture", body, None, "application/json"))[0] == 401
    wrong = Enterprise(0, dairy.key, "", "", {"Authorization": "Bearer tl_nope"})
    assert (await post(client, "/capture", body, wrong, "application/json"))[0] == 401
    async with client.app[LEDGER].pool.acquire() as conn:
        _, inspector = await tokens.add_token(conn, "port inspector", "inspector")
    official = Enterprise(0, dairy.key, "", "", {"Authorization": f"Bearer {inspector}"})
    assert (await post(client, "/capture", body, official, "application/json"))[0] == 403
    assert await log_size(client) == 0


async def test_a_job_is_only_its_enterprises(client: Client, dairy: Enterprise) -> None:
    other = await enterprise(client, "Rival", ["0000042"])
    _, _job, headers = await post(
        client, "/capture", jsonld(document(object_event(1))), dairy, "application/json"
    )
    response = await client.get(headers["Location"], headers=other.headers)
    assert response.status == 404
    assert await (await client.get("/capture", headers=other.headers)).json() == []


async def test_jobs_survive_a_restart(settings: Settings) -> None:
    async with TestClient(TestServer(create_app(settings))) as first:
        who = await enterprise(first, "Dairy", [PRODUCER_GCP])
        _, _job, headers = await post(
            first, "/capture", jsonld(document(object_event(1))), who, "application/json"
        )
    async with TestClient(TestServer(create_app(settings))) as second:
        response = await second.get(headers["Location"], headers=who.headers)
        assert response.status == 200
        assert (await response.json())["success"] is True


# ------------------------------------------------------------------ how events came in


async def test_token_submissions_are_kept_in_a_custody_envelope_the_ledger_signs(
    client: Client, dairy: Enterprise
) -> None:
    body = jsonld(document(object_event(1)))
    _, job, _ = await post(client, "/capture", body, dairy, "application/ld+json")
    entry = await signers_entry(client, dairy, job["entries"][0]["index"])
    envelope = dsse.from_json_object(json.loads(base64.b64decode(entry["envelope"])))
    statement = json.loads(envelope.payload)
    assert statement["submittedWith"] == "submitted with an access token"
    assert statement["enterprise"]["id"] == dairy.id
    assert base64.b64decode(statement["body"]) == body
    log_key = client.app[LEDGER].signer
    assert log_key is not None
    assert dsse.verify(
        envelope,
        {dsse.keyid(log_key.private_key.public_key()): log_key.private_key.public_key()}.get,
    )
    await settled(client.app[LEDGER])
    event_id = job["entries"][0]["eventID"]
    found = await (
        await client.get(f"/events/{quote(event_id, safe='')}", headers=dairy.headers)
    ).json()
    shown = found["epcisBody"]["queryResults"]["resultsBody"]["eventList"][0]
    assert shown["provenance"] == "submitted with an access token"
    assert shown["eventIDVerified"] is True


# --------------------------------------------------------------------- single events


async def test_post_events_creates_one_event_and_get_finds_it(
    client: Client, dairy: Enterprise
) -> None:
    event = {**object_event(7), "eventID": "urn:uuid:1b4e28ba-2fa1-11d2-883f-0016d3cca427"}
    status, created, headers = await post(
        client, "/events", jsonld(event), dairy, "application/json"
    )
    assert status == 201, created
    assert headers["Location"] == "/events/" + quote(event["eventID"], safe="")
    assert created["eventID"] == event["eventID"]
    await settled(client.app[LEDGER])
    response = await client.get(headers["Location"], headers=dairy.headers)
    assert response.status == 200
    listed = (await response.json())["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    assert [e["eventID"] for e in listed] == [event["eventID"]]
    status, problem, headers = await post(
        client, "/events", jsonld(event), dairy, "application/json"
    )
    assert status == 409, problem
    assert headers["Location"].startswith("/events/"), problem
    rival = await enterprise(client, "Rival", ["0000042"])
    response = await client.get(
        "/events/" + quote(event["eventID"], safe=""), headers=rival.headers
    )
    assert response.status == 404  # not its event, not its goods


async def test_a_mismatched_ni_event_id_is_kept_and_flagged_wherever_the_event_is_shown(
    client: Client, dairy: Enterprise
) -> None:
    claimed = "ni:///sha-256;" + "0" * 64 + "?ver=CBV2.0"
    event = {**object_event(8), "eventID": claimed}
    status, created, headers = await post(
        client, "/events", jsonld(event), dairy, "application/json"
    )
    assert status == 201
    assert created["eventID"] == claimed
    assert created["eventIDVerified"] is False
    await settled(client.app[LEDGER])
    found = await (await client.get(headers["Location"], headers=dairy.headers)).json()
    shown = found["epcisBody"]["queryResults"]["resultsBody"]["eventList"][0]
    assert shown["eventID"] == claimed
    assert shown["eventIDVerified"] is False
    page = await (await client.get("/v1/events", headers=dairy.headers)).json()
    assert page["events"][0]["eventIDVerified"] is False
    history = await (
        await client.get("/01/10614141073464/21/8", headers={"Accept": "application/json"})
    ).json()
    assert history["events"][0]["eventIDVerified"] is False
    assert history["events"][0]["provenance"] == "submitted with an access token"


# --------------------------------------------------------------- RFC 9421 signatures


@dataclass
class _Message:
    method: str
    url: str
    headers: dict[str, str]


def signed_headers(
    who: Enterprise,
    client: Client,
    path: str,
    body: bytes,
    media: str,
    key: Ed25519PrivateKey | None = None,
) -> dict[str, str]:
    headers = {"Content-Type": media}
    signer = HTTPMessageSigner(
        signature_algorithm=algorithms.ED25519,
        key_resolver=MappingKeyResolver(public_keys={}, private_keys={who.key_id: key or who.key}),
    )
    message = _Message("POST", str(client.make_url(path)), headers)
    signer.sign(
        message,
        key_id=who.key_id,
        label="erp",
        created=datetime.now(UTC),
        covered_component_ids=("@method", "@path", "content-digest", "content-type"),
        body=body,  # adds the RFC 9530 Content-Digest the signature covers
    )
    return message.headers


async def test_an_rfc9421_signed_capture_is_recorded_as_signed_by_the_enterprise(
    client: Client, dairy: Enterprise
) -> None:
    body = jsonld(document(object_event(11)))
    headers = signed_headers(dairy, client, "/capture", body, "application/ld+json")
    response = await client.post("/capture", data=body, headers=headers)
    job = await response.json()
    assert response.status == 202, job
    assert job["success"], job
    entry = await signers_entry(client, dairy, job["entries"][0]["index"])
    envelope = dsse.from_json_object(json.loads(base64.b64decode(entry["envelope"])))
    statement = json.loads(envelope.payload)
    assert statement["submittedWith"] == "signed by the enterprise"
    signed = statement["httpMessageSignature"]
    assert signed["keyid"] == dairy.key_id
    # Anyone can re-verify: the base covers the body's digest, the enterprise's key signs it.
    assert ContentDigest.create(base64.b64decode(statement["body"])) in signed["signatureBase"]
    sig = signed["signature"].split("=:", 1)[1].rstrip(":")
    dairy.key.public_key().verify(base64.b64decode(sig), signed["signatureBase"].encode())
    await settled(client.app[LEDGER])
    page = await (await client.get("/v1/events", headers=dairy.headers)).json()
    assert page["events"][0]["provenance"] == "signed by the enterprise"


async def test_a_wrong_signature_is_401_and_nothing_is_written(
    client: Client, dairy: Enterprise
) -> None:
    body = jsonld(document(object_event(12)))
    forged = signed_headers(
        dairy, client, "/capture", body, "application/ld+json", Ed25519PrivateKey.generate()
    )
    assert (await client.post("/capture", data=body, headers=forged)).status == 401
    headers = signed_headers(dairy, client, "/capture", body, "application/ld+json")
    tampered = body.replace(b"2026-10-01", b"2026-10-02")
    assert (await client.post("/capture", data=tampered, headers=headers)).status == 401
    assert await log_size(client) == 0
    assert await job_count(client) == 0


# ------------------------------------------------------------------ error declarations


async def test_an_error_declaration_naming_an_ambiguous_event_id_is_refused_422(
    client: Client, dairy: Enterprise
) -> None:
    shared_id = "urn:uuid:6f1c0a2e-7d3b-4d8e-9a51-2b9f3c4d5e6f"
    first = {**object_event(21), "eventID": shared_id}
    second = {**object_event(22), "eventID": shared_id}
    for event in (first, second):
        assert (await post(client, "/events", jsonld(event), dairy, "application/json"))[0] == 201
    rival = await enterprise(client, "Rival", ["0000042"])
    assert (
        await post(
            client,
            "/events",
            jsonld({**object_event(23, gcp="0000042"), "eventID": shared_id}),
            rival,
            "application/json",
        )
    )[0] == 201
    await settled(client.app[LEDGER])
    declaration = {
        **first,
        "errorDeclaration": {"declarationTime": "2026-10-02T08:00:00Z", "reason": "incorrect_data"},
    }
    status, problem, _ = await post(
        client, "/events", jsonld(declaration), dairy, "application/json"
    )
    assert status == 422, problem
    assert problem["type"] == "/problems/ambiguous-event-id"
    assert problem["errors"][0]["candidates"] == [0, 1]  # the rival's event is not a candidate
    # The rival's own declaration names only its own event: no ambiguity.
    rivals = {
        **object_event(23, gcp="0000042"),
        "eventID": shared_id,
        "errorDeclaration": declaration["errorDeclaration"],
    }
    status, created, _ = await post(client, "/events", jsonld(rivals), rival, "application/json")
    assert status == 201, created
    await settled(client.app[LEDGER])
    async with client.app[LEDGER].pool.acquire() as conn:
        corrects = await conn.fetchval("SELECT corrects FROM events WHERE declaration")
    assert corrects == 2
