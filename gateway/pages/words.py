"""Words for one language: catalog lookups, vocabulary labels, dates and GS1 keys.

Templates reach these as ``w.<name>(...)``; the wording itself is in the catalogs, the
month names and the like in Babel's CLDR data, so a new language needs no code here.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Final

from babel import Locale
from babel.dates import format_date as babel_date

from gateway.pages import vocabulary
from gateway.pages.catalogs import translations
from gateway.pages.language import html_lang
from traceledger.standards.gs1 import parse_index_key

__all__ = ["Words", "words"]

_OFFSET: Final = re.compile(r"([+-])(\d{2}):(\d{2})")
_DATE: Final = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def _zone(offset: str | None) -> timezone | None:
    if offset is None:
        return None
    match = _OFFSET.fullmatch(offset.strip())
    if match is None:
        return None
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    if delta >= timedelta(hours=24):
        return None
    return timezone(-delta if sign == "-" else delta)


def instant(value: str) -> datetime | None:
    """An ISO 8601 date-time as an aware datetime (UTC when it names no zone); else None."""
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _localize(value: str, offset: str | None) -> datetime | None:
    moment = instant(value)
    if moment is None:
        return None
    zone = _zone(offset)
    return moment.astimezone(zone) if zone is not None else moment


def _key_pairs(key: str) -> dict[str, str] | None:
    """``01/<gtin>/10/<lot>`` style keys as {AI: value}; EPC URNs through the GS1 parser."""
    if key.startswith("urn:epc:"):
        parsed = parse_index_key(key)
        if parsed is None:
            return None
        key = parsed.canonical()
    parts = key.strip().strip("/").split("/")
    if len(parts) < 2 or len(parts) % 2 or not parts[0].isdigit():
        return None
    return {"first": parts[0], **dict(zip(parts[::2], parts[1::2], strict=True))}


class Words:
    """What a page in `lang` says: translations and the formatting of values."""

    def __init__(self, lang: str) -> None:
        self.lang = lang
        self.html_lang = html_lang(lang)
        self._t = translations(lang)
        self._locale = Locale.parse(lang)
        # A page names the same places and days again and again, and so do pages.
        self.key: Callable[[str], str] = functools.lru_cache(maxsize=4096)(self._key_text)
        self._date_text: Callable[[date], str] = functools.lru_cache(maxsize=4096)(self._day)

    # --- catalog lookups (the templates' _(), pgettext() and ngettext() use these) ---------

    def gettext(self, message: str) -> str:
        return self._t.gettext(message)

    def pgettext(self, context: str, message: str) -> str:
        return self._t.pgettext(context, message)

    def ngettext(self, singular: str, plural: str, n: int) -> str:
        return self._t.ngettext(singular, plural, n)

    def _pick(self, marked: tuple[str, str] | None, fallback: str) -> str:
        return self.pgettext(*marked) if marked is not None else fallback

    # --- vocabulary ----------------------------------------------------------------------

    def step(self, biz_step: str | None, kind: str | None, action: str | None) -> str:
        """An event's step: its bizStep's label, else its type's (an unknown extension
        step is shown as given)."""
        if biz_step:
            return self._pick(vocabulary.BIZ_STEPS.get(biz_step), biz_step)
        marked = vocabulary.BY_EVENT_TYPE.get((kind or "", action)) or vocabulary.BY_EVENT_TYPE.get(
            (kind or "", None)
        )
        return self.pgettext(*(marked or vocabulary.OBSERVED))

    def disposition(self, value: str) -> str:
        return self._pick(vocabulary.DISPOSITIONS.get(value), value)

    def country(self, code: str) -> str:
        """A country's name for an ISO alpha-2 code we trade with; anything else as given."""
        upper = code.strip().upper()
        if upper not in vocabulary.COUNTRY_CODES:
            return code
        marked = vocabulary.COUNTRY_NAMES.get(upper)
        return self.pgettext(*marked) if marked else self._locale.territories.get(upper, code)

    def fact_label(self, key: str) -> str:
        """The label of an ILMD key such as ``cbvmda:countryOfOrigin``; unknown keys as given."""
        local = re.split(r"[:#/]", key)[-1]
        return self._pick(vocabulary.FACTS.get(local), key)

    def fact_value(self, key: str, value: object) -> str:
        if isinstance(value, str):
            local = key.rsplit(":", 1)[-1]
            if local.startswith("country"):
                return self.country(value)
            if local.endswith("Date"):
                return self.date(value)
            return value
        return json.dumps(value, ensure_ascii=False, sort_keys=True, default=str)

    def _key_text(self, key: str) -> str:
        """`key`: a GS1 key (``01/.../10/LOT``, ``00/...``, ``414/...``, or an EPC URN) in words;
        other text as given."""
        pairs = _key_pairs(key)
        if pairs is None:
            return key
        first = pairs["first"]
        if first == "01":
            shown = [f"GTIN {pairs['01']}"]
            if "10" in pairs:
                shown.append(f"{self.pgettext('key', 'Lot')} {pairs['10']}")
            if "21" in pairs:
                shown.append(f"{self.pgettext('key', 'Serial')} {pairs['21']}")
            return " · ".join(shown)
        if first == "00":
            return f"SSCC {pairs['00']}"
        if first in ("414", "417"):
            extension = pairs.get("254")
            return f"GLN {pairs[first]}" + (f" ({extension})" if extension else "")
        return key

    # --- dates and times -----------------------------------------------------------------

    def _day(self, day: date) -> str:
        """`_date_text`: a date in words. Translators give the CLDR pattern of a medium
        date in their language."""
        return babel_date(day, self.pgettext("date format", "d MMM y"), locale=self._locale)

    def date(self, value: str) -> str:
        """``2026-09-01`` (or a date-time) as a date; anything unparsable as given."""
        match = _DATE.match(value)
        if match is None:
            return value
        try:
            day = date(*(int(g) for g in match.groups()))
        except ValueError:
            return value
        return self._date_text(day)

    def day(self, value: str, offset: str | None = None) -> str:
        """The local date of an ISO 8601 instant at `offset`; anything unparsable as given."""
        moment = _localize(value, offset)
        if moment is None:
            return self.date(value)
        return self._date_text(moment.date())

    def time(self, value: str, offset: str | None = None) -> str:
        """An ISO 8601 instant as local wall time at `offset` (the event's own time zone).

        Without a usable offset the time's own zone is kept (UTC when it has none), and the
        zone is always printed, so a reader never mistakes it for their own.
        """
        moment = _localize(value, offset)
        if moment is None:
            return value
        minutes = int((moment.utcoffset() or timedelta(0)).total_seconds()) // 60
        sign = "-" if minutes < 0 else "+"
        zone = f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
        return self.gettext("%(date)s, %(time)s (%(zone)s)") % {
            "date": self._date_text(moment.date()),
            "time": f"{moment:%H:%M}",
            "zone": zone,
        }

    def minutes(self, value: str, offset: str | None = None) -> int | None:
        """The UTC offset, in minutes, of the zone `time` shows `value` in."""
        moment = _localize(value, offset)
        if moment is None:
            return None
        return int((moment.utcoffset() or timedelta(0)).total_seconds()) // 60

    def join(self, items: list[str]) -> str:
        """Items joined the way the language lists them."""
        return self.pgettext("list separator", ", ").join(items)


@functools.cache
def words(lang: str) -> Words:
    return Words(lang)
