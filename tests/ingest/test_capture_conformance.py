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
from tests.ingest.test_capture import Signer, post, register
from traceledger.accounts import registry
from traceledger.standards.epcis import check_event, created_mentions, now_utc
from traceledger.standards.gs1 import GS1Key

Client = TestClient[web.Request, web.Application]
EXAMPLES = SHARED_EPCIS / "examples"
DOCUMENTS = sorted(p for p in EXAMPLES.glob("*.jsonld") if "QueryDocument" not in p.name)

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
    for i, event in enumerate(doc["epcisBody"]["eventList"]):
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
