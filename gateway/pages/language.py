"""Which language a page speaks: ``?lang=`` first, then ``Accept-Language``."""

from __future__ import annotations

from babel import Locale

from gateway.pages.catalogs import SOURCE_LANGUAGE, languages, translations

__all__ = ["html_lang", "pick_language", "supported"]


def supported(tag: str | None) -> str | None:
    """The catalog for a language tag (``zh-Hans-CN`` -> ``zh``); None if we have none."""
    if not tag:
        return None
    primary = tag.strip().lower().replace("_", "-").split("-", 1)[0]
    return primary if primary in languages() else None


def _quality(params: str) -> float:
    for param in params.split(";"):
        name, _, value = param.partition("=")
        if name.strip().lower() == "q":
            try:
                return float(value.strip())
            except ValueError:
                return 0.0
    return 1.0


def pick_language(accept_language: str | None, query_lang: str | None) -> str:
    """``?lang=`` wins; else the Accept-Language range with the highest q that we speak.

    Ties keep the header's order; a header naming no language we speak gets English.
    """
    chosen = supported(query_lang)
    if chosen is not None:
        return chosen
    best, best_q = None, 0.0
    for part in (accept_language or "").split(","):
        tag, _, params = part.partition(";")
        lang, q = supported(tag), _quality(params)
        if lang is not None and q > best_q:
            best, best_q = lang, q
    return best or SOURCE_LANGUAGE


def html_lang(lang: str) -> str:
    """The BCP 47 tag for ``<html lang>``: language and region of the catalog's
    ``Language`` header (zh_Hans_CN -> zh-CN), so screen readers and fonts pick the
    right variant."""
    declared = Locale.parse(translations(lang).info().get("language") or lang)
    return "-".join(part for part in (declared.language, declared.territory) if part)
