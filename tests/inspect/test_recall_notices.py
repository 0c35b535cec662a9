"""Recall notices against real webhook receivers: a recall of an input lot reaches the
retailer of the product made from it and no unrelated retailer; verdicts notify too;
retries, suspension, acknowledgments, unreachable holders; unentitled recalls are not
believed; endpoints registered by CLI and admin API."""

from __future__ import annotations

import asyncio
import hashlib
import json
from dataclasses import dataclass, field
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from gateway.cli.main import main as cli_main
from gateway.keys import LEDGER, OPERATOR_TOKEN
from tests.conftest import cli_args, settled
from tests.epcis_samples import document
from tests.ingest.test_capture import Signer, post, register
from tests.inspect.test_named_queries import auth, token_for
from tests.webhooks import Receiver, poll
from traceledger.audit.pushed import verify_pushed
from traceledger.inspect.entitlement import recall_entitled
from traceledger.inspect.recall_notices import set_endpoint
from traceledger.inspect.webhooks import SIGNATURE_HEADER, signature_valid
from traceledger.log.sequencer import Entry
from traceledger.settings import Settings
from traceledger.standards.gs1 import parse_identifier

Client = TestClient[web.Request, web.Application]

DAIRY, PROCESSOR, SHOP_1, SHOP_2, FARM, PORT = (
    "0614141",
    "4012345",
    "0712345",
    "0812345",
    "0912345",
    "0512345",
)
LOT = f"urn:epc:class:lgtin:{DAIRY}.107346.LOTL"
BLEND_1 = f"urn:epc:id:sgtin:{PROCESSOR}.107346.B1"
BLEND_2 = f"urn:epc:id:sgtin:{PROCESSOR}.107346.B2"
APPLES = f"urn:epc:id:sgtin:{FARM}.107346.X1"


def key_of(uri: str) -> str:
    parsed = parse_identifier(uri)
    assert parsed is not None
    return parsed.item_key().canonical()


LOT_KEY, BLEND_1_KEY = key_of(LOT), key_of(BLEND_1)


def site(gcp: str) -> dict[str, str]:
    return {"id": f"urn:epc:id:sgln:{gcp}.00001.0"}


def ev(day: int, **fields: Any) -> dict[str, Any]:
    return {
        "type": "ObjectEvent",
        "eventTime": f"2026-05-{day:02d}T08:00:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        "action": "OBSERVE",
        **fields,
    }


def moved(step: str, day: int, gcp: str, **what: Any) -> dict[str, Any]:
    disposition = "in_transit" if step == "shipping" else "in_progress"
    return ev(day, bizStep=step, disposition=disposition, bizLocation=site(gcp), **what)


@dataclass
class Chain:
    """A lot of milk powder blended into a product sold by one shop; apples elsewhere."""

    client: Client
    parties: dict[str, Signer] = field(default_factory=dict)
    secrets: dict[str, str] = field(default_factory=dict)

    async def capture(self, party: str, *events: dict[str, Any]) -> list[int]:
        status, receipt = await post(self.client, document(*events), self.parties[party])
        assert status == 201, receipt
        return [e["index"] for e in receipt["entries"]]

    async def endpoint(self, party: str, url: str) -> None:
        async with self.client.app[LEDGER].pool.acquire() as conn:
            ent = self.parties[party].enterprise_id
            self.secrets[party] = await set_endpoint(conn, ent, url, None)


async def build_chain(client: Client) -> Chain:
    chain = Chain(client)
    for name, gcp, role in (
        ("dairy", DAIRY, "enterprise"),
        ("processor", PROCESSOR, "enterprise"),
        ("shop 1", SHOP_1, "enterprise"),
        ("shop 2", SHOP_2, "enterprise"),
        ("farm", FARM, "enterprise"),
        ("port", PORT, "authority"),
    ):
        chain.parties[name] = await register(client, name, [gcp], role=role)
    lot = [{"epcClass": LOT, "quantity": 100, "uom": "KGM"}]
    await chain.capture(
        "dairy",
        ev(1, action="ADD", bizStep="commissioning", quantityList=lot, bizLocation=site(DAIRY)),
        moved("shipping", 2, DAIRY, quantityList=lot),
    )
    await chain.capture("processor", moved("receiving", 3, PROCESSOR, quantityList=lot))
    blend = {
        "type": "TransformationEvent",
        "eventTime": "2026-05-04T08:00:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        "inputQuantityList": lot,
        "outputEPCList": [BLEND_1, BLEND_2],
        "bizStep": "commissioning",
        "bizLocation": site(PROCESSOR),
        "ilmd": {"cbvmda:lotNumber": "BL1"},
    }
    await chain.capture("processor", blend, moved("shipping", 5, PROCESSOR, epcList=[BLEND_1]))
    await chain.capture("shop 1", moved("receiving", 6, SHOP_1, epcList=[BLEND_1]))
    await chain.capture(
        "farm",
        ev(1, action="ADD", bizStep="commissioning", epcList=[APPLES], bizLocation=site(FARM)),
        moved("shipping", 2, FARM, epcList=[APPLES]),
    )
    await chain.capture("shop 2", moved("receiving", 3, SHOP_2, epcList=[APPLES]))
    return chain


async def notices(client: Client, token: str, index: int) -> dict[str, Any] | None:
    response = await client.get(f"/v1/recalls/{index}/notices", headers=auth(token))
    if response.status == 404:
        return None
    assert response.status == 200, await response.text()
    found: dict[str, Any] = await response.json()
    return found


async def settled_notices(client: Client, token: str, index: int, done: set[str]) -> dict[str, Any]:
    """The notice listing once every holder's delivery reached one of `done`."""

    async def check() -> dict[str, Any] | None:
        found = await notices(client, token, index)
        if found and all(n["status"] in done for n in found["notices"]):
            return found
        return None

    settled_view: dict[str, Any] = await poll(check, what=f"recall {index}'s notices")
    return settled_view


async def test_a_recall_of_an_input_lot_reaches_the_blended_products_retailer_only(
    app: Client,
) -> None:
    async with Receiver(fail=2) as shop_1, Receiver() as shop_2, Receiver() as processor:
        chain = await build_chain(app)
        await chain.endpoint("shop 1", shop_1.url())
        await chain.endpoint("shop 2", shop_2.url())
        inspector = await token_for(app, None, "inspector")
        recall = ev(9, disposition="recalled", quantityList=[{"epcClass": LOT}])
        (index,) = await chain.capture("dairy", recall)

        view = await settled_notices(app, inspector, index, {"delivered", "no-endpoint"})
        told = {n["enterprise"]: n for n in view["notices"]}
        assert set(told) == {"shop 1", "processor"}  # not shop 2, not the dairy itself
        assert told["shop 1"]["status"] == "delivered"
        assert told["shop 1"]["attempts"] == 3
        assert [h["key"] for h in told["shop 1"]["holds"]] == [BLEND_1_KEY]
        assert [n["enterprise"] for n in view["unreachable"]] == ["processor"]
        assert view["recall"]["entitled"] is True
        assert view["recall"]["kind"] == "recalled"

        assert shop_2.received == []
        assert shop_1.refused == 2
        (delivery,) = shop_1.received
        secret = chain.secrets["shop 1"]
        assert signature_valid(secret, delivery.body, delivery.headers[SIGNATURE_HEADER])
        notice = delivery.json()
        assert notice["recall"]["index"] == index
        assert notice["holder"]["name"] == "shop 1"
        assert [a["key"] for a in notice["affected"]] == [BLEND_1_KEY]
        proof = verify_pushed(
            notice["traceledger:log"], [notice["recall"]["event"]], app.app[LEDGER].verifier
        )
        assert proof.verified == [index]

        # The holder acknowledges by posting back what its notice says.
        ack = notice["acknowledge"]
        assert ack["url"].endswith(f"/v1/recalls/{index}/notices")
        response = await app.post(f"/v1/recalls/{index}/notices", json=ack["body"])
        assert response.status == 200, await response.text()
        bad = await app.post(f"/v1/recalls/{index}/notices", json={"ackToken": "guessed"})
        assert bad.status == 404
        # The unreachable processor registers an endpoint and is told then.
        await chain.endpoint("processor", processor.url())
        view = await settled_notices(app, inspector, index, {"delivered", "acknowledged"})
        told = {n["enterprise"]: n for n in view["notices"]}
        assert told["shop 1"]["status"] == "acknowledged"
        assert told["processor"]["status"] == "delivered"
        assert view["unreachable"] == []
        assert [a["key"] for a in processor.received[0].json()["affected"]] == [LOT_KEY]


async def test_a_non_conformant_verdict_notifies_and_a_dead_endpoint_is_chased(
    app: Client,
) -> None:
    async with Receiver(failing=True) as shop_2:
        chain = await build_chain(app)
        await chain.endpoint("shop 2", shop_2.url())
        inspector = await token_for(app, None, "regulator")
        verdict = ev(8, bizStep="inspecting", disposition="non_conformant", epcList=[APPLES])
        (index,) = await chain.capture("port", verdict)
        view = await settled_notices(app, inspector, index, {"suspended"})
        (chased,) = view["unreachable"]
        assert chased["enterprise"] == "shop 2"
        assert chased["attempts"] == 3
        assert chased["lastError"] == "HTTP 503"
        assert shop_2.refused == 3
        assert view["recall"]["kind"] == "non_conformant"
        # Only a holder acknowledges, with its own enterprise token.
        shop_token = await token_for(app, chain.parties["shop 2"])
        refused = await app.post(f"/v1/recalls/{index}/notices", headers=auth(inspector))
        assert refused.status == 403
        response = await app.post(f"/v1/recalls/{index}/notices", headers=auth(shop_token))
        assert response.status == 200
        view = await settled_notices(app, inspector, index, {"acknowledged"})
        assert view["unreachable"] == []


async def test_a_lot_recall_reaches_holders_of_serials_whose_lot_only_ilmd_names(
    app: Client,
) -> None:
    async with Receiver() as shop_2:
        chain = await build_chain(app)
        await chain.endpoint("shop 2", shop_2.url())
        regulator = await token_for(app, None, "regulator")
        pears = [f"urn:epc:id:sgtin:{FARM}.107346.P{n}" for n in (1, 2)]
        made = ev(1, action="ADD", bizStep="commissioning", epcList=pears, bizLocation=site(FARM))
        made["ilmd"] = {"cbvmda:lotNumber": "PEARS1"}  # the lot, nowhere else
        await chain.capture("farm", made, moved("shipping", 2, FARM, epcList=pears[:1]))
        await chain.capture("shop 2", moved("receiving", 3, SHOP_2, epcList=pears[:1]))
        lot = f"urn:epc:class:lgtin:{FARM}.107346.PEARS1"
        recall = ev(9, disposition="recalled", quantityList=[{"epcClass": lot}])
        (index,) = await chain.capture("farm", recall)
        view = await settled_notices(app, regulator, index, {"delivered"})
        assert [n["enterprise"] for n in view["notices"]] == ["shop 2"]
        assert [a["key"] for a in shop_2.received[0].json()["affected"]] == [key_of(pears[0])]


async def test_an_unentitled_recall_is_logged_but_tells_nobody(app: Client) -> None:
    async with Receiver() as shop_1:
        chain = await build_chain(app)
        await chain.endpoint("shop 1", shop_1.url())
        inspector = await token_for(app, None, "inspector")
        # Capture refuses a recall of another's goods; an entry without a registered
        # signer (say, from before the rules) stands in for one not entitled.
        fake = {**ev(9, disposition="recalled", quantityList=[{"epcClass": LOT}])}
        fake["eventID"] = "urn:uuid:3f1b6b52-6a34-4f7c-9d55-7c1d3c3b0001"
        payload = json.dumps(fake, separators=(",", ":")).encode()
        (appended,) = await app.app[LEDGER].sequencer.append(
            [Entry(hashlib.sha256(payload).digest(), payload)]
        )
        await settled(app.app[LEDGER])
        view = await settled_notices(app, inspector, appended.index, set())
        assert view["recall"]["entitled"] is False
        assert view["notices"] == []
        assert shop_1.received == []
        # The entitlement rule itself: the goods' owner and authorities, not a competitor.
        async with app.app[LEDGER].pool.acquire() as conn:
            for party, believed in (("dairy", True), ("port", True), ("farm", False)):
                ent = chain.parties[party].enterprise_id
                assert await recall_entitled(conn, ent, [LOT_KEY]) is believed, party
            assert await recall_entitled(conn, None, [LOT_KEY]) is False


async def test_recall_endpoints_are_registered_by_cli_and_admin_api(
    app: Client, fast: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    shop = await register(app, "shop", [SHOP_1])
    args = [*cli_args(fast), "enterprise", "notify", str(shop.enterprise_id)]
    assert await asyncio.to_thread(cli_main, [*args, "--url", "https://shop.example/recalls"]) == 0
    secret = capsys.readouterr().out.strip().splitlines()[-1]
    async with app.app[LEDGER].pool.acquire() as conn:
        row = await conn.fetchrow("SELECT url, secret FROM recall_endpoints")
    assert row is not None
    assert (row["url"], row["secret"]) == ("https://shop.example/recalls", secret)
    # Plain http only to this machine.
    assert await asyncio.to_thread(cli_main, [*args, "--url", "http://shop.example/r"]) == 2
    assert await asyncio.to_thread(cli_main, [*args, "--remove"]) == 0

    operator = {"Authorization": f"Bearer {app.app[OPERATOR_TOKEN]}"}
    path = f"/v1/admin/enterprises/{shop.enterprise_id}/notify"
    response = await app.post(path, json={"url": "https://shop.example/r"}, headers=operator)
    assert response.status == 200
    assert (await response.json())["url"] == "https://shop.example/r"
    response = await app.post(path, json={"url": "ftp://shop.example/r"}, headers=operator)
    assert response.status == 400
    response = await app.post(path, json={"url": "https://shop.example/r"})
    assert response.status == 401
    assert (await app.delete(path, headers=operator)).status == 204
    assert (await app.delete(path, headers=operator)).status == 400
