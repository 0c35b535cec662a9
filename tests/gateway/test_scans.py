"""Look-up counts over real HTTP: counted on the page and its JSON, once a minute per
client, never for inspectors or unknown codes; spoofed client addresses do not count;
inspectors list a lot's most looked-up serials."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.keys import LEDGER
from gateway.pages import render_history
from tests.gateway.test_pages import JSON_URL, SELF_URL, _event, blended_recalled_import
from tests.lookup.test_history import BLEND_DL, CAN_DL, tell_story
from traceledger.accounts import tokens
from traceledger.lookup.scans import Tally
from traceledger.settings import Settings

Client = TestClient[web.Request, web.Application]
LOT_DL = "/01/09421234123456/10/LOTA"


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    """The ledger behind a reverse proxy on 127.0.0.1, which names clients in
    X-Forwarded-For; a few look-ups make the count a warning."""
    proxied = dataclasses.replace(settings, trusted_proxies=("127.0.0.1",), scan_warning_count=3)
    async with TestClient(TestServer(create_app(proxied))) as running:
        await tell_story(running)
        yield running


async def lookup(client: Client, path: str, client_ip: str, **headers: str) -> dict[str, Any]:
    response = await client.get(
        path,
        headers={"Accept": "application/json", "X-Forwarded-For": client_ip, **headers},
    )
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


async def page(client: Client, path: str, client_ip: str, lang: str = "zh") -> str:
    response = await client.get(
        f"{path}?lang={lang}", headers={"Accept": "text/html", "X-Forwarded-For": client_ip}
    )
    assert response.status == 200
    return await response.text()


async def stored(client: Client, key: str) -> int | None:
    async with client.app[LEDGER].pool.acquire() as conn:
        count: int | None = await conn.fetchval("SELECT count FROM scan_counts WHERE key = $1", key)
    return count


async def test_each_shopper_counts_once_a_minute_and_the_answer_says_so(client: Client) -> None:
    before = datetime.now(UTC)
    first = await lookup(client, CAN_DL, "198.51.100.1")
    assert first["scans"]["count"] == 1
    assert datetime.fromisoformat(first["scans"]["first"]) >= before.replace(microsecond=0)
    # The same shopper reloading, and the page's own proof check: not a new scan.
    again = await lookup(client, CAN_DL, "198.51.100.1")
    assert again["scans"] == first["scans"]
    second = await lookup(client, CAN_DL, "198.51.100.2")
    assert second["scans"] == {"count": 2, "first": first["scans"]["first"]}
    # Written in the background, in one batch, without the client's address.
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 30
    while await stored(client, "01/09421234123456/21/CAN1") != 2:
        assert loop.time() < deadline, "the counts were not written"
        await asyncio.sleep(0.02)


async def test_a_spoofed_forwarded_for_from_an_untrusted_peer_is_not_a_new_client(
    settings: Settings,
) -> None:
    """Without a trusted proxy, X-Forwarded-For is the sender's word: ignored."""
    async with TestClient(TestServer(create_app(settings))) as direct:
        await tell_story(direct)
        counts = [
            (await lookup(direct, CAN_DL, f"203.0.113.{n}"))["scans"]["count"] for n in range(5)
        ]
    assert counts == [1, 1, 1, 1, 1]


async def test_only_serialized_items_found_by_shoppers_are_counted(client: Client) -> None:
    lot = await lookup(client, LOT_DL, "198.51.100.1")
    assert "scans" not in lot  # every buyer of the lot looks it up
    missing = await client.get(
        "/01/09421234123456/21/NOSUCH",
        headers={"Accept": "application/json", "X-Forwarded-For": "198.51.100.1"},
    )
    assert missing.status == 404
    async with client.app[LEDGER].pool.acquire() as conn:
        _, token = await tokens.add_token(conn, "Inspector Li", "inspector")
    official = await lookup(client, CAN_DL, "198.51.100.9", Authorization=f"Bearer {token}")
    assert "scans" not in official  # an inspector's look-up is no sign of a copied code
    shopper = await lookup(client, CAN_DL, "198.51.100.1")
    assert shopper["scans"]["count"] == 1
    await client.app[LEDGER].scans.flush()  # type: ignore[union-attr]
    assert await stored(client, "01/09421234123456/21/NOSUCH") is None
    assert await stored(client, "01/09421234123456/10/LOTA") is None


async def test_the_page_says_how_often_the_code_was_looked_up_and_warns_when_often(
    client: Client,
) -> None:
    quiet = await page(client, CAN_DL, "198.51.100.1")
    assert "此码已被查询 1 次，首次查询于 " in quiet
    assert "谨防假冒" not in quiet
    for n in range(2, 4):
        shown = await page(client, CAN_DL, f"198.51.100.{n}", lang="en")
    assert "This code has been looked up 3 times, first on " in shown
    assert 'class="banner warn" role="alert" aria-labelledby="scans"' in shown
    assert "Check that this product is genuine" in shown
    # The warning comes before the product card.
    assert shown.index('id="scans"') < shown.index('id="product"')


async def test_inspectors_list_the_most_looked_up_serials_of_a_lot(client: Client) -> None:
    for n in range(3):
        await lookup(client, CAN_DL, f"198.51.100.{n}")
    await lookup(client, BLEND_DL, "198.51.100.1")
    await client.app[LEDGER].scans.flush()  # type: ignore[union-attr]
    url = "/v1/scans" + LOT_DL
    assert (await client.get(url)).status == 401
    async with client.app[LEDGER].pool.acquire() as conn:
        _, token = await tokens.add_token(conn, "Inspector Li", "inspector")
        _, other = await tokens.add_token(conn, "Dairy system", "enterprise", enterprise_id=1)
    assert (await client.get(url, headers={"Authorization": f"Bearer {other}"})).status == 403
    auth = {"Authorization": f"Bearer {token}"}
    response = await client.get(url, headers=auth)
    assert response.status == 200
    listed = await response.json()
    assert listed["key"] == "01/09421234123456/10/LOTA"
    assert [(s["key"], s["count"]) for s in listed["serials"]] == [
        ("01/09421234123456/21/CAN1", 3)
    ]  # the blend's serial was not made in lot A
    by_gtin = await (await client.get("/v1/scans/01/06901234999990", headers=auth)).json()
    assert [(s["key"], s["count"]) for s in by_gtin["serials"]] == [
        ("01/06901234999990/21/MIX1", 1)
    ]
    bad = await client.get("/v1/scans" + LOT_DL + "?limit=x", headers=auth)
    assert bad.status == 400


def test_a_sold_or_destroyed_items_count_is_a_warning_from_the_first_look_up() -> None:
    """A buyer elsewhere holding a sold item's code holds a copy: say so at once."""
    now = datetime.now(UTC)
    once = Tally(1, now, now)
    history = blended_recalled_import()
    quiet = render_history(history, "en", self_url=SELF_URL, json_url=JSON_URL, scans=once)
    assert "This code has been looked up 1 time, first on " in quiet
    assert 'id="scans"' not in quiet
    history["events"].append(
        _event(50, bizStep="retail_selling", disposition="retail_sold",
               eventTime="2026-09-25T04:00:00Z", eventTimeZoneOffset="+08:00",
               who={"name": "联华超市 徐汇店", "role": "enterprise"})
    )  # fmt: skip
    sold = render_history(history, "zh", self_url=SELF_URL, json_url=JSON_URL, scans=once)
    assert sold.index('id="scans"') < sold.index('id="product"')
    assert "记录显示本产品已于 2026年9月25日 由 联华超市 徐汇店 售出。" in sold
    history["events"].pop()
    history["status"]["destroyed"] = True
    gone = render_history(history, "en", self_url=SELF_URL, json_url=JSON_URL, scans=once)
    assert "recorded as destroyed: it should not be in anyone" in gone
