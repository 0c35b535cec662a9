"""GS1 Application Identifiers in Digital Link query strings, checked like path ones.

A Digital Link's query string may carry data attributes such as an expiry date
(`?17=271231`). Each is checked against GS1's AI table (gs1_ai_table.txt): that it may
be a query attribute at all, its character set and length, its check digit, dates and
times, and the AIs it needs beside it (AI 4321, dangerous goods, belongs to an SSCC) or
may not appear with. Every check is a single pass over the value, so the cost is linear
in the length of the query.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Final

from traceledger.errors import IdentifierError
from traceledger.standards.gs1 import check_digit

_CHARSETS: Final = {
    "N": re.compile(r"[0-9]*"),
    "X": re.compile(r"[!\"%&'()*+,\-./0-9:;<=>?A-Z_a-z]*"),  # GS1 CSET 82
    "Y": re.compile(r"[#\-/0-9A-Z]*"),  # GS1 CSET 39
    "Z": re.compile(r"[A-Za-z0-9\-_]*"),  # base64url
}
_CHARSET_NAMES: Final = {
    "N": "digits",
    "X": "GS1 CSET 82 characters",
    "Y": "GS1 CSET 39 characters",
    "Z": "base64url characters",
}
_COMPONENT: Final = re.compile(r"(\[)?([NXYZ])(\.\.)?([0-9]+)\]?((?:,[a-z0-9]+)*)")


@dataclass(frozen=True, slots=True)
class _Component:
    charset: str
    length: int
    variable: bool  # "..n": 1 to n characters (only the last component)
    optional: bool
    checks: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class ApplicationIdentifier:
    code: str
    title: str
    attribute: bool  # may be a Digital Link query attribute
    key: bool  # a Digital Link primary key
    components: tuple[_Component, ...]
    requires: tuple[tuple[str, ...], ...]  # any one group, every AI pattern of it
    excludes: tuple[str, ...]


def _expand(codes: str) -> list[str]:
    low, _, high = codes.partition("-")
    if not high:
        return [low]
    return [str(n).zfill(len(low)) for n in range(int(low), int(high) + 1)]


def _parse_line(line: str) -> list[ApplicationIdentifier]:
    body, _, title = line.partition("|")
    fields = body.split()
    components: list[_Component] = []
    requires: tuple[tuple[str, ...], ...] = ()
    excludes: tuple[str, ...] = ()
    for part in fields[2:]:
        if part.startswith("req="):
            requires = tuple(tuple(group.split("+")) for group in part[4:].split(","))
        elif part.startswith("ex="):
            excludes = tuple(part[3:].split(","))
        elif part != "key":
            match = _COMPONENT.fullmatch(part)
            if match is None:
                raise ValueError(f"bad AI component {part!r}")
            optional, charset, variable, length, checks = match.groups()
            components.append(
                _Component(
                    charset,
                    int(length),
                    bool(variable),
                    bool(optional),
                    tuple(c for c in checks.split(",") if c),
                )
            )
    return [
        ApplicationIdentifier(
            code,
            title.strip(),
            fields[1] == "?",
            "key" in fields[2:],
            tuple(components),
            requires,
            excludes,
        )
        for code in _expand(fields[0])
    ]


@cache
def ai_table() -> dict[str, ApplicationIdentifier]:
    """Every AI of GS1's table, by its code."""
    text = resources.files("traceledger.standards").joinpath("gs1_ai_table.txt").read_text()
    table: dict[str, ApplicationIdentifier] = {}
    for line in text.splitlines():
        if line.strip() and not line.startswith("#"):
            table.update((ai.code, ai) for ai in _parse_line(line))
    return table


# ----------------------------------------------------------------------------- values


def _date(text: str, day_zero: bool, full_year: bool = False) -> str | None:
    """Why YYMMDD (YYYYMMDD) is not a date; None when it is."""
    year = int(text[:4]) if full_year else 2000 + int(text[:2])
    month, day = int(text[-4:-2]), int(text[-2:])
    if not 1 <= month <= 12:
        return f"month {text[-4:-2]} does not exist"
    if day == 0 and day_zero:
        return None
    leap = year % 4 == 0 and (year % 100 != 0 or year % 400 == 0 or not full_year)
    days = (31, 29 if leap else 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31)[month - 1]
    return None if 1 <= day <= days else f"day {text[-2:]} does not exist in month {month}"


def _in_range(text: str, low: int, high: int, what: str) -> str | None:
    return None if low <= int(text) <= high else f"{what} {text} is out of range"


def _percent_encoding(text: str) -> str | None:
    for at, char in enumerate(text):
        if char == "%" and not re.fullmatch(r"[0-9A-Fa-f]{2}", text[at + 1 : at + 3]):
            return "has a '%' that starts no percent-encoding"
    return None


def _checked(check: str, text: str) -> str | None:
    """Why `text` fails the table's check `check`; None when it passes (or is unknown)."""
    if check == "csum":
        return None if check_digit(text[:-1]) == text[-1] else "its check digit is wrong"
    if check in ("yymmd0", "yymmdd"):
        return _date(text, day_zero=check == "yymmd0")
    if check == "yyyymmdd":
        return _date(text, day_zero=False, full_year=True)
    if check == "hhmi":
        return _in_range(text[:2], 0, 23, "hour") or _in_range(text[2:], 0, 59, "minute")
    if check in ("hh", "mi", "ss"):
        return _in_range(text, 0, 23 if check == "hh" else 59, {"hh": "hour"}.get(check, "time"))
    if check == "yesno":
        return None if text in ("0", "1") else "must be 0 (no) or 1 (yes)"
    if check == "zero":
        return None if text == "0" else "must be 0"
    if check == "nonzero":
        return None if text.strip("0") else "must not be zero"
    if check == "nozeroprefix":
        return None if text == "0" or not text.startswith("0") else "must not start with 0"
    if check == "hyphen":
        return None if text == "-" else "may only be '-'"
    if check == "winding":
        return None if text in ("0", "1", "9") else "must be 0, 1 or 9"
    if check == "pieceoftotal":
        piece, total = int(text[:2]), int(text[2:])
        return None if 0 < piece <= total else "piece must be 1 to the total"
    if check == "latitude":
        return _in_range(text, 0, 1_800_000_000, "latitude")
    if check == "longitude":
        return _in_range(text, 0, 3_600_000_000, "longitude")
    if check == "iso3166alpha2":
        return None if re.fullmatch(r"[A-Z]{2}", text) else "must be two capital letters"
    if check == "pcenc":
        return _percent_encoding(text)
    return None  # ISO code lists, IBAN, coupons...: the format alone is checked


def check_ai_value(ai: ApplicationIdentifier, value: str) -> None:
    """Refuse a value that does not have the AI's format (IdentifierError says why)."""

    def bad(reason: str) -> IdentifierError:
        return IdentifierError(f"AI {ai.code} ({ai.title}) {reason}, got {value[:40]!r}")

    at = 0
    for component in ai.components:
        if at >= len(value) and component.optional:
            break
        end = len(value) if component.variable else at + component.length
        part = value[at:end]
        if component.variable:
            if not 1 <= len(part) <= component.length:
                raise bad(f"takes 1 to {component.length} characters here")
        elif len(part) != component.length:
            total = sum(c.length for c in ai.components if not c.optional)
            raise bad(f"must be {total} characters long")
        if not _CHARSETS[component.charset].fullmatch(part):
            raise bad(f"may only hold {_CHARSET_NAMES[component.charset]}")
        for check in component.checks:
            reason = _checked(check, part)
            if reason is not None:
                raise bad(reason)
        at = end
    if at < len(value):
        raise bad("is too long")


# -------------------------------------------------------------------- Digital Links


def _matches(pattern: str, code: str) -> bool:
    return len(pattern) == len(code) and all(
        p in ("n", c) for p, c in zip(pattern, code, strict=True)
    )


def _present(pattern: str, codes: Iterable[str]) -> bool:
    return any(_matches(pattern, code) for code in codes)


def check_query_attributes(path_ais: Sequence[str], query: Sequence[tuple[str, str]]) -> None:
    """Check a Digital Link's query attributes (name, value) as GS1's table says.

    Only all-digit names are AIs; anything else (``format``, ``linkType``...) is the
    resolver's own business. Raises IdentifierError with the reason.
    """
    table = ai_table()
    attributes = [(name, value) for name, value in query if name.isdigit()]
    seen = set(path_ais)
    for code, value in attributes:
        ai = table.get(code)
        if ai is None:
            raise IdentifierError(f"AI {code[:8]} is not a GS1 Application Identifier")
        if code in seen:
            raise IdentifierError(f"AI {code} ({ai.title}) appears twice in the Digital Link")
        if not ai.attribute:
            where = "the path" if ai.key or code in _QUALIFIERS else "a barcode, not a link"
            raise IdentifierError(
                f"AI {code} ({ai.title}) is not a Digital Link query attribute: it belongs in "
                + where
            )
        check_ai_value(ai, value)
        seen.add(code)
    for code, _ in attributes:
        ai = table[code]
        if ai.requires and not any(all(_present(p, seen) for p in group) for group in ai.requires):
            needed = " or ".join("+".join(group) for group in ai.requires)
            raise IdentifierError(f"AI {code} ({ai.title}) needs AI {needed} in the same link")
        clash = next((c for c in seen if c != code and _present_in(ai.excludes, c)), None)
        if clash is not None:
            raise IdentifierError(f"AI {code} ({ai.title}) may not appear with AI {clash}")


def _present_in(patterns: Iterable[str], code: str) -> bool:
    return any(_matches(p, code) for p in patterns)


# Key qualifiers: these go in the path after their primary key.
_QUALIFIERS: Final = frozenset({"22", "10", "21", "235", "254", "7040", "8011", "8019"})
