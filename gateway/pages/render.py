"""Rendering the pages: one Jinja2 environment (autoescaping on) for every language.

The language travels in the template context (``w``, the page's `Words`), and the
gettext callables the i18n extension installs read it from there, so one set of
templates and one environment serve every catalog.

Escaping: every ``{{ value }}`` goes through `_finalize`, which cuts overlong text (a
hostile sender must not flood the page) and escapes it as `html.escape` does; markup
the templates build themselves (macros, translations) passes unchanged, and values
formatted into a translation go through `_finalize` too.
"""

from __future__ import annotations

import base64
import functools
import hashlib
import html
from collections.abc import Mapping
from importlib import resources
from typing import Any, Final

import jinja2
from markupsafe import Markup

from gateway.pages.catalogs import SOURCE_LANGUAGE, languages
from gateway.pages.language import supported
from gateway.pages.view import (
    ProofPins,
    cut,
    history_view,
    lang_href,
    pins_of,
    safe_href,
)
from gateway.pages.words import Words, words
from traceledger.lookup.scans import Tally

__all__ = [
    "CONTENT_SECURITY_POLICY",
    "CSS",
    "SCRIPT_PATH",
    "SCRIPT_SOURCE",
    "environment",
    "history_context",
    "problem_context",
    "render_history",
    "render_problem_page",
]

MANY_SCANS: Final = 10  # look-ups of one serial that make the count a warning

_STATIC = resources.files("gateway.pages") / "static"
CSS: Final = (_STATIC / "page.css").read_text(encoding="utf-8")
SCRIPT_SOURCE: Final = (_STATIC / "verify.mjs").read_bytes()


def _sha(data: bytes, algorithm: str = "sha256") -> str:
    return base64.b64encode(hashlib.new(algorithm, data).digest()).decode()


# The script's URL names its content, so a cached copy is never stale; the page also
# pins its hash (Subresource Integrity).
SCRIPT_PATH: Final = f"/assets/verify.{hashlib.sha256(SCRIPT_SOURCE).hexdigest()[:12]}.mjs"
SCRIPT_INTEGRITY: Final = f"sha384-{_sha(SCRIPT_SOURCE, 'sha384')}"

# For the pages' responses: the page's own style element (by hash), its own script, and
# requests back to this site (the script fetches the page's answer and the checkpoint's
# newest leaf); nothing else loads or runs. The script writes no HTML, so Trusted Types
# may forbid every HTML sink.
CONTENT_SECURITY_POLICY: Final = (
    f"default-src 'none'; style-src 'sha256-{_sha(CSS.encode())}'; img-src 'self'; "
    "script-src 'self'; connect-src 'self'; require-trusted-types-for 'script'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


def _finalize(value: object) -> object:
    if value is None or isinstance(value, Markup):
        return "" if value is None else value
    shown = cut(value if isinstance(value, str) else str(value))
    return Markup(html.escape(shown, quote=True))  # noqa: S704 - escaped just now


def _formatted(message: str, variables: Mapping[str, object]) -> Markup:
    """A translation (trusted markup) with its placeholders filled by escaped values."""
    # Catalogs are ours (reviewed like code); only the values need escaping.
    if not variables:
        return Markup(message)  # noqa: S704
    return Markup(message) % {k: _finalize(v) for k, v in variables.items()}  # noqa: S704


@jinja2.pass_context
def _gettext(context: jinja2.runtime.Context, message: str, **variables: object) -> Markup:
    page: Words = context["w"]
    return _formatted(page.gettext(message), variables)


@jinja2.pass_context
def _ngettext(
    context: jinja2.runtime.Context, singular: str, plural: str, n: int, **variables: object
) -> Markup:
    page: Words = context["w"]
    return _formatted(page.ngettext(singular, plural, n), {"num": n, **variables})


@jinja2.pass_context
def _pgettext(
    context: jinja2.runtime.Context, message_context: str, message: str, **variables: object
) -> Markup:
    page: Words = context["w"]
    return _formatted(page.pgettext(message_context, message), variables)


@functools.cache
def environment() -> jinja2.Environment:
    """The pages' Jinja2 environment (templates are package data of gateway.pages)."""
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("gateway.pages", "templates"),
        autoescape=True,
        extensions=["jinja2.ext.i18n"],
        finalize=_finalize,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
        # Templates are read once per process, so they never disagree with the code that
        # fills them (a restart shows an edited template).
        auto_reload=False,
    )
    # Not "newstyle": these callables fill in (and escape) the placeholders themselves,
    # through _finalize like every other value.
    env.install_gettext_callables(  # type: ignore[attr-defined]
        _gettext, _ngettext, newstyle=False, pgettext=_pgettext
    )
    env.globals["css"] = Markup(CSS)  # noqa: S704 - our own style sheet
    return env


def _page(lang: str, self_url: str) -> dict[str, Any]:
    """What every page needs: its words and the language switch."""
    return {
        "w": words(lang),
        "switch": [
            {
                "href": lang_href(self_url, other),
                "html_lang": words(other).html_lang,
                # Translators: the name of your language, in your language.
                "name": words(other).gettext("English"),
                "current": other == lang,
            }
            for other in languages()
        ],
    }


def history_context(
    history: Mapping[str, Any],
    lang: str,
    *,
    self_url: str,
    json_url: str,
    inspector: bool = False,
    scans: Tally | None = None,
    pins: ProofPins | None = None,
    many_scans: int = MANY_SCANS,
    names: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The context of ``history.html``; see `render_history`."""
    page = _page(supported(lang) or SOURCE_LANGUAGE, self_url)
    return (
        page
        | history_view(
            history,
            page["w"],
            json_url=json_url,
            inspector=inspector,
            scans=scans,
            many_scans=many_scans,
            names=names,
        )
        | {
            "pins": pins or pins_of(history),
            "script": {"src": SCRIPT_PATH, "integrity": SCRIPT_INTEGRITY},
            "json_href": safe_href(json_url),
        }
    )


def render_history(history: Mapping[str, Any], lang: str, **options: Any) -> str:
    """The one-stop trace page for a history (the dict served as JSON), in `lang`.

    Options (see `history_context`): `self_url`, this page's URL (its query is kept by
    the language switch); `json_url`, the same history as JSON, linked and given to the
    verify command; `inspector`, leaving out the confidential notes (the caller has put
    the withheld fields back); `scans`, the item's look-up count; `names`, names of the
    identifiers it mentions (default: the answer's own `names`); `pins`, the keys the
    page's script verifies with (default: the answer's own).
    """
    context = history_context(history, lang, **options)
    return environment().get_template("history.html").render(context)


def problem_context(status: int, title: str, detail: str, lang: str) -> dict[str, Any]:
    return _page(supported(lang) or SOURCE_LANGUAGE, "?") | {
        "status": status,
        "title": title,
        "detail": detail,
    }


def render_problem_page(status: int, title: str, detail: str, lang: str) -> str:
    """A friendly error page (unknown product, bad QR code) in the trace page's look."""
    context = problem_context(status, title, detail, lang)
    return environment().get_template("problem.html").render(context)
