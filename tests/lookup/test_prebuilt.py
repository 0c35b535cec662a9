"""Answers built ahead of the first scan: byte for byte what a live lookup says, and never
served once an event, a newer checkpoint or the clock has made them stale."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime, time, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.keys import LEDGER
from tests.conftest import poll, settled
from tests.epcis_samples import document
from tests.ingest.test_capture import Signer, post
from tests.lookup.test_history import (
    BLEND_DL,
    CAN_DL,
    CAN_EXPIRES,
    LOT_A,
    LOT_C,
    history,
    lot_event,
    tell_story,
)
from traceledger.audit.history_check import verify_history
from traceledger.ledger import Ledger, answer_builder
from traceledger.lookup.history import HistoryService
from traceledger.lookup.prebuilder import Prebuilder
from traceledger.lookup.prebuilt import read_prebuilt, valid_until
from traceledger.settings import Settings
from traceledger.standards.gs1 import GS1Key, parse_digital_link
from traceledger.tlog.note import Verifier

Client = TestClient[web.Request, web.Application]
CAN = CAN_DL[1:]
BLEND = BLEND_DL[1:]


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    """The service with no background builder: each test builds when it chooses."""
    quiet = dataclasses.replace(settings, prebuild_answers=False)
    async with TestClient(TestServer(create_app(quiet))) as test_client:
        yield test_client


@pytest.fixture
async def story(client: Client) -> dict[str, Signer]:
    return await tell_story(client)


async def build_all(builder: Prebuilder) -> Prebuilder:
    while await builder.build_once():
        pass
    await builder.build_once()  # the stale-answer pass after the last chunk
    return builder


def item(path: str) -> GS1Key:
    return parse_digital_link("https://id.gs1.org" + path)


def reading(ledger: Ledger) -> HistoryService:
    """A lookup service that reads prebuilt answers and caches nothing in memory."""
    return HistoryService(
        ledger.pool,
        ledger.reader,
        verifier_key=ledger.verifier.encode(),
        origin=ledger.verifier.name,
        prebuilt=True,
    )


async def stored(ledger: Ledger) -> dict[str, dict[str, Any]]:
    async with ledger.pool.acquire() as conn:
        rows = await conn.fetch("SELECT key, body FROM prebuilt_answers")
    return {r["key"]: json.loads(r["body"]) for r in rows}


async def test_every_serial_and_lot_the_events_name_gets_a_prebuilt_answer(
    client: Client, story: dict[str, Signer]
) -> None:
    ledger = client.app[LEDGER]
    await build_all(answer_builder(ledger))
    assert sorted(await stored(ledger)) == [
        "01/06901234543216/10/LOTC",
        BLEND,
        "01/09421234123456/10/LOTA",
        CAN,
    ]  # not the case (SSCC), the port (GLN) or a bare GTIN


async def test_a_prebuilt_answer_is_byte_for_byte_the_live_answer(
    client: Client, story: dict[str, Signer]
) -> None:
    ledger = client.app[LEDGER]
    await build_all(answer_builder(ledger))
    live = HistoryService(ledger.pool, ledger.reader, verifier_key=ledger.verifier.encode())
    checkpoint = await ledger.reader.checkpoint()
    async with ledger.pool.acquire() as conn:
        rows = await conn.fetch("SELECT key, body, tree_size FROM prebuilt_answers")
    for row in rows:
        assert row["tree_size"] == checkpoint.size
        fresh = await live.assemble(item("/" + row["key"]), checkpoint)
        assert bytes(row["body"]) == fresh.json_body("/" + row["key"])[0]
        answer = json.loads(row["body"])
        assert not verify_history(answer, Verifier.parse(answer["verifierKey"])).failures
    # And a lookup over HTTP returns that answer, with the serial's look-up count added.
    response = await client.get(CAN_DL, headers={"Accept": "application/json"})
    served = json.loads(await response.read())
    assert served.pop("scans")["count"] == 1
    assert served == (await stored(ledger))[CAN]


async def test_lookups_read_the_prebuilt_answer_while_it_is_current(
    client: Client, story: dict[str, Signer]
) -> None:
    ledger = client.app[LEDGER]
    await build_all(answer_builder(ledger))
    service = reading(ledger)
    can = item(CAN_DL)
    found = await service.lookup(can)
    assert found.decoded is None  # read as stored JSON, not assembled
    # The inspector view is never prebuilt: it shows what the public one withholds.
    blend = item(BLEND_DL)
    inside = await service.lookup(blend, inspector=True)
    assert inside.decoded is not None
    assert any(e["ilmd"] for e in inside.answer["events"] if e["type"] == "TransformationEvent")


async def test_an_event_on_a_lot_stales_its_serials_answers_at_once_until_rebuilt(
    client: Client, story: dict[str, Signer]
) -> None:
    ledger = client.app[LEDGER]
    builder = await build_all(answer_builder(ledger))
    service = reading(ledger)
    can = item(CAN_DL)
    destroyed = lot_event("9-22", LOT_A, "destroying", "destroyed")
    assert (await post(client, document(destroyed), story["port"]))[0] == 201
    await settled(ledger, 10)
    # Not yet rebuilt: the stored answer is stale, so the lookup assembles the new truth.
    found = await service.lookup(can)
    assert found.decoded is not None
    assert found.answer["status"]["destroyed"] is True
    await build_all(builder)
    rebuilt = await service.lookup(can)
    assert rebuilt.decoded is None
    assert rebuilt.answer["status"]["destroyed"] is True
    assert rebuilt.answer["treeSize"] == 10


async def test_a_recall_upstream_reaches_the_prebuilt_answers_of_products_made_from_it(
    client: Client, story: dict[str, Signer]
) -> None:
    ledger = client.app[LEDGER]
    builder = await build_all(answer_builder(ledger))
    before = (await stored(ledger))[BLEND]["status"]["recalls"]
    assert [r["via"] for r in before] == ["01/09421234123456/10/LOTA"]
    recall = lot_event("9-23", LOT_C, "holding", "recalled")
    assert (await post(client, document(recall), story["proc"]))[0] == 201
    await settled(ledger, 10)
    await build_all(builder)
    # The blend names neither lot C nor the recall: its walk visited lot C as an input.
    after = (await stored(ledger))[BLEND]["status"]["recalls"]
    assert sorted(r["via"] for r in after) == [
        "01/06901234543216/10/LOTC",
        "01/09421234123456/10/LOTA",
    ]
    # Answers the recall does not concern are not rebuilt.
    async with ledger.pool.acquire() as conn:
        rows = await conn.fetch("SELECT key, tree_size FROM prebuilt_answers")
    sizes = {r["key"]: r["tree_size"] for r in rows}
    assert sizes[CAN] == 9
    assert sizes[BLEND] == 10


async def test_an_answer_is_not_served_once_its_expiry_date_passes(
    client: Client, story: dict[str, Signer]
) -> None:
    ledger = client.app[LEDGER]
    builder = await build_all(answer_builder(ledger))
    async with ledger.pool.acquire() as conn:
        until = await conn.fetchval("SELECT valid_until FROM prebuilt_answers WHERE key = $1", CAN)
        # Valid through the can's best-before date, stale from the next day on.
        assert until == datetime.combine(CAN_EXPIRES + timedelta(days=1), time(), UTC)
        # As if that day had come: the clock alone changes the answer.
        await conn.execute(
            "UPDATE prebuilt_answers SET valid_until = now() - interval '1 second' WHERE key = $1",
            CAN,
        )
        assert await read_prebuilt(conn, CAN, 9, 0.0) is None
        assert await read_prebuilt(conn, BLEND, 9, 0.0) is not None
    await build_all(builder)  # the builder renews answers past their date
    async with ledger.pool.acquire() as conn:
        assert await read_prebuilt(conn, CAN, 9, 0.0) is not None


def test_valid_until_is_the_day_after_a_future_expiry_date_and_none_otherwise() -> None:
    def status(expiry: object) -> dict[str, Any]:
        return {"status": {"expiryDate": expiry}}

    ahead = (datetime.now(UTC) + timedelta(days=30)).date()
    assert valid_until(status(ahead.isoformat())) == datetime.combine(
        ahead + timedelta(days=1), datetime.min.time(), UTC
    )
    assert valid_until(status("2001-01-01")) is None  # already expired: stays so
    assert valid_until(status(None)) is None
    assert valid_until(status("not a date")) is None


async def test_changing_a_registered_enterprise_drops_every_prebuilt_answer(
    client: Client, story: dict[str, Signer]
) -> None:
    ledger = client.app[LEDGER]
    await build_all(answer_builder(ledger))
    assert len(await stored(ledger)) == 4
    async with ledger.pool.acquire() as conn:
        await conn.execute(
            "UPDATE enterprises SET name = 'Canterbury Dairy Ltd' WHERE name = 'Canterbury Dairy'"
        )
    assert await stored(ledger) == {}
    h = await history(client, CAN_DL)
    assert h["product"]["producer"]["name"] == "Canterbury Dairy Ltd"


async def test_the_service_builds_answers_in_the_background(settings: Settings) -> None:
    async with TestClient(TestServer(create_app(settings))) as client:
        await tell_story(client)
        ledger = client.app[LEDGER]

        async def built() -> bool:
            return CAN in await stored(ledger)

        await poll("the can's answer built in the background", built)
        assert json.loads(await (await client.get(CAN_DL + "?format=json")).read())["treeSize"] == 9
