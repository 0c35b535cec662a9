"""Every official EPCIS 2.0 example is captured, indexed by GS1 key, and error
declarations are linked to the events they correct.

The examples are read from ../shared/epcis/examples when that folder exists; the
module is skipped where it does not (they are GS1's files, never copied here).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.keys import LEDGER
from tests.conftest import SHARED_EPCIS, wait_for_index
from tests.ingest.test_capture import Signer, post, post_raw, register
from traceledger.accounts import registry
from traceledger.standards import dsse
from traceledger.standards.documents import event_document
from traceledger.standards.epcis import check_event, created_mentions, now_utc
from traceledger.standards.epcis_xml import document_from_xml
from traceledger.standards.gs1 import GS1Key

Client = TestClient[web.Request, web.Application]
EXAMPLES = SHARED_EPCIS / "examples"
DOCUMENTS = sorted(EXAMPLES.glob("*.jsonld"))  # EPCISQueryDocument.jsonld too
JSON = "application/json"

pytestmark = pytest.mark.skipif(not DOCUMENTS, reason="GS1 example documents not available")


def company_prefix(key: GS1Key) -> str:
    """A 6-digit prefix of the key's company prefix: enough to own what the example creates."""
    for start in (0, 1):  # the company prefix starts at the first or second digit
        prefix = key.key[start : start + 6]
        if prefix.isdigit() and key.owned_by(prefix):
            return prefix
    raise AssertionError(f"no company prefix found in {key}")


def needed_prefixes(doc: dict[str, Any]) -> set[str]:
    prefixes = {"0000"}
    for i, event in enumerate(event_document(doc).events()):
        checked, errors = check_event(event, i, now=now_utc(), max_future_skew=300)
        assert checked is not None, errors
        prefixes |= {company_prefix(m.key) for m in created_mentions(checked) if m.key}
    return prefixes


async def wait_indexed(client: Client, size: int) -> None:
    await wait_for_index(client.app[LEDGER], size)


async def test_every_official_example_is_accepted(client: Client) -> None:
    totals = 0
    for n, path in enumerate(DOCUMENTS):
        doc = json.loads(path.read_text())
        signer = await register(client, f"Example signer {n}", sorted(needed_prefixes(doc)))
        status, answer = await post(client, path.read_bytes(), signer)
        assert status in (200, 201), (path.name, answer)
        totals += len(answer["entries"])
    assert totals >= len(DOCUMENTS)


async def test_error_declaration_is_appended_and_linked_to_the_event_it_corrects(
    client: Client,
) -> None:
    path = EXAMPLES / "WithErrorDeclaration__ErrorDeclarationAndCorrectiveEvent.jsonld"
    doc = json.loads(path.read_text())
    original = {
        k: v for k, v in doc["epcisBody"]["eventList"][0].items() if k != "errorDeclaration"
    }
    signer = await register(client, "Corrector", sorted(needed_prefixes(doc) | {"4012345"}))
    first = {**doc, "epcisBody": {"eventList": [original]}}
    status, answer = await post(client, first, signer)
    assert status == 201, answer
    status, answer = await post(client, path.read_bytes(), signer)
    assert status == 201, answer
    statuses = [e["status"] for e in answer["entries"]]
    assert statuses[0] == "appended"  # the declaration is its own entry, not a duplicate
    await wait_indexed(client, 1 + len(statuses))
    async with client.app[LEDGER].pool.acquire() as conn:
        corrects = await conn.fetchval(
            "SELECT corrects FROM events WHERE idx = $1", answer["entries"][0]["index"]
        )
    assert corrects == 0


async def test_events_are_indexed_under_one_gs1_key_whether_urn_or_digital_link(
    client: Client,
) -> None:
    from tests.epcis_samples import document, object_event

    signer: Signer = await register(client, "Dairy", ["0614141"])
    urn_event = object_event(2017)
    link_event = object_event(
        2017,
        action="OBSERVE",
        biz_step="shipping",
        disposition="in_transit",
        when="2026-10-02T08:00:00+08:00",
    )
    link_event["epcList"] = ["https://example.com/shop/01/10614141073464/21/2017?x=1"]
    assert (await post(client, document(urn_event, link_event), signer))[0] == 201
    await wait_indexed(client, 2)
    async with client.app[LEDGER].pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT k.idx, k.role, e.biz_step, e.enterprise_id FROM event_keys k"
            " JOIN events e USING (idx) WHERE k.key = '01/10614141073464/21/2017' ORDER BY idx"
        )
        ents = await registry.list_enterprises(conn)
    assert [(r["idx"], r["role"], r["biz_step"]) for r in rows] == [
        (0, "epc", "commissioning"),
        (1, "epc", "shipping"),
    ]
    assert {r["enterprise_id"] for r in rows} == {ents[0].id}


XML_DOCUMENTS = sorted((SHARED_EPCIS / "examples-xml").glob("*.xml"))


def _signed_xml(xml: bytes, signer: Signer) -> bytes:
    return dsse.sign("application/xml", xml, signer.key).to_json()


@pytest.mark.skipif(not XML_DOCUMENTS, reason="GS1 XML examples not available")
async def test_every_official_xml_example_is_captured_and_hashed_like_its_json_twin(
    client: Client,
) -> None:
    """XML in a DSSE envelope (payloadType application/xml) goes through the same checks;
    an XML event whose JSON twin was captured first is a duplicate of it."""
    twin = json.loads((EXAMPLES / "AssociationEvent__AssociationEvent-a.jsonld").read_text())
    signer = await register(client, "JSON twin", sorted(needed_prefixes(twin)))
    status, answer = await post(client, twin, signer)
    assert status == 201, answer
    twin_indexes = {e["index"] for e in answer["entries"]}
    duplicates: set[int] = set()
    for n, path in enumerate(XML_DOCUMENTS):
        doc = document_from_xml(path.read_bytes())
        if not event_document(doc).events():
            continue  # master data only: nothing to log (an empty document is refused)
        signer = await register(client, f"XML signer {n}", sorted(needed_prefixes(doc)))
        status, answer = await post_raw(client, _signed_xml(path.read_bytes(), signer), JSON)
        assert status in (200, 201), (path.name, answer)
        duplicates |= {e["index"] for e in answer["entries"] if e["status"] == "duplicate"}
    # AssociationEventExamples.xml holds association event a's XML twin: same hash, so the
    # XML event is reported as the duplicate of the JSON one.
    assert twin_indexes <= duplicates


async def test_an_xml_document_with_a_dtd_is_refused_400_and_nothing_is_written(
    client: Client,
) -> None:
    from tests.standards.test_epcis_xml import HOSTILE

    signer = await register(client, "Hostile", ["0614141"])
    for name in ("billion laughs", "external entity", "external DTD"):
        status, problem = await post_raw(client, _signed_xml(HOSTILE[name], signer), JSON)
        assert status == 400, (name, problem)
    async with client.app[LEDGER].pool.acquire() as conn:
        assert await conn.fetchval("SELECT size FROM log_head") == 0


async def test_the_capture_client_pushes_epcis_12_xml(client: Client) -> None:
    from gateway.clients.capture import CaptureClient
    from tests.standards.test_epcis_xml import EPCIS_12

    signer = await register(client, "XML pusher", ["0614141"])
    async with CaptureClient(str(client.make_url("/")), signer.key) as pusher:
        receipt = await pusher.push(EPCIS_12, "application/xml")
    assert [e["status"] for e in receipt["entries"]] == ["appended"] * 4
