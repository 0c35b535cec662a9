"""Inspectors and regulators on the full import scenario: origin, forward trace, recalls,
token and role refusals, and the audit trail."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.keys import CAPTURE, LEDGER
from tests.conftest import settled
from traceledger.accounts import tokens
from traceledger.audit.history_check import verify_history
from traceledger.demo import scenario
from traceledger.ingest.catalogs import document as catalog_document
from traceledger.standards import dsse

Client = TestClient[web.Request, web.Application]
LOT_A = f"01/{scenario.CAN}/10/{scenario.LOT_A}"
LOT_B = f"01/{scenario.CAN}/10/{scenario.LOT_B}"
BLEND_UNIT = f"01/{scenario.BLEND}/21/{scenario.BLEND_UNITS[0]}"


@pytest.fixture
async def loaded(client: Client) -> dict[str, str]:
    story = scenario.build(datetime.now(UTC))
    ledger = client.app[LEDGER]
    await scenario.load(story, ledger.pool, client.app[CAPTURE])
    await settled(ledger)
    async with ledger.pool.acquire() as conn:
        made = {}
        for role in ("inspector", "regulator"):
            made[role] = (await tokens.add_token(conn, f"{role} Wang", role))[1]
        ent = await conn.fetchval("SELECT min(id) FROM enterprises")
        made["enterprise"] = (
            await tokens.add_token(conn, "Dairy system", "enterprise", enterprise_id=ent)
        )[1]
    return made


async def get(client: Client, path: str, token: str | None) -> tuple[int, dict[str, Any]]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.get(path, headers=headers)
    return response.status, await response.json(content_type=None)


async def test_origin_of_a_blended_unit_reaches_the_foreign_producer_and_inspection(
    client: Client, loaded: dict[str, str]
) -> None:
    status, answer = await get(client, f"/v1/origin/{BLEND_UNIT}", loaded["inspector"])
    assert status == 200, answer
    keys = {n["key"] for n in answer["nodes"]}
    assert LOT_A in keys
    lot_a = next(n for n in answer["nodes"] if n["key"] == LOT_A)
    assert {i["outcome"] for i in lot_a["inspections"]} >= {"conformant"}
    assert any(e["from"] == LOT_A and e["type"] == "transformation" for e in answer["edges"])
    countries = {i["key"]: i["country"] for i in answer["origin"]["inputs"]}
    assert countries[LOT_A] == "NZ"
    assert answer["status"]["recalled"] is True


async def test_forward_trace_lists_every_enterprise_still_holding_any_of_the_lot(
    client: Client, loaded: dict[str, str]
) -> None:
    status, scope = await get(client, f"/v1/trace/forward/{LOT_A}", loaded["inspector"])
    assert status == 200, scope
    holders = {(h["key"], h["party"]) for h in scope["holders"]}
    parties = {party for _, party in holders}
    # The recall names lot A last: it moves nothing, so every holder is still listed.
    assert {scenario.RETAILER_1.name, scenario.RETAILER_2.name, scenario.PROCESSOR.name} <= (
        parties
    )
    assert scenario.IMPORTER.name not in parties  # it shipped all of lot A on
    # The distributor shipped the cage with the case and blended cans packed in it; it
    # still has part of lot A (a quantity it received) as far as the events tell.
    assert {k for k, p in holders if p == scenario.DISTRIBUTOR.name} == {LOT_A}
    assert all(isinstance(h["enterpriseId"], int) for h in scope["holders"])


async def test_lot_b_shows_non_conformant_then_destroyed(
    client: Client, loaded: dict[str, str]
) -> None:
    status, answer = await get(client, f"/v1/origin/{LOT_B}", loaded["inspector"])
    assert status == 200, answer
    assert answer["status"]["destroyed"] is True
    assert [i["outcome"] for i in answer["status"]["inspections"]] == ["non_conformant"]


async def test_forward_trace_of_lot_a_reaches_serials_containers_products_and_shops(
    client: Client, loaded: dict[str, str]
) -> None:
    status, scope = await get(client, f"/v1/trace/forward/{LOT_A}", loaded["regulator"])
    assert status == 200, scope
    serials = {s["key"].rsplit("/", 1)[-1] for s in scope["serials"]}
    assert set(scenario.CANS_A) <= serials
    assert scope["containers"]
    assert any(p["key"].startswith(f"01/{scenario.BLEND}") for p in scope["products"])
    parties = {r["party"] for r in scope["receivedBy"]}
    assert any((p and "Supermarket" in p) or (p and "Market" in p) for p in parties), parties
    assert scope["truncated"] is False


async def test_recalls_list_the_recall_with_its_scope(
    client: Client, loaded: dict[str, str]
) -> None:
    status, answer = await get(client, "/v1/recalls", loaded["regulator"])
    assert status == 200, answer
    recalled = {s["key"] for r in answer["recalls"] for s in r["scope"]}
    assert LOT_A in recalled
    scope = next(s for r in answer["recalls"] for s in r["scope"] if s["key"] == LOT_A)
    assert scope["serials"] >= len(scenario.CANS_A)
    assert scope["products"]
    # ...and every affected item's public lookup carries the warning.
    for path in (f"/01/{scenario.CAN}/21/{scenario.CANS_A[0]}", f"/{BLEND_UNIT}"):
        response = await client.get(path, headers={"Accept": "application/json"})
        assert (await response.json())["status"]["recalled"] is True, path


async def test_tokens_and_roles_are_enforced_and_queries_audited(
    client: Client, loaded: dict[str, str]
) -> None:
    assert (await get(client, f"/v1/origin/{LOT_A}", None))[0] == 401
    assert (await get(client, f"/v1/origin/{LOT_A}", "tl_wrong"))[0] == 401
    assert (await get(client, "/v1/recalls", loaded["enterprise"]))[0] == 403
    assert (await get(client, f"/v1/trace/forward/{LOT_A}?depth=9", loaded["inspector"]))[0] == 400
    async with client.app[LEDGER].pool.acquire() as conn:
        token_id = await conn.fetchval("SELECT id FROM access_tokens WHERE role = 'inspector'")
        before = await conn.fetchval("SELECT count(*) FROM audit_log WHERE token_id = $1", token_id)
        await get(client, f"/v1/origin/{LOT_A}", loaded["inspector"])
        rows = await conn.fetch(
            "SELECT path, status FROM audit_log WHERE token_id = $1 ORDER BY id", token_id
        )
        await tokens.revoke_token(conn, token_id)
    assert len(rows) == before + 1
    assert rows[-1]["path"] == f"/v1/origin/{LOT_A}"
    assert (await get(client, f"/v1/origin/{LOT_A}", loaded["inspector"]))[0] == 401


async def test_origin_flags_lots_on_the_high_risk_catalog(
    client: Client, loaded: dict[str, str]
) -> None:
    authority = scenario.party_key(scenario.AUTHORITY.name)
    doc = {
        "type": catalog_document.CATALOG_TYPE,
        "catalog": "high-risk",
        "version": 1,
        "effectiveFrom": "2026-01-01T00:00:00+08:00",
        "ports": [f"414/{scenario.PORT}"],
        "entries": [
            {
                "companyPrefix": scenario.PRODUCER.prefixes[0],
                "countryOfOrigin": "NZ",
                "reason": "dairy from a region under watch",
                "inspectionRate": 0.5,
            }
        ],
    }
    body = dsse.sign(catalog_document.PAYLOAD_TYPE, json.dumps(doc).encode(), authority).to_json()
    response = await client.post(
        "/v1/catalogs", data=body, headers={"Content-Type": "application/json"}
    )
    assert response.status == 201, await response.text()
    await settled(client.app[LEDGER])
    status, answer = await get(client, f"/v1/origin/{LOT_A}", loaded["inspector"])
    assert status == 200, answer
    assert any(h["reason"] == "dairy from a region under watch" for h in answer["catalogHits"])


async def test_an_origin_query_leaves_the_inspectors_history_fully_proven(
    client: Client, loaded: dict[str, str]
) -> None:
    """Origin reads the history without inclusion proofs (it shows none); that answer is
    never cached, so the same inspector's history of the lot next still proves each event."""
    status, _ = await get(client, f"/v1/origin/{LOT_A}", loaded["inspector"])
    assert status == 200
    headers = {"Accept": "application/json", "Authorization": f"Bearer {loaded['inspector']}"}
    response = await client.get(f"/{LOT_A}", headers=headers)
    history = await response.json()
    assert response.status == 200, history
    assert history["events"]
    assert all(e["inclusionProof"] is not None for e in history["events"])
    report = verify_history(history, client.app[LEDGER].verifier)
    assert not report.failures
    assert report.verified + report.withheld == len(history["events"])
