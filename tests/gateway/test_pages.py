"""The consumer trace page: content in both languages, escaping, links, and how it renders."""

from __future__ import annotations

import base64
import hashlib
import html
import re
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from gateway.pages import (
    CONTENT_SECURITY_POLICY,
    CSS,
    SCRIPT_PATH,
    pick_language,
    render_history,
    render_problem_page,
)
from gateway.pages.catalogs import languages
from gateway.pages.vocabulary import BIZ_STEPS, DISPOSITIONS
from gateway.pages.words import words
from traceledger.standards import cbv

KEY = "01/09506000134352/10/LOT1/21/ABC"
SELF_URL = f"https://trace.example.org/{KEY}?linkType=gs1:pip&lang=en"
JSON_URL = f"https://trace.example.org/{KEY}?format=json"
VERIFIER_KEY = "trace.example.org/log+8a2f1c3d+AW1hZ2ljLXB1YmxpYy1rZXktYnl0ZXMtZm9yLXRlc3RzIQ=="
LEAF = base64.b64encode(b"leaf").decode()


def _event(index: int, **fields: Any) -> dict[str, Any]:
    event: dict[str, Any] = {
        "index": index,
        "eventID": f"ni:///sha-256;{index:064x}?ver=CBV2.0",
        "type": "ObjectEvent",
        "action": "OBSERVE",
        "bizStep": None,
        "disposition": None,
        "eventTime": "2026-09-01T00:00:00Z",
        "eventTimeZoneOffset": "+12:00",
        "where": {"readPoint": None, "bizLocation": None},
        "who": None,
        "relation": "item",
        "via": None,
        "sources": [],
        "destinations": [],
        "certifications": [],
        "confidential": False,
        "leaf": LEAF,
        "payload": None,
        "inclusionProof": [LEAF, LEAF],
    }
    event.update(fields)
    return event


def blended_recalled_import() -> dict[str, Any]:
    """Manuka honey blended in New Zealand from two lots, imported through Shanghai, recalled."""
    producer = {"name": "Kaimai Apiaries Ltd", "role": "enterprise"}
    importer = {"name": "上海海优进口食品有限公司", "role": "enterprise"}
    customs = {"name": "上海海关", "role": "authority"}
    lot_a = "01/09506000134352/10/HNY-A"
    lot_b = "01/09506000134369/10/HNY-B"
    sscc = "00/395060001000000017"
    events = [
        _event(3, action="ADD", bizStep="commissioning", disposition="active",
               eventTime="2026-08-20T21:00:00Z", relation="input", via=lot_a, who=producer,
               where={"readPoint": None, "bizLocation": "414/9506000000017"}),
        _event(4, action="ADD", bizStep="commissioning", disposition="active",
               eventTime="2026-08-22T21:00:00Z", relation="input", via=lot_b,
               who={"name": "Waikato Bee Co", "role": "enterprise"},
               where={"readPoint": None, "bizLocation": "414/9506000000024"}),
        _event(7, type="TransformationEvent", action=None, bizStep="commissioning",
               disposition="active", eventTime="2026-08-31T22:00:00Z", relation="output",
               who=producer, where={"readPoint": None, "bizLocation": "414/9506000000017"},
               certifications=[
                   {"standard": "BioGro Organic", "agency": "BioGro New Zealand",
                    "value": "certified", "identification": "BG-2026-1187"},
                   {"standard": "UMF 10+ grading", "agency": "UMF Honey Association",
                    "value": "UMF 10+"},
               ]),
        _event(9, type="AggregationEvent", action="ADD", bizStep="packing",
               disposition="container_closed", eventTime="2026-09-02T03:00:00Z",
               relation="container", via=sscc, who=producer),
        _event(12, type="ObjectEvent", bizStep="shipping", disposition="in_transit",
               eventTime="2026-09-03T01:00:00Z", relation="container", via=sscc, who=producer,
               where={"readPoint": "414/9506000000031", "bizLocation": None},
               sources=[{"type": "owning_party", "id": "417/9506000000017"}],
               destinations=[{"type": "owning_party", "id": "417/6901234000004"}]),
        _event(20, bizStep="arriving", disposition="in_progress",
               eventTime="2026-09-18T06:30:00Z", eventTimeZoneOffset="+08:00",
               relation="container", via=sscc, who=importer,
               where={"readPoint": None, "bizLocation": "414/6901234000011"}),
        _event(21, bizStep="inspecting", disposition="conformant",
               eventTime="2026-09-19T02:00:00Z", eventTimeZoneOffset="+08:00", relation="lot",
               who=customs, where={"readPoint": None, "bizLocation": "414/6901234000011"},
               certifications=[{"standard": "入境货物检验检疫证明", "agency": "上海海关",
                                "value": "310000126000881"}]),
        _event(25, type="AggregationEvent", action="DELETE", bizStep="unpacking",
               eventTime="2026-09-21T01:00:00Z", eventTimeZoneOffset="+08:00",
               relation="container", via=sscc, who=importer, confidential=True),
        _event(30, bizStep="receiving", disposition="sellable_not_accessible",
               eventTime="2026-09-23T05:15:00Z", eventTimeZoneOffset="+08:00",
               who={"name": "联华超市 徐汇店", "role": "enterprise"},
               where={"readPoint": None, "bizLocation": "414/6901234000028"}),
        _event(41, bizStep="holding", disposition="recalled",
               eventTime="2026-10-02T02:30:00Z", eventTimeZoneOffset="+08:00", relation="lot",
               who=customs),
    ]  # fmt: skip
    return {
        "identifier": {
            "input": "/" + KEY,
            "key": KEY,
            "digitalLink": "https://id.gs1.org/" + KEY,
            "level": "instance",
            "gtin": "09506000134352",
            "lot": "LOT1",
            "serial": "ABC",
        },
        "product": {
            "name": "麦卢卡蜂蜜 UMF 10+ 250g",
            "gtin": "09506000134352",
            "lot": "LOT1",
            "productionDate": "2026-09-01",
            "expiryDate": "2029-09-01",
            "originCountry": "NZ",
            "producer": {"name": "Kaimai Apiaries Ltd", "enterpriseId": 7},
            "facts": {
                "cbvmda:countryOfExport": "NZ",
                "cbvmda:netWeight": {"value": 250, "uom": "GRM"},
                "cbvmda:bestBeforeDate": "2029-09-01",
            },
        },
        "origin": {
            "producer": "Kaimai Apiaries Ltd",
            "country": "NZ",
            "place": "414/9506000000017",
            "commissionedAt": "2026-08-31T22:00:00Z",
            "inputs": [
                {
                    "key": lot_a,
                    "product": "Manuka honey, bulk",
                    "producer": "Kaimai Apiaries Ltd",
                    "country": "NZ",
                    "inputs": [],
                },
                {
                    "key": lot_b,
                    "product": "Multifloral honey, bulk",
                    "producer": "Waikato Bee Co",
                    "country": "NZ",
                    "inputs": [
                        {
                            "key": "01/09506000134376/10/HIVE-77",
                            "product": None,
                            "producer": None,
                            "country": "NZ",
                            "inputs": [],
                        }
                    ],
                },
            ],
        },
        "status": {
            "recalled": True,
            "recalls": [
                {
                    "index": 41,
                    "eventTime": "2026-10-02T02:30:00Z",
                    "by": "上海海关",
                    "reason": "Tutin above the permitted limit",
                }
            ],
            "inspections": [
                {
                    "index": 21,
                    "eventTime": "2026-09-19T02:00:00Z",
                    "outcome": "conformant",
                    "by": "上海海关",
                    "where": "414/6901234000011",
                }
            ],
            "expired": False,
            "expiryDate": "2029-09-01",
            "destroyed": False,
            "returned": False,
        },
        "events": events,
        "pending": 2,
        "treeSize": 42,
        "checkpoint": f"trace.example.org/log\n42\n{LEAF}\n\n— trace.example.org/log AAAA\n",
        "verifierKey": VERIFIER_KEY,
    }


def no_events() -> dict[str, Any]:
    return {
        "identifier": {
            "input": "/01/09506000134369",
            "key": "01/09506000134369",
            "digitalLink": "https://id.gs1.org/01/09506000134369",
            "level": "class",
            "gtin": "09506000134369",
            "lot": None,
            "serial": None,
        },
        "product": {
            "name": None,
            "gtin": "09506000134369",
            "lot": None,
            "productionDate": None,
            "expiryDate": None,
            "originCountry": None,
            "producer": None,
            "facts": {},
        },
        "origin": {
            "producer": None,
            "country": None,
            "place": None,
            "commissionedAt": None,
            "inputs": [],
        },
        "status": {
            "recalled": False,
            "recalls": [],
            "inspections": [],
            "expired": False,
            "expiryDate": None,
            "destroyed": False,
            "returned": False,
        },
        "events": [],
        "pending": 0,
        "treeSize": 5,
        "checkpoint": "trace.example.org/log\n5\nAAAA\n\n— trace.example.org/log AAAA\n",
        "verifierKey": VERIFIER_KEY,
    }


def render(history: dict[str, Any], lang: str, **kwargs: Any) -> str:
    options: dict[str, Any] = {"self_url": SELF_URL, "json_url": JSON_URL} | kwargs
    return render_history(history, lang, **options)


class _Tags(HTMLParser):
    """Every start tag with its attributes, to check what a browser would load or run."""

    def __init__(self) -> None:
        super().__init__()
        self.tags: list[tuple[str, dict[str, str | None]]] = []
        self.style_text: list[str] = []
        self.script_text: list[str] = []
        self._in: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.tags.append((tag, dict(attrs)))
        self._in = tag

    def handle_endtag(self, tag: str) -> None:
        self._in = None

    def handle_data(self, data: str) -> None:
        if self._in == "style":
            self.style_text.append(data)
        if self._in == "script":
            self.script_text.append(data)


def parse(page: str) -> _Tags:
    parser = _Tags()
    parser.feed(page)
    parser.close()
    return parser


# --- content --------------------------------------------------------------------------------


def test_zh_page_warns_of_the_recall_first_and_tells_the_whole_story() -> None:
    page = render(blended_recalled_import(), "zh")
    assert '<html lang="zh-CN">' in page
    # The recall banner comes before anything about the product.
    assert page.index('class="banner recall"') < page.index('id="product"')
    assert "已召回" in page
    assert "本产品已被召回" in page
    assert "2026年10月2日 由 上海海关 发起召回" in page
    assert "Tutin above the permitted limit" in page
    # product facts, with the ISO country named in Chinese
    assert "麦卢卡蜂蜜 UMF 10+ 250g" in page
    assert "进口消费品" in page
    assert "新西兰" in page
    assert "2026年9月1日" in page
    assert "2029年9月1日" in page
    assert "Kaimai Apiaries Ltd" in page
    assert "09506000134352" in page
    assert "LOT1" in page
    # origin with the ingredient-lot tree, nested
    assert "产地与来源" in page
    assert "GLN 9506000000017" in page
    assert "Multifloral honey, bulk" in page
    assert re.search(r'class="tree">.*<ul><li><span class="node">GTIN 09506000134376', page)
    # the journey, with CBV business steps in Chinese
    for label in ("生产赋码", "包装", "发货", "到港/到达", "检验", "拆包", "收货", "扣留"):
        assert f'<span class="step">{label}</span>' in page
    assert '<span class="badge bad">已召回</span>' in page
    assert "经由原料批次 GTIN 09506000134352 · 批次 HNY-A" in page
    assert "经由包装箱/托盘 SSCC 395060001000000017" in page
    assert "本批次的记录" in page
    assert '<span class="tag">监管部门</span>' in page
    # inspection outcome as a badge
    assert '<span class="badge good">合格</span>' in page
    # certificates from the events
    assert "证书与认证" in page
    assert "BioGro Organic" in page
    assert "BG-2026-1187" in page
    assert "入境货物检验检疫证明" in page
    # verification: the browser checks the proofs (test_page_browser.py, test_proof_script.py)
    assert 'id="proof-status"' in page
    assert "可对照平台签名的检查点（日志大小 42）离线核验" in page
    assert "另有 2 条最新记录尚未纳入检查点" in page
    command = f"traceledger verify-history '{JSON_URL}' --key {VERIFIER_KEY}"
    assert html.escape(command) in page
    assert 'href="/checkpoint"' in page


def test_en_page_names_the_same_facts_in_english() -> None:
    page = render(blended_recalled_import(), "en")
    assert '<html lang="en">' in page
    assert page.index('class="banner recall"') < page.index('id="product"')
    assert "This product has been recalled" in page
    assert "Recalled on 2 Oct 2026 by 上海海关" in page
    assert "Imported product" in page
    assert "New Zealand" in page
    assert "1 Sep 2026" in page
    for label in ("Produced and labelled", "Packed", "Shipped", "Arrived", "Inspected", "Held"):
        assert f'<span class="step">{label}</span>' in page
    assert "Via ingredient lot GTIN 09506000134352 · Lot HNY-A" in page
    assert "Via container SSCC 395060001000000017" in page
    assert '<span class="badge good">Conformant</span>' in page
    assert "signed checkpoint of log size 42" in page
    assert "Some details are visible to inspectors only" in page
    assert "Certificates" in page


def test_event_times_are_shown_in_the_events_own_time_zone() -> None:
    page = render(blended_recalled_import(), "en")
    # 02:30Z recorded in Shanghai (+08:00) is 10:30 local; the NZ shipping at 01:00Z is 13:00.
    assert "2 Oct 2026, 10:30 (UTC+08:00)" in page
    assert "3 Sep 2026, 13:00 (UTC+12:00)" in page
    # With its offset in minutes, so the script can add the shopper's own time.
    assert '<time datetime="2026-10-02T02:30:00Z" data-offset="480">' in page


def test_ilmd_facts_are_labelled_and_countries_named() -> None:
    page = render(blended_recalled_import(), "zh")
    assert "<dt>出口国</dt><dd>新西兰</dd>" in page
    assert "<dt>最佳食用期</dt><dd>2029年9月1日</dd>" in page
    assert "净重" in page


def test_confidential_note_is_for_the_public_only() -> None:
    public = render(blended_recalled_import(), "zh")
    inspector = render(blended_recalled_import(), "zh", inspector=True)
    assert public.count("部分信息仅对检验人员可见") == 1
    assert "部分信息仅对检验人员可见" not in inspector
    assert "检验人员视图" in inspector


@pytest.mark.parametrize(
    ("flag", "zh", "en"),
    [("destroyed", "已销毁", "Destroyed"), ("returned", "已退运", "Returned")],
)
def test_destroyed_and_returned_get_their_own_banner(flag: str, zh: str, en: str) -> None:
    history = blended_recalled_import()
    history["status"] |= {"recalled": False, "recalls": [], flag: True}
    for lang, title in (("zh", zh), ("en", en)):
        page = render(history, lang)
        assert 'class="banner recall"' not in page
        assert f"<h2>{title}</h2>" in page


def test_expired_banner_shows_the_expiry_date() -> None:
    history = blended_recalled_import()
    history["status"] |= {"recalled": False, "recalls": [], "expired": True}
    assert "到期日:2029年9月1日" in render(history, "zh")
    assert "Expiry date: 1 Sep 2029" in render(history, "en")


def test_clean_history_says_no_recall_on_record() -> None:
    history = blended_recalled_import()
    history["status"] |= {"recalled": False, "recalls": []}
    history["events"] = history["events"][:-1]
    page = render(history, "zh")
    assert "未发现召回或处置记录" in page
    assert 'role="alert"' not in page


def test_product_with_no_events_renders_and_claims_nothing() -> None:
    for lang in ("zh", "en"):
        page = render(no_events(), lang)
        assert text_in(page, lang, "No journey records yet.")
        assert text_in(page, lang, "Unnamed product")
        assert text_in(page, lang, "There are no records to verify yet.")
        assert not text_in(page, lang, "No recall or safety action on record")
        assert "09506000134369" in page
        assert 'class="timeline"' not in page
        assert 'id="proof-status"' not in page  # nothing to check
        assert 'href="/checkpoint"' in page


def text_in(page: str, lang: str, message: str) -> bool:
    return words(lang).gettext(message) in page


def test_malformed_history_does_not_crash_the_page() -> None:
    history: dict[str, Any] = {
        "identifier": "oops",
        "product": {"name": 5, "facts": [1, 2]},
        "status": {"recalled": "yes", "recalls": "x", "inspections": [None, 3]},
        "events": [None, {"index": "1", "eventTime": "not a time", "where": []}],
        "treeSize": "big",
    }
    page = render(history, "en")
    assert "not a time" in page
    assert 'class="banner recall"' not in page


# --- safety ---------------------------------------------------------------------------------

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>"\'&'


def hostile_history() -> dict[str, Any]:
    history = blended_recalled_import()
    history["identifier"]["digitalLink"] = "javascript:alert(1)//" + HOSTILE
    history["product"]["name"] = HOSTILE
    history["product"]["originCountry"] = HOSTILE
    history["product"]["facts"] = {HOSTILE: HOSTILE, "cbvmda:lotNumber": ["<b>", {"k": HOSTILE}]}
    history["origin"]["inputs"][0]["product"] = HOSTILE
    history["status"]["recalls"][0]["reason"] = HOSTILE
    history["status"]["recalls"][0]["by"] = HOSTILE
    history["status"]["inspections"][0]["where"] = HOSTILE
    event = history["events"][4]
    event["bizStep"] = HOSTILE
    event["disposition"] = HOSTILE
    event["eventTime"] = HOSTILE
    event["eventTimeZoneOffset"] = HOSTILE
    event["where"] = {"readPoint": HOSTILE, "bizLocation": HOSTILE}
    event["who"] = {"name": HOSTILE, "role": "authority"}
    event["via"] = "https://evil.example/" + HOSTILE
    event["sources"] = [{"type": HOSTILE, "id": "https://evil.example/x"}]
    event["certifications"] = [{"standard": HOSTILE, "agency": HOSTILE, HOSTILE: HOSTILE}]
    history["checkpoint"] = HOSTILE
    history["verifierKey"] = HOSTILE
    return history


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_hostile_values_are_escaped_everywhere(lang: str) -> None:
    page = render(hostile_history(), lang, inspector=lang == "en")
    assert page.lower().count("<script") == 1  # the page's own proof script, below
    assert "<img" not in page.lower()
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    parsed = parse(page)
    allowed = {
        "html", "head", "meta", "title", "style", "link", "body", "header", "div", "strong",
        "span", "nav", "a", "main", "section", "h1", "h2", "h3", "p", "ul", "ol", "li", "dl",
        "dt", "dd", "details", "summary", "code", "pre", "time", "b", "br", "script",
    }  # fmt: skip
    assert only_our_script(parsed)
    for tag, attrs in parsed.tags:
        assert tag in allowed, tag
        for name in attrs:
            assert not name.startswith("on"), (tag, name)
            assert name != "style", tag
    # The verify command stays one shell word per argument.
    assert "--key &#x27;&lt;script&gt;" in page


@pytest.mark.parametrize("lang", ["zh", "en"])
def test_page_loads_nothing_from_other_hosts(lang: str) -> None:
    parsed = parse(render(hostile_history(), lang))
    targets = [
        value
        for _tag, attrs in parsed.tags
        for name, value in attrs.items()
        if name in ("href", "src", "action", "srcset", "poster", "data") and value is not None
    ]
    assert targets
    for target in targets:
        parts = urlsplit(target)
        if target == JSON_URL:
            continue
        assert not parts.scheme, target
        assert not parts.netloc, target
        assert not target.startswith("//"), target
    # no other resources: styling is the one inline element, the one script is ours
    assert only_our_script(parsed)
    assert not any(tag in ("img", "iframe", "object") for tag, _ in parsed.tags)
    assert not [a for tag, a in parsed.tags if tag == "link" and a.get("rel") == "stylesheet"]
    assert "url(" not in CSS
    assert "@import" not in CSS


def only_our_script(parsed: _Tags) -> bool:
    """The page's one script: the proof checker, from this site, as a module, pinned by
    its hash, with no inline code."""
    scripts = [attrs for tag, attrs in parsed.tags if tag == "script"]
    return (
        scripts
        == [{"type": "module", "src": SCRIPT_PATH, "integrity": scripts[0].get("integrity")}]
        and not parsed.script_text
        and str(scripts[0].get("integrity")).startswith("sha384-")
    )


def test_javascript_json_url_becomes_inert() -> None:
    page = render(blended_recalled_import(), "zh", json_url="javascript:alert(1)")
    hrefs = [a.get("href") for _t, a in parse(page).tags if "href" in a]
    assert "javascript:alert(1)" not in hrefs
    assert "#" in hrefs


def test_inline_style_matches_the_content_security_policy_hash() -> None:
    parsed = parse(render(blended_recalled_import(), "zh"))
    (style,) = parsed.style_text
    digest = base64.b64encode(hashlib.sha256(style.encode()).digest()).decode()
    assert f"'sha256-{digest}'" in CONTENT_SECURITY_POLICY
    assert "default-src 'none'" in CONTENT_SECURITY_POLICY
    # Scripts only from this site (the proof checker), never inline.
    assert "script-src 'self';" in CONTENT_SECURITY_POLICY
    assert "unsafe" not in CONTENT_SECURITY_POLICY


# --- language --------------------------------------------------------------------------------


def test_language_switch_keeps_other_query_parameters_and_stays_on_site() -> None:
    page = render(blended_recalled_import(), "en")
    links = {
        a.get("hreflang"): a for tag, a in parse(page).tags if tag == "a" and a.get("hreflang")
    }
    assert set(links) == {"zh-CN", "en"}
    for hreflang, lang in (("zh-CN", "zh"), ("en", "en")):
        href = links[hreflang]["href"]
        assert href is not None
        parts = urlsplit(href)
        assert not parts.scheme
        assert not parts.netloc
        assert parts.path == "/" + KEY
        assert parse_qs(parts.query) == {"linkType": ["gs1:pip"], "lang": [lang]}
    assert links["en"].get("aria-current") == "true"
    assert "aria-current" not in links["zh-CN"]


def test_language_switch_never_points_to_another_host() -> None:
    page = render(blended_recalled_import(), "zh", self_url="//evil.example/x?a=1")
    hrefs = [a["href"] for tag, a in parse(page).tags if tag == "a" and a.get("hreflang")]
    assert hrefs == ["/x?a=1&lang=zh", "/x?a=1&lang=en"]


@pytest.mark.parametrize(
    ("header", "query", "expected"),
    [
        (None, None, "en"),
        ("", None, "en"),
        ("zh-CN,zh;q=0.9,en;q=0.8", None, "zh"),
        ("zh-Hans-CN", None, "zh"),
        ("zh-TW", None, "zh"),
        ("en-US,en;q=0.9", None, "en"),
        ("en-US,zh-CN;q=0.9", None, "en"),
        ("fr-FR,zh;q=0.8,en;q=0.5", None, "zh"),
        ("fr-FR,de;q=0.8", None, "en"),
        ("en;q=0.4, zh-CN;q=0.6", None, "zh"),
        ("zh;q=0, en", None, "en"),
        ("zh;q=bogus, en;q=0.1", None, "en"),
        ("zh-CN", "en", "en"),
        ("en-US", "zh", "zh"),
        ("en-US", "zh-CN", "zh"),
        ("zh-CN", "fr", "zh"),
        (None, "", "en"),
    ],
)
def test_pick_language(header: str | None, query: str | None, expected: str) -> None:
    assert pick_language(header, query) == expected


def test_every_cbv_step_and_disposition_has_a_label_in_every_language() -> None:
    assert set(cbv.BIZ_STEPS) <= set(BIZ_STEPS)
    assert set(cbv.DISPOSITIONS) <= set(DISPOSITIONS)
    assert set(languages()) >= {"zh", "en"}
    for lang in languages():
        shown = words(lang)
        labels = {step: shown.step(step, None, None) for step in cbv.BIZ_STEPS} | {
            value: shown.disposition(value) for value in cbv.DISPOSITIONS
        }
        assert all(labels.values())
        if lang != "en":  # English is the source language: its labels are the msgids
            source = {k: msgid for k, (_context, msgid) in {**BIZ_STEPS, **DISPOSITIONS}.items()}
            assert not [k for k, label in labels.items() if label == source[k]], lang


def test_unknown_step_and_country_are_shown_as_given() -> None:
    history = blended_recalled_import()
    history["events"][0]["bizStep"] = "https://example.org/steps/smoking"
    history["product"]["originCountry"] = "XK"
    page = render(history, "zh")
    assert '<span class="step">https://example.org/steps/smoking</span>' in page
    assert "<dd>XK</dd>" in page


def test_problem_page_is_friendly_and_escaped() -> None:
    page = render_problem_page(404, "未找到该产品", "没有 <b>01/123</b> 的追溯记录", "zh")
    assert '<html lang="zh-CN">' in page
    assert "404" in page
    assert "未找到该产品" in page
    assert "&lt;b&gt;01/123&lt;/b&gt;" in page
    assert 'href="?lang=en"' in page
    english = render_problem_page(400, "Bad QR code", "check digit", "en-GB")
    assert '<html lang="en">' in english
    assert "Check that the QR code" in english


# --- how it looks -----------------------------------------------------------------------------

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def screenshot(page: str, name: str, tmp_path: Path, height: int = 1600) -> Path:
    assert CHROMIUM is not None
    source = tmp_path / f"{name}.html"
    source.write_text(page, encoding="utf-8")
    image = tmp_path / f"{name}.png"
    subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--hide-scrollbars",
            f"--user-data-dir={tmp_path / 'profile'}",
            f"--screenshot={image}",
            f"--window-size=390,{height}",
            source.as_uri(),
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    return image


@pytest.mark.skipif(CHROMIUM is None, reason="no chromium on this machine")
def test_pages_render_in_a_headless_browser_at_phone_width(tmp_path: Path) -> None:
    pages = {
        "zh": render(blended_recalled_import(), "zh"),
        "en": render(blended_recalled_import(), "en"),
        "empty": render(no_events(), "zh"),
        "problem": render_problem_page(404, "Not found", "No such product", "en"),
    }
    for name, page in pages.items():
        image = screenshot(page, name, tmp_path)
        data = image.read_bytes()
        assert data.startswith(b"\x89PNG\r\n\x1a\n")
        width, height = int.from_bytes(data[16:20], "big"), int.from_bytes(data[20:24], "big")
        assert (width, height) == (390, 1600)
        assert len(data) > 20_000, name  # a blank page compresses to a few KB
