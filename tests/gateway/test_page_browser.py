"""The shopper's page in a real browser: headless Chromium at phone width loads the demo's
recalled can from a real server, the page's script checks its proofs, and what the
shopper reads is checked as text (screenshots are kept for people, not compared).

Needs Chromium (scripts/dev.py test installs it) and, for the accessibility check,
axe-core from npm (tests/js); each test skips saying what is missing.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.keys import CAPTURE, LEDGER
from gateway.pages.words import words
from tests.browser import CHROMIUM, PHONE_WIDTH, Browser, Page
from tests.conftest import ROOT, settled
from tests.log.test_witness import RunningWitness, witnessed, witnesses  # noqa: F401 - fixture
from tests.lookup import test_history
from traceledger.demo import scenario
from traceledger.settings import Settings

Client = TestClient[web.Request, web.Application]
CAN = "/01/09421023100156/10/CPA117/21/A1003"
AXE = ROOT / "tests" / "js" / "node_modules" / "axe-core" / "axe.min.js"
ORIGIN = "test.traceledger.localhost/log"  # the settings fixture's log

pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium (scripts/dev.py test)")


@pytest.fixture
async def demo(client: Client) -> str:
    """The demo story, loaded and provable, on a real HTTP server; its base URL."""
    ledger = client.app[LEDGER]
    await scenario.load(scenario.build(datetime.now(UTC)), ledger.pool, client.app[CAPTURE])
    await settled(ledger)
    return str(client.make_url("")).rstrip("/")


@pytest.fixture
async def browser() -> AsyncIterator[Browser]:
    async with Browser.launch() as launched:
        yield launched


async def proof_state(page: Page) -> str:
    """#proof-status's final state (it starts as "checking")."""
    state: str = await page.wait_for(
        "(s => s && s.dataset.state !== 'checking' && s.dataset.state)"
        "(document.getElementById('proof-status'))"
    )
    return state


async def answer(base: str, path: str) -> dict[str, Any]:
    async with aiohttp.ClientSession() as http, http.get(f"{base}{path}?format=json") as got:
        found: dict[str, Any] = await got.json()
    return found


def png_size(data: bytes) -> tuple[int, int]:
    assert data.startswith(b"\x89PNG\r\n\x1a\n")
    return int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")


@pytest.mark.parametrize(
    ("lang", "verified", "recall", "produced", "looked_up", "sold"),
    [
        ("zh", "已核验：{n} 条记录，", "本产品已被召回", "生产时间",
         "此码已被查询 1 次，首次查询于", "由 静安鲜选超市 售出"),
        ("en", "Verified: {n} records, checkpoint of ", "This product has been recalled",
         "Produced", "This code has been looked up 1 time, first on",
         "This item is recorded as sold by Jing'an Fresh Market"),
    ],
)  # fmt: skip
async def test_the_demo_page_proves_itself_at_phone_width(
    demo: str,
    browser: Browser,
    tmp_path: Path,
    lang: str,
    verified: str,
    recall: str,
    produced: str,
    looked_up: str,
    sold: str,
) -> None:
    page = await browser.page()
    await page.goto(f"{demo}{CAN}?lang={lang}")
    assert await proof_state(page) == "verified"
    shown = await page.text()
    events = (await answer(demo, CAN))["events"]
    status = await page.evaluate("document.getElementById('proof-status').textContent")
    assert status.startswith(verified.format(n=len(events)))
    assert ORIGIN in status
    assert recall in shown
    assert looked_up in shown
    assert sold in shown  # the can was sold in Jing'an: a buyer elsewhere holds a copy
    assert "urn:epc:" not in shown
    # One production time: the origin card's is the commissioning event's, to the minute.
    when = await page.evaluate(
        "[...document.querySelectorAll('section[aria-labelledby=origin] dt')]"
        f".find(dt => dt.textContent === {json.dumps(produced)}).nextElementSibling.textContent"
    )
    assert shown.count(when) >= 2, when  # the origin card and the journey say the same
    width, _ = png_size(await page.screenshot(tmp_path / f"trace-page-{lang}.png"))
    assert width == PHONE_WIDTH


async def tampering_proxy(upstream: str) -> TestServer:
    """A real HTTP server between the browser and the ledger that flips one byte of one
    event in every trace answer it passes on (the page itself passes unchanged)."""

    async def forward(request: web.Request) -> web.Response:
        headers = {
            k: v for k, v in request.headers.items() if k.lower() in ("accept", "accept-language")
        }
        async with (
            aiohttp.ClientSession() as http,
            http.get(upstream + request.path_qs, headers=headers) as got,
        ):
            body = await got.read()
            kind = got.content_type
            passed = {
                k: v
                for k, v in got.headers.items()
                if k.lower() in ("content-security-policy", "cache-control")
            }
        if kind == "application/json" and "events" in (data := json.loads(body)):
            event = next(e for e in data["events"] if e["payload"] or e.get("disclosures"))
            if event.get("disclosures"):  # a version-2 leaf: alter a disclosed field's salt
                salt = event["disclosures"][0]
                salt[0] = base64.b64encode(bytes(16)).decode()
            else:
                payload = bytearray(base64.b64decode(event["payload"]))
                payload[len(payload) // 2] ^= 0x01
                event["payload"] = base64.b64encode(bytes(payload)).decode()
            body = json.dumps(data).encode()
        return web.Response(body=body, content_type=kind, headers=passed)

    app = web.Application()
    app.router.add_get("/{path:.*}", forward)
    server = TestServer(app)
    await server.start_server()
    return server


async def test_the_witnesses_cosignatures_are_checked_and_counted(
    settings: Settings,
    witnesses: list[RunningWitness],  # noqa: F811 - the fixture of the same name
    browser: Browser,
) -> None:
    async with TestClient(TestServer(create_app(witnessed(settings, witnesses, 2)))) as client:
        await test_history.tell_story(client)
        base = str(client.make_url("")).rstrip("/")
        for lang, says in (("en", " and 2 witnesses"), ("zh", "并经 2 个见证方联署")):
            page = await browser.page()
            await page.goto(f"{base}{test_history.CAN_DL}?lang={lang}")
            assert await proof_state(page) == "verified"
            status = await page.evaluate("({...document.getElementById('proof-status').dataset})")
            assert status["witnessKeys"].split() == [w.verifier.encode() for w in witnesses]
            assert status["quorum"] == "2"
            text = await page.evaluate("document.getElementById('proof-status').textContent")
            assert text.endswith(says)


@pytest.mark.parametrize(("lang", "failed"), [("zh", "无法核验："), ("en", "Could not verify: ")])
async def test_an_answer_altered_in_transit_fails_in_red(
    demo: str, browser: Browser, lang: str, failed: str
) -> None:
    proxy = await tampering_proxy(demo)
    try:
        page = await browser.page()
        await page.goto(f"{str(proxy.make_url('')).rstrip('/')}{CAN}?lang={lang}")
        assert await proof_state(page) == "failed"
        status = await page.evaluate("document.getElementById('proof-status').textContent")
        assert status.startswith(failed)
        assert "#" in status  # names the record that failed
        colour = await page.evaluate(
            "getComputedStyle(document.getElementById('proof-status')).color"
        )
        assert colour == "rgb(179, 38, 30)"  # --danger
    finally:
        await proxy.close()


async def test_without_javascript_the_page_still_reads_completely(
    demo: str, browser: Browser
) -> None:
    page = await browser.page(javascript=False)
    await page.goto(f"{demo}{CAN}?lang=en")
    shown = await page.text()
    for expected in (
        "Recalled",
        "Whole Milk Powder 900 g",
        "Journey",
        "Record #",
        "Sold in a shop",
        "Tamper-evident record",
        "Check it yourself",
    ):
        assert expected in shown
    assert "Checking the proofs" not in shown  # the status line waits for the script
    assert (
        await page.evaluate("document.getElementById('proof-status').dataset.state") == "checking"
    )


@pytest.mark.skipif(not AXE.exists(), reason="axe-core not installed (scripts/dev.py test)")
@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_axe_core_finds_no_accessibility_violations(
    demo: str, browser: Browser, lang: str, scheme: str
) -> None:
    page = await browser.page()
    # axe builds DOM nodes the page's Trusted Types policy would refuse.
    await page.send("Page.setBypassCSP", enabled=True)
    await page.send(
        "Emulation.setEmulatedMedia",
        features=[{"name": "prefers-color-scheme", "value": scheme}],
    )
    await page.goto(f"{demo}{CAN}?lang={lang}")
    await proof_state(page)
    await page.evaluate(AXE.read_text(encoding="utf-8"))
    result = await page.evaluate(
        "axe.run(document, {runOnly: {type: 'tag', values:"
        " ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'wcag22aa', 'best-practice']}})"
        ".then(r => r.violations.map(v => ({id: v.id, help: v.help,"
        " nodes: v.nodes.map(n => n.html.slice(0, 120))})))",
        promise=True,
    )
    assert result == []


BLEND_LINE = {
    "en": "Lot CPA117 was used to make Formulated Milk Powder for Adults 800 g, lot SR5502 "
    "(Shanghai Shenrun Dairy Products Co., Ltd., {day})",
    "zh": "批次 CPA117 被用于生产 成人调制乳粉 800克，批次 SR5502（上海申润乳品有限公司，{day}）",
}
# Names the demo's documents give in their master data, as each page should show them.
NAMED = {
    "en": (
        "Whole Milk Powder 900 g",
        "Canterbury Pastures spray-dryer plant",
        "Haiyue bonded warehouse, Yangshan bonded port area",
        "Shanghai Entry-Exit Inspection and Quarantine, Yangshan",
        "To: Jing'an Fresh Market (owner), Jing'an Fresh Market, West Nanjing Road",
    ),
    "zh": (
        "全脂奶粉 900克",
        "坎特伯雷牧场喷雾干燥工厂",
        "海悦洋山保税港区仓库",
        "上海出入境检验检疫局洋山办事处",
        "去往：静安鲜选超市 （所有方）、静安鲜选超市南京西路店",
    ),
}
SHANGHAI = "Asia/Shanghai"


async def shopper_in_shanghai(browser: Browser) -> Page:
    page = await browser.page()
    await page.send("Emulation.setTimezoneOverride", timezoneId=SHANGHAI)
    return page


def blend_day(events: list[dict[str, Any]], lang: str) -> str:
    """The local day of the blend (the TransformationEvent that used lot CPA117)."""
    blend = next(e for e in events if e["type"] == "TransformationEvent")
    return words(lang).day(blend["eventTime"], blend["eventTimeZoneOffset"])


@pytest.mark.parametrize("lang", ["zh", "en"])
async def test_the_page_says_what_happened_to_the_can_in_names_at_one_time(
    demo: str, browser: Browser, tmp_path: Path, lang: str
) -> None:
    """A shopper in Shanghai reads the recalled can at 390 px: the blend is the lot's use,
    not the can's production; one production time; names, never codes, for the demo's
    places, parties and products; their own time beside the New Zealand times."""
    page = await shopper_in_shanghai(browser)
    await page.goto(f"{demo}{CAN}?lang={lang}")
    assert await proof_state(page) == "verified"
    shown = await page.text()
    found = await answer(demo, CAN)
    events = found["events"]
    blend = next(e for e in events if e["type"] == "TransformationEvent")
    assert (blend["relation"], blend["role"]) == ("lot", "inputClass")
    assert BLEND_LINE[lang].format(day=blend_day(events, lang)) in shown
    # The blend's journey entry is not headed as a production of the can.
    steps = await page.evaluate(
        "[...document.querySelectorAll('li.ev .step')].map(s => s.textContent)"
    )
    produced_label = "生产赋码" if lang == "zh" else "Produced and labelled"
    assert steps.count(produced_label) == 1
    # Exactly one production time: origin card and journey agree, the product card's date
    # is its date, and JSON carries the event's own offset.
    made = next(e for e in events if e["bizStep"] == "commissioning" and e["type"] == "ObjectEvent")
    assert found["origin"]["commissionedAt"].endswith(made["eventTimeZoneOffset"])
    times = await page.evaluate(
        "[...document.querySelectorAll('section[aria-labelledby=origin] time, li.ev time')]"
        ".filter(t => Date.parse(t.dateTime) === Date.parse(" + json.dumps(made["eventTime"]) + "))"
        ".map(t => t.textContent)"
    )
    assert len(times) == 2
    assert len(set(times)) == 1, times
    assert words(lang).date(found["product"]["productionDate"]) in times[0]
    # The New Zealand time comes with the shopper's own; a Shanghai time needs none.
    notes = await page.evaluate(
        "[...document.querySelectorAll('li.ev')].map(li => [li.querySelector('time')"
        "?.dataset.offset, !!li.querySelector('.yours')])"
    )
    assert {offset for offset, mine in notes if mine} == {"780"}  # UTC+13:00 only
    assert all(mine for offset, mine in notes if offset == "780")
    # Names from master data, and no raw codes on the demo's page.
    for name in NAMED[lang]:
        assert name in shown, name
    assert "urn:epc:" not in shown
    assert "GLN " not in shown
    quiet = await page.evaluate("[...document.querySelectorAll('span.id')].map(s => s.textContent)")
    assert all(q.startswith(("SSCC", "GTIN")) for q in quiet), quiet  # containers only
    # TRACELEDGER_SCREENSHOTS=docs keeps them (the README's picture of the zh page).
    shots = Path(os.environ.get("TRACELEDGER_SCREENSHOTS") or tmp_path)
    width, _ = png_size(await page.screenshot(shots / f"trace-page-{lang}.png"))
    assert width == PHONE_WIDTH


@pytest.mark.parametrize("path", ["/01/09421023100156/10/CPA117", "/01/06942817300581/10/SR5502"])
async def test_no_demo_page_shows_a_raw_epc_urn(demo: str, browser: Browser, path: str) -> None:
    for lang in ("zh", "en"):
        page = await browser.page()
        await page.goto(f"{demo}{path}?lang={lang}")
        shown = await page.text()
        assert "urn:epc:" not in shown
        assert "GLN " not in shown
