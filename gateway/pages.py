"""The consumer's one-stop trace page (一站式追溯查询): server-rendered HTML.

A shopper's phone camera opens this page from the QR code on a package, so it must load
fast on a poor connection and be readable at once: one column, system fonts, no JavaScript,
no web fonts, no images and nothing from another host. The only style is one inline
``<style>`` element whose hash is in `CONTENT_SECURITY_POLICY`, so the page runs under a
policy that forbids everything else. Every value in the history came from an enterprise and
is untrusted: all of it goes through `_h` (HTML escaping) and no value ever becomes a link.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
import shlex
from collections.abc import Iterable, Mapping
from typing import Any, Final
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from gateway.i18n import (
    Lang,
    biz_step,
    country,
    disposition,
    fact_label,
    format_date,
    format_day,
    format_time,
    text,
)

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "CSS",
    "pick_language",
    "render_history",
    "render_problem_page",
]

CSS: Final = r"""
:root{--bg:#f3f4f6;--card:#fff;--ink:#1b1f24;--muted:#5b636e;--line:#e1e4e8;
--accent:#0a5cc2;--danger:#b3261e;--danger-bg:#fdecea;--warn:#8a4b00;--warn-bg:#fff3df;
--ok:#1b6e2d;--ok-bg:#e6f4ea;--rail:#c5cbd3}
@media (prefers-color-scheme:dark){:root{--bg:#111316;--card:#1b1e23;--ink:#e8eaed;
--muted:#a3a9b1;--line:#2e333a;--accent:#7ab4ff;--danger:#ff8a80;--danger-bg:#3b1e1c;
--warn:#ffc46b;--warn-bg:#3a2b13;--ok:#81d69a;--ok-bg:#15301f;--rail:#454c55}}
*,::before,::after{box-sizing:border-box}
html{-webkit-text-size-adjust:100%;text-size-adjust:100%}
body{margin:0;background:var(--bg);color:var(--ink);font:16px/1.55 system-ui,-apple-system,
"Segoe UI",Roboto,"PingFang SC","Hiragino Sans GB","Microsoft YaHei","Noto Sans CJK SC",
"Noto Sans SC",sans-serif}
a{color:var(--accent)}
.wrap{max-width:40rem;margin:0 auto;padding:0 12px}
.top{background:var(--card);border-bottom:1px solid var(--line)}
.top .wrap{display:flex;align-items:center;justify-content:space-between;gap:8px;
min-height:56px}
.brand{display:flex;flex-direction:column;line-height:1.25;min-width:0}
.brand span{font-size:.8rem;color:var(--muted)}
.lang{display:flex;gap:4px;flex:none}
.lang a{display:inline-flex;align-items:center;justify-content:center;min-width:48px;
min-height:44px;padding:0 10px;border-radius:10px;text-decoration:none;font-weight:600}
.lang a[aria-current]{background:var(--accent);color:var(--card)}
main.wrap{padding-top:12px;padding-bottom:8px}
.card{background:var(--card);border:1px solid var(--line);border-radius:14px;padding:16px;
margin:0 0 12px}
h1{font-size:1.5rem;line-height:1.3;margin:6px 0 8px;overflow-wrap:anywhere}
h2{font-size:1.1rem;line-height:1.35;margin:0 0 10px}
p{margin:6px 0}
.banner{border:2px solid;border-radius:14px;padding:14px 16px;margin:0 0 12px}
.banner h2{font-size:1.3rem;margin:0 0 4px}
.banner ul{margin:6px 0 0;padding-left:1.2em}
.recall{background:#b3261e;border-color:#b3261e;color:#fff}
.recall h2::before{content:"\26A0\FE0E  "}
.alert{background:var(--danger-bg);border-color:var(--danger)}
.alert h2{color:var(--danger)}
.warn{background:var(--warn-bg);border-color:var(--warn)}
.warn h2{color:var(--warn)}
.ok{background:var(--ok-bg);border-color:var(--ok-bg)}
.ok h2{color:var(--ok);font-size:1.1rem}
.tags{display:flex;flex-wrap:wrap;gap:6px;margin:0}
.tag{display:inline-block;font-size:.8rem;line-height:1.5;padding:1px 9px;border-radius:999px;
border:1px solid var(--line);color:var(--muted);background:var(--bg)}
.tag.imp{color:var(--accent);border-color:var(--accent)}
dl{margin:0}
dl div{display:grid;grid-template-columns:minmax(5.5em,34%) 1fr;gap:10px;padding:7px 0;
border-top:1px solid var(--line)}
dl div:first-child{border-top:0}
dt{font-size:.88rem;color:var(--muted);padding-top:1px}
dd{margin:0;font-weight:500;overflow-wrap:anywhere}
details{margin-top:6px}
summary{cursor:pointer;min-height:44px;display:flex;align-items:center;color:var(--accent);
font-weight:600;list-style:none}
summary::-webkit-details-marker{display:none}
summary::before{content:"\25B8";width:1.2em}
details[open]>summary::before{content:"\25BE"}
.badge{display:inline-block;padding:1px 10px;border-radius:999px;font-weight:700;
font-size:.9rem;white-space:nowrap}
.good{background:var(--ok-bg);color:var(--ok)}
.bad{background:var(--danger-bg);color:var(--danger)}
.plain{background:var(--bg);color:var(--muted)}
.list{list-style:none;margin:0;padding:0}
.list>li{padding:10px 0;border-top:1px solid var(--line)}
.list>li:first-child{border-top:0;padding-top:0}
.timeline{list-style:none;margin:0;padding:0 0 0 24px;position:relative}
.timeline::before{content:"";position:absolute;left:7px;top:8px;bottom:8px;width:2px;
background:var(--rail)}
.ev{position:relative;padding:0 0 18px}
.ev:last-child{padding-bottom:0}
.ev::before{content:"";position:absolute;left:-23px;top:5px;width:16px;height:16px;
border-radius:50%;background:var(--card);border:4px solid var(--accent)}
.ev.evbad::before{border-color:var(--danger)}
.ev.evgood::before{border-color:var(--ok)}
.ev p{margin:2px 0}
.step{font-weight:700;font-size:1.08rem;margin-right:6px}
.nw{white-space:nowrap}
.when,.small{color:var(--muted);font-size:.88rem}
.meta{font-size:.94rem;overflow-wrap:anywhere}
.meta b{font-weight:500;color:var(--muted)}
.via{font-size:.88rem;color:var(--accent);overflow-wrap:anywhere}
.conf{font-size:.88rem;color:var(--warn)}
.conf::before{content:"\25CF  "}
.tree,.tree ul{list-style:none;margin:0;padding:0}
.tree ul{margin:6px 0 0 4px;padding-left:14px;border-left:2px solid var(--line)}
.tree li{margin:8px 0 0}
.tree li:first-child{margin-top:0}
.tree ul li:first-child{margin-top:8px}
.node{font-weight:600}
code,pre{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,"Liberation Mono",monospace;
font-size:.82rem}
code{overflow-wrap:anywhere}
pre{white-space:pre-wrap;word-break:break-all;background:var(--bg);border-radius:8px;
padding:10px;margin:8px 0}
.links{display:flex;flex-wrap:wrap;gap:8px;margin-top:12px}
.links a{display:inline-flex;align-items:center;min-height:44px;padding:0 14px;
border:1px solid var(--accent);border-radius:10px;text-decoration:none;font-weight:600}
.verified h2{color:var(--ok)}
.verified h2::before{content:"\2713  "}
.foot{color:var(--muted);font-size:.8rem;margin:16px 0 0;padding-bottom:24px;overflow-wrap:anywhere}
.big{font-size:3rem;font-weight:800;color:var(--muted);margin:0;line-height:1.1}
"""

_STYLE_HASH: Final = base64.b64encode(hashlib.sha256(CSS.encode()).digest()).decode()

# For the page's responses: nothing may load or run except the page's own style element.
CONTENT_SECURITY_POLICY: Final = (
    f"default-src 'none'; style-src 'sha256-{_STYLE_HASH}'; img-src 'self'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)

_MAX_TEXT: Final = 600  # longer values are cut: a hostile sender must not flood the page
_MAX_DEPTH: Final = 8  # ingredient tree levels shown


# --- reading the (untrusted) history dict ------------------------------------------------


def _h(value: object) -> str:
    """Escaped text for HTML content and double-quoted attributes."""
    shown = value if isinstance(value, str) else str(value)
    if len(shown) > _MAX_TEXT:
        shown = shown[:_MAX_TEXT] + "…"
    return html.escape(shown, quote=True)


def _str(data: Mapping[str, Any], key: str) -> str | None:
    value = data.get(key)
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, str | int | float):
        text_ = str(value).strip()
        return text_ or None
    return None


def _int(data: Mapping[str, Any], key: str) -> int | None:
    value = data.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) else None


def _map(data: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = data.get(key)
    return value if isinstance(value, Mapping) else {}


def _maps(data: Mapping[str, Any], key: str) -> list[Mapping[str, Any]]:
    value = data.get(key)
    if not isinstance(value, list):
        return []
    return [item for item in value if isinstance(item, Mapping)]


def _lang(lang: str) -> Lang:
    return "zh" if lang.lower().startswith("zh") else "en"


# --- language choice ------------------------------------------------------------------------


def _supported(tag: str | None) -> Lang | None:
    if not tag:
        return None
    tag = tag.strip().lower().replace("_", "-")
    if tag == "zh" or tag.startswith("zh-"):
        return "zh"
    if tag == "en" or tag.startswith("en-"):
        return "en"
    return None


def pick_language(accept_language: str | None, query_lang: str | None) -> Lang:
    """``?lang=`` wins; else the Accept-Language range with the highest q that we speak.

    Ties keep the header's order; a header naming neither Chinese nor English gets English.
    """
    chosen = _supported(query_lang)
    if chosen is not None:
        return chosen
    best: Lang | None = None
    best_q = 0.0
    for part in (accept_language or "").split(","):
        tag, _, params = part.partition(";")
        q = 1.0
        for param in params.split(";"):
            name, _, value = param.partition("=")
            if name.strip().lower() == "q":
                try:
                    q = float(value.strip())
                except ValueError:
                    q = 0.0
        lang = _supported(tag)
        if lang is not None and q > best_q:
            best, best_q = lang, q
    return best or "en"


# --- links ----------------------------------------------------------------------------------


def _safe_href(url: str) -> str:
    """`url` if it is http(s) or a path on this site; anything else (javascript:...) is inert."""
    parts = urlsplit(url.strip())
    if parts.scheme.lower() in ("http", "https") and parts.netloc:
        return url.strip()
    if not parts.scheme and not parts.netloc and not url.strip().startswith("//"):
        return url.strip()
    return "#"


def _lang_href(self_url: str, lang: Lang) -> str:
    """This page's path and query with ``lang`` replaced: always on this site."""
    parts = urlsplit(self_url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "lang"]
    query.append(("lang", lang))
    path = "/" + parts.path.lstrip("/") if parts.path else ""
    return urlunsplit(("", "", path, urlencode(query), ""))


# --- formatting -----------------------------------------------------------------------------


def _key_text(lang: Lang, key: str) -> str:
    """A GS1 key (``01/.../10/LOT``, ``00/...``, ``414/...``) in words; other text as given."""
    parts = key.strip().strip("/").split("/")
    if len(parts) < 2 or len(parts) % 2:
        return key
    pairs = dict(zip(parts[::2], parts[1::2], strict=True))
    first = parts[0]
    if first == "01":
        shown = [f"GTIN {pairs['01']}"]
        if "10" in pairs:
            shown.append(f"{text(lang, 'lot')} {pairs['10']}")
        if "21" in pairs:
            shown.append(f"{text(lang, 'serial')} {pairs['21']}")
        return " · ".join(shown)
    if first == "00":
        return f"SSCC {pairs['00']}"
    if first in ("414", "417"):
        extension = pairs.get("254")
        return f"GLN {pairs[first]}" + (f" ({extension})" if extension else "")
    return key


def _fact_value(lang: Lang, key: str, value: object) -> str:
    if isinstance(value, str):
        local = key.rsplit(":", 1)[-1]
        if local.startswith("country"):
            return country(lang, value)
        if local.endswith("Date"):
            return format_date(lang, value)
        return value
    return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)


def _row(label: str, value: str | None) -> str:
    """One ``<dl>`` row of already-escaped HTML; nothing when there is no value."""
    if not value:
        return ""
    return f"<div><dt>{label}</dt><dd>{value}</dd></div>"


def _dl(rows: Iterable[str]) -> str:
    body = "".join(rows)
    return f"<dl>{body}</dl>" if body else ""


# --- the page frame -------------------------------------------------------------------------


def _frame(lang: Lang, title: str, body: str, *, zh_href: str, en_href: str, head: str = "") -> str:
    current = {code: ' aria-current="true"' if code == lang else "" for code in ("zh", "en")}
    switch = (
        f'<nav class="lang" aria-label="{_h(text(lang, "switch_label"))}">'
        f'<a href="{_h(zh_href)}" hreflang="zh-CN" lang="zh-CN"{current["zh"]}>中文</a>'
        f'<a href="{_h(en_href)}" hreflang="en" lang="en"{current["en"]}>EN</a></nav>'
    )
    return (
        "<!doctype html>\n"
        f'<html lang="{"zh-CN" if lang == "zh" else "en"}">\n<head>\n'
        '<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        '<meta name="color-scheme" content="light dark">\n'
        '<meta name="referrer" content="no-referrer">\n'
        f"<title>{_h(title)}</title>\n{head}<style>{CSS}</style>\n</head>\n<body>\n"
        f'<header class="top"><div class="wrap"><div class="brand">'
        f"<strong>{_h(text(lang, 'brand'))}</strong><span>{_h(text(lang, 'service'))}</span>"
        f"</div>{switch}</div></header>\n"
        f'<main class="wrap">\n{body}</main>\n</body>\n</html>\n'
    )


# --- sections -------------------------------------------------------------------------------


def _offsets(events: list[Mapping[str, Any]]) -> dict[tuple[str, int], str]:
    """Each event's own time-zone offset by (log, index), for dates shown outside the
    timeline (an index alone is ambiguous when the history spans time shards)."""
    found: dict[tuple[str, int], str] = {}
    for event in events:
        index, offset = _int(event, "index"), _str(event, "eventTimeZoneOffset")
        if index is not None and offset is not None:
            found[(_str(event, "log") or "", index)] = offset
    return found


def _offset_of(offsets: Mapping[tuple[str, int], str], entry: Mapping[str, Any]) -> str | None:
    index = _int(entry, "index")
    return offsets.get((_str(entry, "log") or "", index)) if index is not None else None


def _banners(lang: Lang, history: Mapping[str, Any], has_events: bool) -> str:
    status = _map(history, "status")
    product = _map(history, "product")
    offsets = _offsets(_maps(history, "events"))
    out: list[str] = []
    if status.get("recalled") is True:
        lines = []
        for recall in _maps(status, "recalls"):
            when = _str(recall, "eventTime")
            day = format_day(lang, when, _offset_of(offsets, recall)) if when else ""
            by = _str(recall, "by")
            line = (
                text(lang, "recall_line", date=day, by=by)
                if by
                else text(lang, "recall_line_anon", date=day)
            )
            reason = _str(recall, "reason")
            if reason:
                line += ("。" if lang == "zh" else ". ") + text(lang, "reason", reason=reason)
            lines.append(f"<li>{_h(line)}</li>")
        items = f"<ul>{''.join(lines)}</ul>" if lines else ""
        out.append(
            '<section class="banner recall" role="alert">'
            f"<h2>{_h(text(lang, 'recalled_title'))}</h2>"
            f"<p>{_h(text(lang, 'recalled_body'))}</p>{items}</section>"
        )
    if status.get("destroyed") is True:
        out.append(_banner("alert", text(lang, "destroyed_title"), text(lang, "destroyed_body")))
    if status.get("returned") is True:
        out.append(_banner("warn", text(lang, "returned_title"), text(lang, "returned_body")))
    if status.get("expired") is True:
        expiry = _str(status, "expiryDate") or _str(product, "expiryDate")
        body = text(lang, "expired_body", date=format_date(lang, expiry)) if expiry else ""
        out.append(_banner("warn", text(lang, "expired_title"), body))
    if not out and has_events:
        out.append(_banner("ok", text(lang, "ok_title"), text(lang, "ok_body")))
    return "".join(out)


def _banner(kind: str, title: str, body: str) -> str:
    paragraph = f"<p>{_h(body)}</p>" if body else ""
    role = ' role="alert"' if kind != "ok" else ""
    return f'<section class="banner {kind}"{role}><h2>{_h(title)}</h2>{paragraph}</section>'


def _product(lang: Lang, history: Mapping[str, Any]) -> tuple[str, str]:
    """The product card and the product's display name."""
    product = _map(history, "product")
    identifier = _map(history, "identifier")
    origin = _map(history, "origin")
    gtin = _str(product, "gtin") or _str(identifier, "gtin")
    name = _str(product, "name") or text(lang, "unnamed")
    producer = _str(_map(product, "producer"), "name") or _str(origin, "producer")
    origin_country = _str(product, "originCountry") or _str(origin, "country")
    tags = []
    level = _str(identifier, "level")
    if level in ("instance", "lot", "class", "container", "location"):
        tags.append(f'<span class="tag">{_h(text(lang, "level_" + level))}</span>')
    if origin_country and origin_country.upper() != "CN":
        tags.append(f'<span class="tag imp">{_h(text(lang, "imported"))}</span>')
    production = _str(product, "productionDate")
    expiry = _str(product, "expiryDate")
    rows = [
        _row(_h(text(lang, "producer")), _h(producer) if producer else None),
        _row(
            _h(text(lang, "origin_country")),
            _h(country(lang, origin_country)) if origin_country else None,
        ),
        _row(
            _h(text(lang, "production_date")),
            _h(format_date(lang, production)) if production else None,
        ),
        _row(_h(text(lang, "expiry_date")), _h(format_date(lang, expiry)) if expiry else None),
        _row(
            _h(text(lang, "lot")),
            _h(lot) if (lot := _str(product, "lot") or _str(identifier, "lot")) else None,
        ),
        _row(
            _h(text(lang, "serial")),
            _h(serial) if (serial := _str(identifier, "serial")) else None,
        ),
        _row(_h(text(lang, "gtin")), f"<code>{_h(gtin)}</code>" if gtin else None),
    ]
    if not gtin and (key := _str(identifier, "key")):
        rows.append(_row(_h(text(lang, "identifier")), _h(_key_text(lang, key))))
    facts = _map(product, "facts")
    extra = "".join(
        _row(_h(fact_label(lang, str(key))), _h(_fact_value(lang, str(key), value)))
        for key, value in sorted(facts.items(), key=lambda kv: str(kv[0]))
        if value is not None and value != ""
    )
    more = (
        f"<details><summary>{_h(text(lang, 'more_facts'))}</summary><dl>{extra}</dl></details>"
        if extra
        else ""
    )
    tag_html = f'<p class="tags">{"".join(tags)}</p>' if tags else ""
    card = (
        f'<section class="card" aria-labelledby="product">{tag_html}'
        f'<h1 id="product">{_h(name)}</h1>{_dl(rows)}{more}</section>'
    )
    return card, name


def _outcome_badge(lang: Lang, outcome: str | None) -> str:
    if outcome == "conformant":
        return f'<span class="badge good">{_h(text(lang, "conformant"))}</span>'
    if outcome == "non_conformant":
        return f'<span class="badge bad">{_h(text(lang, "non_conformant"))}</span>'
    return f'<span class="badge plain">{_h(text(lang, "no_outcome"))}</span>'


def _inspections(lang: Lang, history: Mapping[str, Any]) -> str:
    status = _map(history, "status")
    inspections = _maps(status, "inspections")
    if not inspections:
        return ""
    offsets = _offsets(_maps(history, "events"))
    items = []
    for inspection in inspections:
        when = _str(inspection, "eventTime")
        offset = _offset_of(offsets, inspection)
        day = _h(format_day(lang, when, offset)) if when else ""
        by, where = _str(inspection, "by"), _str(inspection, "where")
        rows = [
            _row(_h(text(lang, "inspected_by")), _h(by) if by else None),
            _row(_h(text(lang, "where")), _h(_key_text(lang, where)) if where else None),
        ]
        items.append(
            f"<li><p>{_outcome_badge(lang, _str(inspection, 'outcome'))} "
            f'<span class="small">{day}</span></p>{_dl(rows)}</li>'
        )
    return (
        f'<section class="card" aria-labelledby="insp"><h2 id="insp">'
        f'{_h(text(lang, "inspections"))}</h2><ul class="list">{"".join(items)}</ul></section>'
    )


def _input_tree(lang: Lang, inputs: list[Mapping[str, Any]], depth: int = 0) -> str:
    """The upstream ingredient lots as nested lists (cut at `_MAX_DEPTH` levels)."""
    if not inputs or depth >= _MAX_DEPTH:
        return ""
    items = []
    for node in inputs:
        key = _str(node, "key")
        title = _str(node, "product") or (_key_text(lang, key) if key else "?")
        code = _str(node, "country")
        details = [
            value
            for value in (_str(node, "producer"), country(lang, code) if code else None)
            if value
        ]
        detail = f'<br><span class="small">{_h(" · ".join(details))}</span>' if details else ""
        key_line = (
            f'<br><span class="small">{_h(_key_text(lang, key))}</span>'
            if key and _str(node, "product")
            else ""
        )
        children = _input_tree(lang, _maps(node, "inputs"), depth + 1)
        items.append(f'<li><span class="node">{_h(title)}</span>{detail}{key_line}{children}</li>')
    css = ' class="tree"' if depth == 0 else ""
    return f"<ul{css}>{''.join(items)}</ul>"


def _origin(lang: Lang, history: Mapping[str, Any]) -> str:
    origin = _map(history, "origin")
    product = _map(history, "product")
    producer = _str(origin, "producer") or _str(_map(product, "producer"), "name")
    code = _str(origin, "country") or _str(product, "originCountry")
    place = _str(origin, "place")
    commissioned = _str(origin, "commissionedAt")
    offset = None
    for event in _maps(history, "events"):
        if _str(event, "eventTime") == commissioned:
            offset = _str(event, "eventTimeZoneOffset")
            break
    rows = [
        _row(_h(text(lang, "producer")), _h(producer) if producer else None),
        _row(_h(text(lang, "origin_country")), _h(country(lang, code)) if code else None),
        _row(_h(text(lang, "commission_place")), _h(_key_text(lang, place)) if place else None),
        _row(
            _h(text(lang, "commissioned_at")),
            _h(format_time(lang, commissioned, offset)) if commissioned else None,
        ),
    ]
    inputs = _maps(origin, "inputs")
    tree = _input_tree(lang, inputs)
    body = _dl(rows)
    if tree:
        body += f'<h3 class="small">{_h(text(lang, "inputs"))}</h3>'
        body += tree
    if not body:
        return ""
    return (
        f'<section class="card" aria-labelledby="origin"><h2 id="origin">'
        f"{_h(text(lang, 'origin'))}</h2>{body}</section>"
    )


_TYPE_FALLBACK: Final = {
    ("AggregationEvent", "ADD"): "aggregated",
    ("AggregationEvent", "DELETE"): "disaggregated",
    ("ObjectEvent", "DELETE"): "removed",
}
_TYPE_ONLY: Final = {
    "TransformationEvent": "transformed",
    "TransactionEvent": "transacted",
    "AssociationEvent": "associated",
}
_BAD: Final = frozenset(
    {"recalled", "non_conformant", "destroyed", "damaged", "expired", "stolen", "returned"}
)
_GOOD: Final = frozenset({"conformant", "retail_sold", "sellable_accessible"})


def _step_label(lang: Lang, event: Mapping[str, Any]) -> str:
    step = _str(event, "bizStep")
    if step:
        return biz_step(lang, step)
    kind, action = _str(event, "type") or "", _str(event, "action") or ""
    key = _TYPE_FALLBACK.get((kind, action)) or _TYPE_ONLY.get(kind) or "observed"
    return text(lang, key)


def _parties(lang: Lang, parties: list[Mapping[str, Any]]) -> str:
    shown = []
    for party in parties:
        ident = _str(party, "id")
        if not ident:
            continue
        kind = _str(party, "type")
        label = text(lang, "sdt_" + kind) if kind in ("owning_party", "possessing_party") else ""
        shown.append(_key_text(lang, ident) + (f" ({label})" if label else ""))
    return ("、" if lang == "zh" else ", ").join(shown)


def _relation_note(lang: Lang, event: Mapping[str, Any]) -> str:
    relation = _str(event, "relation") or "item"
    via = _str(event, "via")
    via_text = _key_text(lang, via) if via else ""
    if relation == "lot":
        return text(lang, "rel_lot")
    if relation == "class":
        return text(lang, "rel_class")
    if relation == "container":
        return text(lang, "rel_container", via=via_text).strip()
    if relation == "input":
        return text(lang, "rel_input", via=via_text).strip()
    if relation == "output":
        return text(lang, "rel_output_via", via=via_text) if via else text(lang, "rel_output")
    return ""


def _event(lang: Lang, event: Mapping[str, Any], inspector: bool, current_log: str) -> str:
    disp = _str(event, "disposition")
    mood = " evbad" if disp in _BAD else " evgood" if disp in _GOOD else ""
    chip = ""
    if disp:
        chip_kind = "bad" if disp in _BAD else "good" if disp in _GOOD else "plain"
        chip = f'<span class="badge {chip_kind}">{_h(disposition(lang, disp))}</span>'
    parts = [f'<p><span class="step">{_h(_step_label(lang, event))}</span>{chip}</p>']
    when, index = _str(event, "eventTime"), _int(event, "index")
    stamp = []
    if when:
        shown = format_time(lang, when, _str(event, "eventTimeZoneOffset"))
        stamp.append(f'<time datetime="{_h(when)}">{_h(shown)}</time>')
    if index is not None:
        stamp.append(f'<span class="nw">{_h(text(lang, "record_no", index=index))}</span>')
    log = _str(event, "log")
    if log and log != current_log:  # recorded in an earlier time shard of the log
        stamp.append(f'<span class="nw">{_h(log)}</span>')
    if stamp:
        parts.append(f'<p class="when">{" · ".join(stamp)}</p>')
    where = _map(event, "where")
    place = _str(where, "bizLocation") or _str(where, "readPoint")
    if place:
        label = _h(text(lang, "where"))
        parts.append(f'<p class="meta"><b>{label}:</b> {_h(_key_text(lang, place))}</p>')
    who = _map(event, "who")
    if name := _str(who, "name"):
        badge = (
            f' <span class="tag">{_h(text(lang, "authority"))}</span>'
            if _str(who, "role") == "authority"
            else ""
        )
        label = _h(text(lang, "who"))
        parts.append(f'<p class="meta"><b>{label}:</b> {_h(name)}{badge}</p>')
    for key, field in (("from", "sources"), ("to", "destinations")):
        if shown_parties := _parties(lang, _maps(event, field)):
            label = _h(text(lang, key))
            parts.append(f'<p class="meta"><b>{label}:</b> {_h(shown_parties)}</p>')
    if note := _relation_note(lang, event):
        parts.append(f'<p class="via">{_h(note)}</p>')
    if event.get("confidential") is True and not inspector:
        parts.append(f'<p class="conf">{_h(text(lang, "confidential"))}</p>')
    return f'<li class="ev{mood}">{"".join(parts)}</li>'


def _timeline(
    lang: Lang, events: list[Mapping[str, Any]], inspector: bool, current_log: str = ""
) -> str:
    if events:
        shown = "".join(_event(lang, e, inspector, current_log) for e in events)
        body = f'<ol class="timeline">{shown}</ol>'
    else:
        body = f"<p>{_h(text(lang, 'no_events'))}</p>"
    return (
        f'<section class="card" aria-labelledby="journey"><h2 id="journey">'
        f"{_h(text(lang, 'journey'))}</h2>{body}</section>"
    )


_CERT_FIELDS: Final = ("standard", "agency", "value")


def _certificates(lang: Lang, events: list[Mapping[str, Any]]) -> str:
    seen: set[tuple[str, ...]] = set()
    items = []
    for event in events:
        for cert in _maps(event, "certifications"):
            ident = tuple(_str(cert, f) or "" for f in _CERT_FIELDS)
            if ident in seen or not any(ident):
                continue
            seen.add(ident)
            standard, agency, value = ident
            rows = [
                _row(_h(text(lang, "cert_agency")), _h(agency) if agency else None),
                _row(_h(text(lang, "cert_value")), _h(value) if value else None),
            ]
            rows += [
                _row(_h(str(key)), _h(shown))
                for key in sorted(str(k) for k in cert)
                if key not in _CERT_FIELDS and (shown := _str(cert, key))
            ]
            when = _str(event, "eventTime")
            day = format_day(lang, when, _str(event, "eventTimeZoneOffset")) if when else ""
            seen_with = text(lang, "cert_seen", step=_step_label(lang, event), date=day)
            items.append(
                f'<li><p class="node">{_h(standard or value or agency)}</p>{_dl(rows)}'
                f'<p class="small">{_h(seen_with)}</p></li>'
            )
    if not items:
        return ""
    return (
        f'<section class="card" aria-labelledby="certs"><h2 id="certs">'
        f'{_h(text(lang, "certificates"))}</h2><ul class="list">{"".join(items)}</ul></section>'
    )


def _verification(lang: Lang, history: Mapping[str, Any], json_url: str, has_events: bool) -> str:
    size = _int(history, "treeSize")
    key = _str(history, "verifierKey") or ""
    pending = _int(history, "pending") or 0
    checkpoint = history.get("checkpoint")
    parts = []
    if has_events and size is not None:
        title = text(lang, "verified_against", n=size)
        parts.append(f"<p>{_h(text(lang, 'verified_body', n=size))}</p>")
        section_class = "card verified"
    else:
        title = text(lang, "verified")
        parts.append(f"<p>{_h(text(lang, 'not_verified'))}</p>")
        section_class = "card"
    if pending > 0:
        parts.append(f'<p class="conf">{_h(text(lang, "pending", n=pending))}</p>')
    if key:
        parts.append(
            f'<p class="small">{_h(text(lang, "verifier_key"))}: <code>{_h(key)}</code></p>'
        )
    command = f"traceledger verify-history {shlex.quote(json_url)}"
    if key:
        command += f" --key {shlex.quote(key)}"
    for log in _maps(history, "logs"):
        # One key per earlier time shard the events come from.
        other = _str(log, "verifierKey")
        if other and other != key:
            command += f" --key {shlex.quote(other)}"
    parts.append(
        f"<details><summary>{_h(text(lang, 'how_to_check'))}</summary>"
        f"<p>{_h(text(lang, 'how_to_check_body'))}</p><pre>{_h(command)}</pre></details>"
    )
    if isinstance(checkpoint, str) and checkpoint.strip():
        parts.append(
            f"<details><summary>{_h(text(lang, 'checkpoint_text'))}</summary>"
            f"<pre>{_h(checkpoint)}</pre></details>"
        )
    parts.append(
        f'<p class="links"><a href="{_h(_safe_href(json_url))}" type="application/json">'
        f"{_h(text(lang, 'json_link'))}</a>"
        f'<a href="/checkpoint" type="text/plain">{_h(text(lang, "checkpoint_link"))}</a></p>'
    )
    return (
        f'<section class="{section_class}" aria-labelledby="verify"><h2 id="verify">'
        f"{_h(title)}</h2>{''.join(parts)}</section>"
    )


# --- public API -----------------------------------------------------------------------------


def render_history(
    history: Mapping[str, Any],
    lang: str,
    *,
    self_url: str,
    json_url: str,
    inspector: bool = False,
) -> str:
    """The one-stop trace page for a history (the dict served as JSON), in `lang`.

    `self_url` is this page's URL (its query is kept by the language switch); `json_url`
    the same history as JSON, linked and given to the verify command. With `inspector`
    the confidential notes are left out: the caller has put the withheld fields back.
    """
    code = _lang(lang)
    events = _maps(history, "events")
    card, name = _product(code, history)
    sections = [
        f'<p class="banner warn">{_h(text(code, "inspector_view"))}</p>' if inspector else "",
        _banners(code, history, bool(events)),
        card,
        _inspections(code, history),
        _origin(code, history),
        _timeline(
            code, events, inspector, next(iter(_maps(history, "logs")), {}).get("origin", "")
        ),
        _certificates(code, events),
        _verification(code, history, json_url, bool(events)),
    ]
    identifier = _map(history, "identifier")
    link = _str(identifier, "digitalLink") or _str(identifier, "key")
    if link:
        sections.append(
            f'<p class="foot">{_h(text(code, "identifier"))}: <code>{_h(link)}</code></p>'
        )
    head = f'<link rel="alternate" type="application/json" href="{_h(_safe_href(json_url))}">\n'
    return _frame(
        code,
        f"{name} · {text(code, 'service')}",
        "\n".join(s for s in sections if s) + "\n",
        zh_href=_lang_href(self_url, "zh"),
        en_href=_lang_href(self_url, "en"),
        head=head,
    )


def render_problem_page(status: int, title: str, detail: str, lang: str) -> str:
    """A friendly error page (unknown product, bad QR code) in the trace page's look."""
    code = _lang(lang)
    body = (
        f'<section class="card" aria-labelledby="problem"><p class="big">{_h(status)}</p>'
        f'<h1 id="problem">{_h(title)}</h1><p>{_h(detail)}</p>'
        f'<p class="small">{_h(text(code, "problem_hint"))}</p></section>\n'
    )
    return _frame(
        code,
        f"{title} · {text(code, 'service')}",
        body,
        zh_href="?lang=zh",
        en_href="?lang=en",
    )
