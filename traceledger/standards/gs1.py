"""GS1 identification keys: check digits, EPC URNs, Digital Links, one normalized key.

An EPC URN (EPC Tag Data Standard 2.x: pure identity, class and pattern URIs) and a GS1
Digital Link URI (Digital Link 1.x URI syntax) can name the same thing. Both parse to one
:class:`GS1Key`, whose :meth:`GS1Key.canonical` string is the index key, so a QR code scanned
by a consumer finds the events an enterprise captured with RFID URNs.

:func:`canonical_uri` is a separate, deliberately quirk-compatible function: it reproduces
the identifier normalisation of the EPCIS 2.0 event hash reference implementation, so that
event hash IDs computed here equal everyone else's.

Pure functions, no I/O; tables and regular expressions are built once at import.
"""

from __future__ import annotations

import dataclasses
import functools
import re
from collections.abc import Callable
from dataclasses import dataclass
from urllib.parse import quote

from traceledger.errors import IdentifierError

__all__ = [
    "GS1Key",
    "canonical_uri",
    "check_digit",
    "company_prefix_of_urn",
    "epc_urn",
    "normalize_gtin",
    "parse_digital_link",
    "parse_epc_urn",
    "parse_identifier",
    "verify_check_digit",
]

# ---------------------------------------------------------------------------------------------
# Check digits (GS1 General Specifications 7.9.1, "standard check digit calculations")


def _is_digits(text: str) -> bool:
    """ASCII digits only: str.isdigit() alone also accepts other scripts' digits."""
    return text.isascii() and text.isdigit()


def check_digit(body: str) -> str:
    """GS1 mod-10 check digit for the digits before it (weights 3, 1, 3, ... from the right)."""
    if not _is_digits(body):
        raise IdentifierError(f"a check digit is computed over digits only, got {_show(body)}")
    return _check_digit(body)


def _check_digit(body: str) -> str:
    """check_digit() of text already known to be ASCII digits.

    Summing the ASCII codes and removing 48 ('0') per digit is several times faster than
    int() per character; this runs for every key on the ingest path.
    """
    odd, even = body[::-2], body[-2::-2]
    total = 3 * (sum(odd.encode()) - 48 * len(odd)) + sum(even.encode()) - 48 * len(even)
    return str(-total % 10)


def verify_check_digit(digits: str, what: str = "key") -> None:
    """Raise IdentifierError unless the last digit of `digits` is the check digit of the rest."""
    if len(digits) < 2 or not _is_digits(digits):
        raise IdentifierError(f"{what} must be digits ending in a check digit, got {_show(digits)}")
    _verify(digits, what)


def _verify(digits: str, what: str) -> str:
    """verify_check_digit() of text already known to be ASCII digits; returns it."""
    expected = _check_digit(digits[:-1])
    if digits[-1] != expected:
        raise IdentifierError(f"check digit of {what} {digits} should be {expected}")
    return digits


def normalize_gtin(gtin: str) -> str:
    """GTIN-8, -12, -13 or -14 digits -> GTIN-14 (left zero-padded), check digit verified."""
    if len(gtin) not in (8, 12, 13, 14) or not _is_digits(gtin):
        raise IdentifierError(f"a GTIN has 8, 12, 13 or 14 digits, got {_show(gtin)}")
    return _verify(gtin.zfill(14), "GTIN")


def _show(text: str, limit: int = 120) -> str:
    """repr() of user text for an error message, cut so a huge input cannot flood a log."""
    return repr(text if len(text) <= limit else text[:limit] + "...")


# ---------------------------------------------------------------------------------------------
# Character sets and escaping

# GS1 AI encodable character set 82 (General Specifications 7.11, figure 7.11-1).
_CSET82 = re.compile(r'[!"%-?A-Z_a-z]*')
# Character set 39, for the CPID (AI 8010).
_CSET39 = re.compile(r"[#\-/0-9A-Z]*")
# TDS "GS3A3" component of an EPC URI: the CSET 82 characters that may stand unescaped, or
# %-escapes; '"', '%', '&', '/', '<', '>' and '?' must be escaped (TDS 2.x, table I.3.1-1).
_URN_COMPONENT = re.compile(r"(?:[A-Za-z0-9!'()*+,\-.:;=_]|%[0-9A-Fa-f]{2})*")
_URN_CPI_COMPONENT = re.compile(r"(?:[0-9A-Z\-]|%2[3Ff])*")
_ESCAPE = re.compile(r"%([0-9A-Fa-f]{2})")
_URN_ESCAPES = str.maketrans(
    {'"': "%22", "%": "%25", "&": "%26", "/": "%2F", "<": "%3C", ">": "%3E", "?": "%3F"}
)
_URN_CPI_ESCAPES = str.maketrans({"#": "%23", "/": "%2F"})
# Digital Link values: everything outside RFC 3986 "unreserved" is percent-encoded in our
# canonical form (the DL grammar requires it for every CSET 82 symbol but '"', '-', '.', '_';
# '"' is not a legal URI character, so it is encoded too).
_DL_PLAIN = re.compile(r"[A-Za-z0-9._\-]*")


def _unescape(text: str) -> str:
    return _ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), text) if "%" in text else text


def _dl_encode(value: str) -> str:
    return value if _DL_PLAIN.fullmatch(value) else quote(value, safe="")


# ---------------------------------------------------------------------------------------------
# The normalized key

# scheme -> Digital Link primary key AI
_SCHEME_AI = {
    "gtin": "01",
    "upui": "01",
    "itip": "8006",
    "cpid": "8010",
    "gln": "414",
    "pgln": "417",
    "gsrnp": "8017",
    "gsrn": "8018",
    "gcn": "255",
    "sscc": "00",
    "gdti": "253",
    "ginc": "401",
    "gsin": "402",
    "grai": "8003",
    "giai": "8004",
}
# The key qualifier that carries `serial`, for schemes where it is not appended to the key.
_SERIAL_AI = {"upui": "235", "gln": "254", "cpid": "8011", "gsrn": "8019", "gsrnp": "8019"}
# Schemes whose key starts with one filler/indicator/extension digit before the company prefix.
_GCP_AFTER_FIRST_DIGIT = frozenset({"gtin", "upui", "itip", "sscc", "grai"})
# Schemes where a missing serial means a class of things rather than one thing.
_CLASS_WITHOUT_SERIAL = frozenset({"gtin", "itip", "grai", "gdti", "gcn", "cpid"})


@dataclass(frozen=True, slots=True)
class GS1Key:
    """One thing a GS1 identifier names, normalized so URNs and Digital Links compare equal.

    Build keys with the parse functions: the constructor trusts its arguments.
    ``scheme`` is one of gtin, upui (GTIN + AI 235 third-party serial, kept in ``serial``),
    itip, cpid, gln, pgln, gsrnp, gsrn, gcn, sscc, gdti, ginc, gsin, grai, giai. ``serial``
    holds AI 21 (gtin/itip), AI 235 (upui), the serial part of a GRAI/GDTI/GCN, AI 8011
    (cpid), AI 8019 (gsrn/gsrnp) or the GLN extension AI 254 (gln; "0" means none).
    Values are stored decoded (``"A/B"``, not ``"A%2FB"``).
    """

    scheme: str
    key: str
    lot: str | None = None
    serial: str | None = None
    cpv: str | None = None

    @property
    def level(self) -> str:
        """One thing ("instance"), a GTIN/ITIP lot ("lot") or a class such as a GTIN ("class")."""
        if self.serial is not None or self.scheme not in _CLASS_WITHOUT_SERIAL:
            return "instance"
        return "lot" if self.lot is not None else "class"

    def item_key(self) -> GS1Key:
        """The key of this very thing: a serialized GTIN is one item with or without its lot.

        A QR code may carry GTIN + lot + serial while events name the item by an SGTIN
        (GTIN + serial only); both must find the same item.
        """
        if self.scheme in ("gtin", "itip") and self.serial is not None and self.lot is not None:
            return dataclasses.replace(self, lot=None)
        return self

    def canonical(self) -> str:
        """Stable index key: the Digital Link path without domain or leading slash."""
        scheme = self.scheme
        ai = _SCHEME_AI[scheme]
        if scheme in ("gtin", "itip"):
            out = f"{ai}/{self.key}"
            if self.cpv is not None:
                out += "/22/" + _dl_encode(self.cpv)
            if self.lot is not None:
                out += "/10/" + _dl_encode(self.lot)
            if self.serial is not None:
                out += "/21/" + _dl_encode(self.serial)
            return out
        if scheme in ("giai", "ginc", "cpid"):
            out = f"{ai}/{_dl_encode(self.key)}"
        else:
            out = f"{ai}/{self.key}"
        if self.serial is None:
            return out
        if scheme in ("grai", "gdti", "gcn"):
            return out + _dl_encode(self.serial)
        return f"{out}/{_SERIAL_AI[scheme]}/{_dl_encode(self.serial)}"

    def digital_link(self, base: str = "https://id.gs1.org") -> str:
        """This key as a Digital Link URI on `base` (no trailing slash)."""
        return base + "/" + self.canonical()

    def lot_key(self) -> GS1Key | None:
        """The same GTIN (or ITIP) with its lot only; None without a lot."""
        if self.lot is None or self.scheme not in ("gtin", "itip"):
            return None
        return GS1Key(self.scheme, self.key, lot=self.lot)

    def class_key(self) -> GS1Key | None:
        """The bare GTIN (or ITIP); None for schemes that are not trade items."""
        if self.scheme in ("gtin", "upui"):
            return GS1Key("gtin", self.key)
        if self.scheme == "itip":
            return GS1Key("itip", self.key)
        return None

    def owned_by(self, company_prefix: str) -> bool:
        """Does this key's GS1 company prefix start with (or equal) `company_prefix`?

        The prefix's length is not part of a key, so this is a digit-prefix test at the
        position where the company prefix starts.
        """
        if not _is_digits(company_prefix):
            raise IdentifierError(f"a company prefix is digits, got {_show(company_prefix)}")
        start = 1 if self.scheme in _GCP_AFTER_FIRST_DIGIT else 0
        return self.key.startswith(company_prefix, start)


# ---------------------------------------------------------------------------------------------
# EPC URNs (EPC Tag Data Standard 2.x, sections 6 and 8)

_NON_GS1_SCHEMES = frozenset({"gid", "usdod", "adi", "bic", "imovn"})


class _Urn:
    """One EPC URN being parsed: carries the text for error messages."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def error(self, reason: str) -> IdentifierError:
        return IdentifierError(f"EPC URN {_show(self.text)}: {reason}")

    def prefix(self, cp: str) -> str:
        if not (6 <= len(cp) <= 12 and _is_digits(cp)):
            raise self.error(f"company prefix must be 6 to 12 digits, got {_show(cp)}")
        return cp

    def digits(self, value: str, count: int, what: str) -> str:
        if len(value) != count or (count and not _is_digits(value)):
            raise self.error(f"{what} must be {count} digits here, got {_show(value)}")
        return value

    def text_field(self, value: str, what: str, most: int) -> str:
        """A GS3A3 component: unescape, then check CSET 82 and length."""
        if not value or not _URN_COMPONENT.fullmatch(value):
            raise self.error(f"{what} {_show(value)} has characters an EPC URI must escape")
        decoded = _unescape(value)
        if not _CSET82.fullmatch(decoded):
            raise self.error(f"{what} {_show(value)} escapes a character outside GS1 CSET 82")
        if len(decoded) > most:
            raise self.error(f"{what} is at most {most} characters, got {len(decoded)}")
        return decoded

    def number(self, value: str, what: str, most: int, padded: bool) -> str:
        if not (1 <= len(value) <= most and _is_digits(value)):
            raise self.error(f"{what} must be 1 to {most} digits, got {_show(value)}")
        if not padded and len(value) > 1 and value[0] == "0":
            raise self.error(f"{what} must not have leading zeros, got {_show(value)}")
        return value


def _split(urn: _Urn, body: str, count: int) -> list[str]:
    fields = body.split(".", count - 1)
    if len(fields) != count:
        raise urn.error(f"expected {count} dot-separated fields, got {len(fields)}")
    return fields


def _gtin14(urn: _Urn, cp: str, ir: str) -> str:
    urn.prefix(cp)
    urn.digits(ir, 13 - len(cp), "indicator digit and item reference")
    body = ir[0] + cp + ir[1:]
    return body + _check_digit(body)


def _gln13(urn: _Urn, cp: str, ref: str, what: str) -> str:
    urn.prefix(cp)
    urn.digits(ref, 12 - len(cp), what)
    return cp + ref + _check_digit(cp + ref)


def _serial_or_star(urn: _Urn, value: str, what: str, most: int, pattern: bool) -> str | None:
    if pattern and value == "*":
        return None
    return urn.text_field(value, what, most)


def _urn_sgtin(urn: _Urn, body: str, pattern: bool) -> GS1Key:
    cp, ir, serial = _split(urn, body, 3)
    return GS1Key(
        "gtin", _gtin14(urn, cp, ir), serial=_serial_or_star(urn, serial, "serial", 20, pattern)
    )


def _urn_lgtin(urn: _Urn, body: str, pattern: bool) -> GS1Key:
    cp, ir, lot = _split(urn, body, 3)
    return GS1Key("gtin", _gtin14(urn, cp, ir), lot=urn.text_field(lot, "lot", 20))


def _urn_sscc(urn: _Urn, body: str, pattern: bool) -> GS1Key:
    cp, ref = _split(urn, body, 2)
    urn.prefix(cp)
    urn.digits(ref, 17 - len(cp), "extension digit and serial reference")
    raw = ref[0] + cp + ref[1:]
    return GS1Key("sscc", raw + _check_digit(raw))


def _urn_sgln(urn: _Urn, body: str, pattern: bool) -> GS1Key:
    cp, ref, ext = _split(urn, body, 3)
    gln = _gln13(urn, cp, ref, "location reference")
    extension = _serial_or_star(urn, ext, "extension", 20, pattern)
    return GS1Key("gln", gln, serial=None if extension == "0" else extension)


def _urn_grai(urn: _Urn, body: str, pattern: bool) -> GS1Key:
    cp, ref, serial = _split(urn, body, 3)
    grai = "0" + _gln13(urn, cp, ref, "asset type")
    return GS1Key("grai", grai, serial=_serial_or_star(urn, serial, "serial", 16, pattern))


def _urn_gdti(urn: _Urn, body: str, pattern: bool) -> GS1Key:
    cp, ref, serial = _split(urn, body, 3)
    gdti = _gln13(urn, cp, ref, "document type")
    return GS1Key("gdti", gdti, serial=_serial_or_star(urn, serial, "serial", 17, pattern))


def _urn_sgcn(urn: _Urn, body: str, pattern: bool) -> GS1Key:
    cp, ref, serial = _split(urn, body, 3)
    gcn = _gln13(urn, cp, ref, "coupon reference")
    if pattern and serial == "*":
        return GS1Key("gcn", gcn)
    return GS1Key("gcn", gcn, serial=urn.number(serial, "serial", 12, padded=True))


def _urn_cpi(urn: _Urn, body: str, pattern: bool) -> GS1Key:
    cp, ref, serial = _split(urn, body, 3)
    urn.prefix(cp)
    if not ref or not _URN_CPI_COMPONENT.fullmatch(ref):
        raise urn.error(f"part reference {_show(ref)} must be 0-9, A-Z, '-', %2F or %23")
    cpid = cp + _unescape(ref)
    if len(cpid) > 30:
        raise urn.error(f"a CPID is at most 30 characters, got {len(cpid)}")
    if pattern and serial == "*":
        return GS1Key("cpid", cpid)
    return GS1Key("cpid", cpid, serial=urn.number(serial, "serial", 12, padded=False))


def _urn_giai_like(scheme: str) -> Callable[[_Urn, str, bool], GS1Key]:
    def parse(urn: _Urn, body: str, pattern: bool) -> GS1Key:
        cp, ref = _split(urn, body, 2)
        urn.prefix(cp)
        return GS1Key(scheme, cp + urn.text_field(ref, "reference", 30 - len(cp)))

    return parse


def _urn_numeric(scheme: str, digits: int) -> Callable[[_Urn, str, bool], GS1Key]:
    """GSRN, GSRN-P, GSIN, PGLN: company prefix + reference, then a check digit."""

    def parse(urn: _Urn, body: str, pattern: bool) -> GS1Key:
        cp, ref = _split(urn, body, 2)
        urn.prefix(cp)
        urn.digits(ref, digits - len(cp), "reference")
        return GS1Key(scheme, cp + ref + _check_digit(cp + ref))

    return parse


def _urn_itip(urn: _Urn, body: str, pattern: bool) -> GS1Key:
    cp, ir, piece, total, serial = _split(urn, body, 5)
    gtin = _gtin14(urn, cp, ir)
    urn.digits(piece, 2, "piece number")
    urn.digits(total, 2, "total pieces")
    key = gtin + piece + total
    return GS1Key("itip", key, serial=_serial_or_star(urn, serial, "serial", 20, pattern))


def _urn_upui(urn: _Urn, body: str, pattern: bool) -> GS1Key:
    cp, ir, tpx = _split(urn, body, 3)
    gtin = _gtin14(urn, cp, ir)
    if pattern and tpx == "*":
        return GS1Key("gtin", gtin)
    return GS1Key("upui", gtin, serial=urn.text_field(tpx, "third-party serial", 28))


_URN_PARSERS: dict[str, Callable[[_Urn, str, bool], GS1Key]] = {
    "sgtin": _urn_sgtin,
    "sscc": _urn_sscc,
    "sgln": _urn_sgln,
    "grai": _urn_grai,
    "giai": _urn_giai_like("giai"),
    "gsrn": _urn_numeric("gsrn", 17),
    "gsrnp": _urn_numeric("gsrnp", 17),
    "gdti": _urn_gdti,
    "cpi": _urn_cpi,
    "sgcn": _urn_sgcn,
    "ginc": _urn_giai_like("ginc"),
    "gsin": _urn_numeric("gsin", 16),
    "itip": _urn_itip,
    "upui": _urn_upui,
    "pgln": _urn_numeric("pgln", 12),
}
# idpat schemes whose last field may be '*' (one class of things); other patterns name many keys.
_PATTERN_SCHEMES = frozenset({"sgtin", "sgln", "grai", "gdti", "sgcn", "cpi", "itip", "upui"})
_TAG_SCHEME = re.compile(r"([a-z]+)-(?:[0-9]+|var)")


def _urn_parts(text: str) -> tuple[str, str, str] | None:
    """(category, scheme, body) of an EPC URN; None for URNs not decoded here.

    Those are raw and tag-pattern URIs and tag URIs of TDS 2.0 "+" schemes: valid EPCs,
    but naming no single key without binary decoding.
    """
    parts = text.split(":", 4)
    if len(parts) >= 3 and parts[2].lower() in ("raw", "pat"):
        return None
    if len(parts) != 5 or not parts[4]:
        raise IdentifierError(f"{_show(text)} is not an EPC URN (urn:epc:id:<scheme>:<fields>)")
    category, scheme, body = parts[2].lower(), parts[3].lower(), parts[4]
    if category == "tag":
        tag = _TAG_SCHEME.fullmatch(scheme)
        if tag is None:
            return None
        filter_value, dot, body = body.partition(".")
        if not dot or len(filter_value) != 1 or not _is_digits(filter_value):
            raise IdentifierError(f"EPC tag URI {_show(text)}: missing filter value")
        scheme = tag.group(1)
    elif category not in ("id", "class", "idpat"):
        raise IdentifierError(f"{_show(text)}: unknown EPC URI category {_show(category)}")
    return category, scheme, body


def _parse_urn(text: str) -> GS1Key | None:
    """GS1Key of an EPC URN, or None for a well-formed URN that names no single GS1 key."""
    parts = _urn_parts(text)
    if parts is None:
        return None
    category, scheme, body = parts
    if scheme in _NON_GS1_SCHEMES:
        return None
    urn = _Urn(text)
    if category == "class":
        if scheme != "lgtin":
            raise urn.error(f"unknown EPC class scheme {_show(scheme)}")
        return _urn_lgtin(urn, body, False)
    parser = _URN_PARSERS.get(scheme)
    if parser is None:
        raise urn.error(f"unknown EPC scheme {_show(scheme)}")
    pattern = category == "idpat"
    if pattern and (
        body.startswith("*.")
        or ".*." in body
        or (body.endswith(".*") and scheme not in _PATTERN_SCHEMES)
    ):
        raise urn.error("this pattern matches many GS1 keys, not one class of things")
    return parser(urn, body, pattern)


def parse_epc_urn(urn: str) -> GS1Key:
    """An EPC pure identity URN, lgtin class URN, id pattern URN (last field '*') or tag URN."""
    if urn[:8].lower() != "urn:epc:":
        raise IdentifierError(f"{_show(urn)} is not an EPC URN (urn:epc:...)")
    key = _parse_urn(urn)
    if key is None:
        raise IdentifierError(f"EPC URN {_show(urn)} names no GS1 key")
    return key


def company_prefix_of_urn(urn: str) -> str | None:
    """The GS1 company prefix as an EPC URN encodes it (digits before the first dot).

    None for text that is not a GS1 EPC URN; IdentifierError for a malformed one.
    """
    if urn[:8].lower() != "urn:epc:":
        return None
    parts = _urn_parts(urn)
    if parts is None or parts[1] in _NON_GS1_SCHEMES:
        return None
    parse_epc_urn(urn)
    return parts[2].split(".", 1)[0]


def epc_urn(key: GS1Key, company_prefix_length: int) -> str:
    """`key` as an EPC URN, with the company prefix `company_prefix_length` digits long.

    Serialized keys give pure identity URNs; a GTIN with lot only gives an lgtin class URN;
    classes (GTIN, ITIP, GRAI/GDTI/GCN/CPID without serial) give id pattern URNs ending
    in '*'. What EPC URNs cannot carry is dropped: the lot beside a serial, the CPV, and
    the GSRN service relation instance (AI 8019).
    """
    length = company_prefix_length
    scheme, k = key.scheme, key.key
    start = 1 if scheme in _GCP_AFTER_FIRST_DIGIT else 0
    cp = k[start : start + length]
    if not 6 <= length <= 12 or len(cp) != length or not _is_digits(cp):
        raise IdentifierError(
            f"{key.canonical()} has no {length}-digit company prefix (TDS allows 6 to 12)"
        )
    if scheme in ("giai", "ginc", "cpid") and len(k) <= length:
        raise IdentifierError(f"{key.canonical()} has nothing after its company prefix")
    serial = None if key.serial is None else key.serial.translate(_URN_ESCAPES)
    if scheme in ("gtin", "upui", "itip"):
        ir = k[0] + k[1 + length : 13]
        urn_scheme = {"gtin": "sgtin", "upui": "upui", "itip": "itip"}[scheme]
        if scheme == "itip":
            ir += f".{k[14:16]}.{k[16:18]}"
        if serial is not None:
            return f"urn:epc:id:{urn_scheme}:{cp}.{ir}.{serial}"
        if key.lot is not None and scheme == "gtin":
            return f"urn:epc:class:lgtin:{cp}.{ir}.{key.lot.translate(_URN_ESCAPES)}"
        return f"urn:epc:idpat:{urn_scheme}:{cp}.{ir}.*"
    if scheme == "sscc":
        return f"urn:epc:id:sscc:{cp}.{k[0]}{k[1 + length : 17]}"
    if scheme in ("giai", "ginc"):
        return f"urn:epc:id:{scheme}:{cp}.{k[length:].translate(_URN_ESCAPES)}"
    if scheme == "cpid":
        ref = k[length:].translate(_URN_CPI_ESCAPES)
        return f"urn:epc:{'id' if serial else 'idpat'}:cpi:{cp}.{ref}.{serial or '*'}"
    if scheme in ("gsrn", "gsrnp", "gsin", "pgln"):
        return f"urn:epc:id:{scheme}:{cp}.{k[length:-1]}"
    ref = k[start + length : start + 12]
    if scheme == "gln":
        return f"urn:epc:id:sgln:{cp}.{ref}.{serial or '0'}"
    urn_scheme = {"grai": "grai", "gdti": "gdti", "gcn": "sgcn"}[scheme]
    if serial is None:
        return f"urn:epc:idpat:{urn_scheme}:{cp}.{ref}.*"
    return f"urn:epc:id:{urn_scheme}:{cp}.{ref}.{serial}"


# ---------------------------------------------------------------------------------------------
# GS1 Digital Link URIs (Digital Link standard 1.x, URI syntax and its ABNF grammar)

_DL_PRIMARY = {
    "01": "gtin",
    "8006": "itip",
    "8010": "cpid",
    "414": "gln",
    "417": "pgln",
    "8017": "gsrnp",
    "8018": "gsrn",
    "255": "gcn",
    "00": "sscc",
    "253": "gdti",
    "401": "ginc",
    "402": "gsin",
    "8003": "grai",
    "8004": "giai",
}
# Digital Link 1.1 short names, still met in the wild.
_DL_ALIASES = {
    "gtin": "01",
    "itip": "8006",
    "cpid": "8010",
    "gln": "414",
    "party": "417",
    "gsrnp": "8017",
    "gsrn": "8018",
    "gcn": "255",
    "sscc": "00",
    "gdti": "253",
    "ginc": "401",
    "gsin": "402",
    "grai": "8003",
    "giai": "8004",
    "cpv": "22",
    "lot": "10",
    "ser": "21",
}
# Key qualifiers, in the only order the grammar allows.
_DL_QUALIFIERS: dict[str, tuple[str, ...]] = {
    "01": ("22", "10", "21"),
    "8006": ("22", "10", "21"),
    "8010": ("8011",),
    "414": ("254",),
    "8017": ("8019",),
    "8018": ("8019",),
}
# Longest value of each key qualifier (GS1 General Specifications, AI table).
_QUALIFIER_MOST = {"22": 20, "10": 20, "21": 20, "235": 28, "254": 20, "8011": 12, "8019": 10}
_FOUR_DIGITS = re.compile(r"[0-9]{4}")
_AI_NAMES = {
    "01": "GTIN",
    "8006": "ITIP",
    "8010": "CPID",
    "414": "GLN",
    "417": "party GLN",
    "8017": "GSRN-P",
    "8018": "GSRN",
    "255": "GCN",
    "00": "SSCC",
    "253": "GDTI",
    "401": "GINC",
    "402": "GSIN",
    "8003": "GRAI",
    "8004": "GIAI",
    "22": "CPV",
    "10": "lot",
    "21": "serial",
    "235": "third-party serial",
    "254": "GLN extension",
    "8011": "CPID serial",
    "8019": "service relation instance",
}


class _DL:
    """One Digital Link being parsed: carries the text for error messages."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text

    def error(self, reason: str) -> IdentifierError:
        return IdentifierError(f"Digital Link {_show(self.text)}: {reason}")

    def decode(self, ai: str, raw: str) -> str:
        """Percent-decode one path value and check its character set (CSET 39 for a CPID)."""
        if not raw:
            raise self.error(f"AI {ai} has an empty value")
        if "%" in raw:
            if raw.count("%") != len(_ESCAPE.findall(raw)):
                raise self.error(f"bad percent-encoding in {_show(raw)}")
            raw = _unescape(raw)
        if ai == "8010":
            if not _CSET39.fullmatch(raw):
                raise self.error(f"CPID {_show(raw)} may only hold 0-9, A-Z, '#', '-' and '/'")
        elif not _CSET82.fullmatch(raw):
            raise self.error(f"AI {ai} value {_show(raw)} has characters outside GS1 CSET 82")
        return raw

    def keyed(self, ai: str, value: str, digits: int) -> str:
        """`digits` digits ending in a valid check digit."""
        if len(value) != digits or not _is_digits(value):
            raise self.error(f"{_AI_NAMES[ai]} must be {digits} digits, got {_show(value)}")
        return _verify(value, _AI_NAMES[ai])

    def text_value(self, what: str, value: str, most: int) -> str:
        if len(value) > most:
            raise self.error(f"{what} is at most {most} characters, got {len(value)}")
        return value

    def number(self, what: str, value: str, most: int) -> str:
        if not (len(value) <= most and _is_digits(value)):
            raise self.error(f"{what} must be 1 to {most} digits, got {_show(value)}")
        return value


# Candidate key positions tried in one Digital Link path (see _parse_dl).
_MAX_DL_STARTS = 4


def _dl_path(uri: str) -> tuple[str, list[str]] | None:
    """(host, path segments) of an http(s) URI; None for anything else."""
    lead = uri[:8].lower()
    if lead.startswith("https://"):
        rest = uri[8:]
    elif lead.startswith("http://"):
        rest = uri[7:]
    else:
        return None
    end = len(rest)
    for stop in ("?", "#"):
        at = rest.find(stop)
        if 0 <= at < end:
            end = at
    rest = rest[:end]
    slash = rest.find("/")
    if slash < 0:
        return rest, []
    segments = rest[slash + 1 :].split("/")
    if segments[-1] == "":
        segments.pop()
    return rest[:slash].lower(), segments


def _dl_starts(segments: list[str]) -> list[int]:
    """Where a primary key could start: an AI, a value, then AI/value pairs to the end.

    One pass from the end (`pairs[j]`: segments j.. are AI/value pairs), so the cost is
    linear in the path however many AI-like segments an untrusted path repeats."""
    n = len(segments)
    pairs = [True] * (n + 2)
    for j in range(n - 1, -1, -1):
        token = segments[j]
        ai_like = token in _QUALIFIER_MOST or token in _DL_ALIASES
        pairs[j] = (ai_like or (1 < len(token) < 5 and _is_digits(token))) and pairs[j + 2]
    return [
        i
        for i in range(n - 1)
        if _DL_ALIASES.get(segments[i], segments[i]) in _DL_PRIMARY and pairs[i + 2]
    ]


def _dl_key(dl: _DL, segments: list[str]) -> GS1Key:
    """Parse `segments` = [primary AI, value, qualifier AI, value, ...] strictly."""
    ai = _DL_ALIASES.get(segments[0], segments[0])
    value = dl.decode(ai, segments[1])
    qualifiers: dict[str, str] = {}
    allowed = _DL_QUALIFIERS.get(ai, ())
    position = -1
    for j in range(2, len(segments), 2):
        q = _DL_ALIASES.get(segments[j], segments[j])
        if j + 1 >= len(segments):
            raise dl.error(f"AI {q} has no value")
        if ai == "01" and q == "235":
            if j != 2 or len(segments) != 4:
                raise dl.error("AI 235 must be the only key qualifier after a GTIN")
            qualifiers[q] = dl.text_value(_AI_NAMES[q], dl.decode(q, segments[j + 1]), 28)
            continue
        if q == "7040":
            raise dl.error("AI 7040 (GS1 UIC extension) is not supported")
        if q not in allowed:
            raise dl.error(f"AI {q} is not a key qualifier of {_AI_NAMES[ai]} (AI {ai})")
        index = allowed.index(q)
        if index <= position:
            raise dl.error(f"key qualifiers of AI {ai} must come in the order {'/'.join(allowed)}")
        position = index
        value_q = dl.decode(q, segments[j + 1])
        qualifiers[q] = dl.text_value(_AI_NAMES[q], value_q, _QUALIFIER_MOST[q])
    scheme = _DL_PRIMARY[ai]
    if ai == "01":
        if len(value) not in (8, 12, 13, 14) or not _is_digits(value):
            raise dl.error(f"GTIN must be 8, 12, 13 or 14 digits, got {_show(value)}")
        gtin = _verify(value.zfill(14), "GTIN")
        if "235" in qualifiers:
            return GS1Key("upui", gtin, serial=qualifiers["235"])
        get = qualifiers.get
        return GS1Key("gtin", gtin, lot=get("10"), serial=get("21"), cpv=get("22"))
    if ai == "8006":
        if len(value) != 18 or not _is_digits(value):
            raise dl.error(f"ITIP must be 18 digits, got {_show(value)}")
        get = qualifiers.get
        itip = dl.keyed("01", value[:14], 14) + value[14:]
        return GS1Key(scheme, itip, lot=get("10"), serial=get("21"), cpv=get("22"))
    if ai == "414":
        ext = qualifiers.get("254")
        return GS1Key(scheme, dl.keyed(ai, value, 13), serial=None if ext == "0" else ext)
    if ai in ("00", "8017", "8018", "402", "417"):
        digits = {"00": 18, "8017": 18, "8018": 18, "402": 17, "417": 13}[ai]
        srin = qualifiers.get("8019")
        serial = None if srin is None else dl.number(_AI_NAMES["8019"], srin, 10)
        return GS1Key(scheme, dl.keyed(ai, value, digits), serial=serial)
    if ai in ("8003", "253", "255"):
        size = 14 if ai == "8003" else 13
        if ai == "8003" and value[0] != "0":
            raise dl.error(f"GRAI must start with the filler digit 0, got {_show(value)}")
        key, tail = dl.keyed(ai, value[:size], size), value[size:]
        if not tail:
            return GS1Key(scheme, key)
        what = f"{_AI_NAMES[ai]} serial"
        if ai == "255":
            return GS1Key(scheme, key, serial=dl.number(what, tail, 12))
        return GS1Key(scheme, key, serial=dl.text_value(what, tail, 16 if ai == "8003" else 17))
    if ai == "8010":
        serial = qualifiers.get("8011")
        if serial is not None and (serial[0] == "0" and len(serial) > 1):
            raise dl.error(f"CPID serial must not have leading zeros, got {_show(serial)}")
        return GS1Key(
            scheme,
            dl.text_value("CPID", value, 30),
            serial=None if serial is None else dl.number(_AI_NAMES["8011"], serial, 12),
        )
    return GS1Key(scheme, dl.text_value(_AI_NAMES[ai], value, 30))  # 8004 GIAI, 401 GINC


def _parse_dl(uri: str, strict: bool) -> GS1Key | None:
    """GS1Key of a Digital Link. Not strict: None unless the URI plausibly holds a GS1 key."""
    found = _dl_path(uri)
    if found is None:
        if strict:
            raise IdentifierError(f"{_show(uri)} is not an http(s) URI")
        return None
    host, segments = found
    dl = _DL(uri)
    starts = _dl_starts(segments)
    if not strict:
        canonical_host = host == "id.gs1.org"
        starts = [
            i for i in starts if canonical_host or _FOUR_DIGITS.match(_unescape(segments[i + 1]))
        ]
    if not starts:
        if strict:
            raise dl.error("no GS1 primary key (such as /01/<GTIN>) in its path")
        return None
    first_error: IdentifierError | None = None
    # A path prefix before the key rarely looks like AI/value pairs; trying a few starts
    # keeps an untrusted path that repeats "/414/" thousands of times linear to parse.
    for start in starts[:_MAX_DL_STARTS]:
        try:
            return _dl_key(dl, segments[start:])
        except IdentifierError as error:
            first_error = first_error or error
    assert first_error is not None
    raise first_error


def parse_digital_link(uri: str) -> GS1Key:
    """A GS1 Digital Link URI on any http(s) host, with any path prefix; query ignored."""
    key = _parse_dl(uri, strict=True)
    assert key is not None
    return key


def parse_identifier(uri: str) -> GS1Key | None:
    """EPC URN or Digital Link -> GS1Key; any other URI -> None; malformed GS1 -> error.

    An http(s) URI counts as a Digital Link when its path holds a primary key AI followed
    by a value starting with four digits (any value on id.gs1.org).
    """
    # The same read point, location and product class recur across a document's events
    # and across documents: ordinary identifiers are parsed once (keys are immutable).
    if len(uri) <= _CACHED_LENGTH:
        return _parse_cached(uri)
    return _parse_identifier(uri)


_CACHED_LENGTH = 200  # longer ones are rare, and would make the cache's memory unbounded


@functools.lru_cache(maxsize=1 << 14)
def _parse_cached(uri: str) -> GS1Key | None:
    return _parse_identifier(uri)


def _parse_identifier(uri: str) -> GS1Key | None:
    head = uri[:8]
    if head == "urn:epc:" or head.lower() == "urn:epc:":
        return _parse_urn(uri)
    if head[:4].lower() == "http":
        return _parse_dl(uri, strict=False)
    return None


# ---------------------------------------------------------------------------------------------
# canonical_uri: the identifier normalisation of the EPCIS 2.0 event hash algorithm, exactly as
# the reference implementation does it (epcis-event-hash-generator 1.9.3, dl_normaliser.py,
# MIT licence, (c) 2019-2023 Ralph Troeger; github.com/RalphTro/epcis-event-hash-generator).
# Its patterns are reproduced with identical matching behaviour, its quirks included (no check
# digit verification of Digital Links, GRAI/GDTI patterns for 12-digit prefixes, escapes left as
# they are, every "/01/" rewritten when padding a GTIN, ...): a hash must match the reference
# byte for byte, so correctness here means sameness. tests/test_gs1.py compares both.

_R_CH = (
    r"(?:%2[125-9A-Fa-f]|%3[0-9A-Fa-f]|%4[1-9A-Fa-f]|%5[0-9AaFf]|%6[1-9A-Fa-f]|%7[0-9Aa]"
    r"|[!')(*+,.0-9:;=A-Za-z_-])"
)
_R_CPI_CH = r"(?:%2[3dfDF]|%3[0-9]|%4[1-9A-Fa-f]|%5[0-9Aa]|[0-9A-Z-])"


def parse_index_key(key: str) -> GS1Key | None:
    """A GS1 key from an index key ("01/<gtin>/10/<lot>", see indexer.index_key) or from
    an identifier as written (EPC URN, Digital Link); None if it names no GS1 key."""
    # A history or a trace reads the same keys back from the index hundreds of times.
    if len(key) <= _CACHED_LENGTH:
        return _index_key_cached(key)
    return _parse_index_key(key)


@functools.lru_cache(maxsize=1 << 14)
def _index_key_cached(key: str) -> GS1Key | None:
    return _parse_index_key(key)


def _parse_index_key(key: str) -> GS1Key | None:
    try:
        if key[:1].isdigit():
            return parse_digital_link("https://id.gs1.org/" + key)
        return parse_identifier(key)
    except IdentifierError:
        return None


def _r_cp(total: int, twelve: str | None = None) -> str:
    """Company prefix (6-12 digits) '.' reference, `total` digits together."""
    forms = [rf"\d{{{n}}}\.\d{{{total - n}}}" for n in range(6, 13) if total - n > 0]
    if twelve is not None:
        forms.append(twelve)
    return "(?:" + "|".join(forms) + ")"


def _r_cp_text(char: str, total: int) -> str:
    """Company prefix '.' text reference, at most `total` characters together."""
    return "(?:" + "|".join(rf"\d{{{n}}}\.{char}{{1,{total - n}}}" for n in range(6, 13)) + ")"


def _r_cd(digits: str) -> str:
    """The reference's check digit: int() per character (so other scripts' digits count)."""
    return str(-(3 * sum(int(c) for c in digits[::-2]) + sum(int(c) for c in digits[-2::-2])) % 10)


def _r_enc(text: str) -> str:
    for char, code in (
        ("!", "%21"),
        ("(", "%28"),
        (")", "%29"),
        ("*", "%2A"),
        ("+", "%2B"),
        (",", "%2C"),
        (":", "%3A"),
    ):
        text = text.replace(char, code)
    return text


def _r_gtin(uri: str, start: int, dot: int) -> str:
    cp = uri[start:dot]
    ir = uri[dot + 1 : dot + 1 + (13 - len(cp))]
    raw = ir[:1] + cp + ir[1:]
    return raw + _r_cd(raw)


def _r_gln(uri: str, start: int, dot: int, lead: str = "") -> str:
    cp = uri[start:dot]
    raw = lead + cp + uri[dot + 1 : dot + 1 + (12 - len(cp))]
    return raw + _r_cd(raw)


_ID = "https://id.gs1.org/"
_TWELVE = r"\d{12}\."
_TWELVE_QUIRK = r"\d{12}\.\."
_R_URN: dict[str, tuple[re.Pattern[str], Callable[[str, int], str]]] = {
    "urn:epc:id:sgtin:": (
        re.compile(rf"{_r_cp(13)}\.{_R_CH}{{1,20}}$"),
        lambda u, d: f"{_ID}01/{_r_gtin(u, 17, d)}/21/{_r_enc(u[32:])}",
    ),
    "urn:epc:id:sscc:": (
        re.compile(rf"{_r_cp(17)}$"),
        lambda u, d: (
            f"{_ID}00/{u[d + 1 : d + 2]}{u[16:d]}{u[d + 2 :]}"
            + _r_cd(u[d + 1 : d + 2] + u[16:d] + u[d + 2 :])
        ),
    ),
    "urn:epc:id:sgln:": (
        re.compile(rf"{_r_cp(12, _TWELVE)}\.{_R_CH}{{1,20}}$"),
        lambda u, d: (
            f"{_ID}414/{_r_gln(u, 16, d)}" + ("" if u[30:] == "0" else "/254/" + _r_enc(u[30:]))
        ),
    ),
    "urn:epc:id:grai:": (
        re.compile(rf"{_r_cp(12, _TWELVE_QUIRK)}\.{_R_CH}{{1,16}}$"),
        lambda u, d: f"{_ID}8003/{_r_gln(u, 16, d, '0')}{_r_enc(u[30:])}",
    ),
    "urn:epc:id:giai:": (
        re.compile(rf"{_r_cp_text(_R_CH, 30)}$"),
        lambda u, d: f"{_ID}8004/{u[16:d]}{_r_enc(u[d + 1 :])}",
    ),
    "urn:epc:id:gsrn:": (
        re.compile(rf"{_r_cp(17)}$"),
        lambda u, d: f"{_ID}8018/{u[16:d]}{u[d + 1 :]}{_r_cd(u[16:d] + u[d + 1 :])}",
    ),
    "urn:epc:id:gsrnp:": (
        re.compile(rf"{_r_cp(17)}$"),
        lambda u, d: f"{_ID}8017/{u[17:d]}{u[d + 1 :]}{_r_cd(u[17:d] + u[d + 1 :])}",
    ),
    "urn:epc:id:gdti:": (
        re.compile(rf"{_r_cp(12, _TWELVE_QUIRK)}{_R_CH}{{1,20}}$"),
        lambda u, d: f"{_ID}253/{_r_gln(u, 16, d)}{_r_enc(u[30:])}",
    ),
    "urn:epc:id:cpi:": (
        re.compile(rf"{_r_cp_text(_R_CPI_CH, 30)}\.\d{{1,12}}$"),
        lambda u, d: (
            f"{_ID}8010/{_r_enc(u[15:d] + u[d + 1 : u.rfind('.')])}/8011/{u[u.rfind('.') + 1 :]}"
        ),
    ),
    "urn:epc:id:sgcn:": (
        re.compile(rf"{_r_cp(12, _TWELVE)}\.\d{{1,12}}$"),
        lambda u, d: f"{_ID}255/{_r_gln(u, 16, d)}{u[30:]}",
    ),
    "urn:epc:id:ginc:": (
        re.compile(rf"{_r_cp_text(_R_CH, 30)}$"),
        lambda u, d: f"{_ID}401/{u[16:d]}{_r_enc(u[d + 1 :])}",
    ),
    "urn:epc:id:gsin:": (
        re.compile(rf"{_r_cp(16)}$"),
        lambda u, d: f"{_ID}402/{u[16:d]}{u[d + 1 :]}{_r_cd(u[16:d] + u[d + 1 :])}",
    ),
    "urn:epc:id:itip:": (
        re.compile(rf"{_r_cp(13)}\.\d{{2}}\.\d{{2}}\.{_R_CH}{{1,20}}$"),
        lambda u, d: f"{_ID}8006/{_r_gtin(u, 16, d)}{u[31:33]}{u[34:36]}/21/{_r_enc(u[37:])}",
    ),
    "urn:epc:id:upui:": (
        re.compile(rf"{_r_cp(13)}\.{_R_CH}{{1,28}}$"),
        lambda u, d: f"{_ID}01/{_r_gtin(u, 16, d)}/235/{_r_enc(u[31:])}",
    ),
    "urn:epc:id:pgln:": (
        re.compile(rf"{_r_cp(12, _TWELVE)}$"),
        lambda u, d: f"{_ID}417/{_r_gln(u, 16, d)}",
    ),
    "urn:epc:class:lgtin:": (
        re.compile(rf"{_r_cp(13)}\.{_R_CH}{{1,20}}$"),
        lambda u, d: f"{_ID}01/{_r_gtin(u, 20, d)}/10/{_r_enc(u[35:])}",
    ),
    "urn:epc:idpat:sgtin:": (
        re.compile(rf"{_r_cp(13)}\.\*$"),
        lambda u, d: f"{_ID}01/{_r_gtin(u, 20, d)}",
    ),
    "urn:epc:idpat:grai:": (
        re.compile(rf"{_r_cp(12, _TWELVE_QUIRK)}\.\*$"),
        lambda u, d: f"{_ID}8003/{_r_gln(u, 19, d, '0')}",
    ),
    "urn:epc:idpat:gdti:": (
        re.compile(rf"{_r_cp(12, _TWELVE_QUIRK)}\.\*$"),
        lambda u, d: f"{_ID}253/{_r_gln(u, 19, d)}",
    ),
    "urn:epc:idpat:sgcn:": (
        re.compile(rf"{_r_cp(12, _TWELVE_QUIRK)}\.\*$"),
        lambda u, d: f"{_ID}255/{_r_gln(u, 19, d)}",
    ),
    "urn:epc:idpat:cpi:": (
        re.compile(rf"{_r_cp_text(_R_CPI_CH, 30)}\.\*$"),
        lambda u, d: f"{_ID}8010/{_r_enc(u[18:d] + u[d + 1 : u.rfind('.')])}",
    ),
    "urn:epc:idpat:itip:": (
        re.compile(rf"{_r_cp(13)}\.\d{{2}}\.\d{{2}}\.\*$"),
        lambda u, d: f"{_ID}8006/{_r_gtin(u, 19, d)}{u[34:36]}{u[37:39]}",
    ),
    "urn:epc:idpat:upui:": (
        re.compile(rf"{_r_cp(13)}\.\*$"),
        lambda u, d: f"{_ID}01/{_r_gtin(u, 19, d)}",
    ),
}

_R_DL_KEYS = (
    "01|gtin|8006|itip|8010|cpid|414|gln|417|party|8017|gsrnp|8018|gsrn|255|gcn|00|sscc|253|gdti"
    "|401|ginc|402|gsin|8003|grai|8004|giai"
)
# Boolean equivalent of the reference's Digital Link pattern: its optional groups cannot
# change whether re.match succeeds, so only the parts that must match are kept.
_R_DL = re.compile(
    rf"https?:(?:[^?#]*/(?:{_R_DL_KEYS})/\d{{4}}[^/]"
    r"|(?://(?:[^/?#]*@)?[^/?#:]*(?::[^/?#]*)?)?/[A-Za-z_-]{10}$)"
)
_R_ALIASES = (
    ("/gtin/", "/01/"),
    ("/itip/", "/8006/"),
    ("/cpid/", "/8010/"),
    ("/gln/", "/414/"),
    ("/party/", "/417/"),
    ("/gsrnp/", "/8017/"),
    ("/gsrn/", "/8018/"),
    ("/gcn/", "/255/"),
    ("/sscc/", "/00/"),
    ("/gdti/", "/253/"),
    ("/ginc/", "/401/"),
    ("/gsin/", "/402/"),
    ("/grai/", "/8003/"),
    ("/giai/", "/8004/"),
    ("/cpv/", "/22/"),
    ("/lot/", "/10/"),
    ("/ser/", "/21/"),
)
_R_ON_ID = re.compile(
    r"https://id.gs1.org/(?:01|8006|8010|414|417|8017|8018|255|00|253|401|402|8003|8004)"
    r"/\d{4}[^/]"
)
_R_REBASE: tuple[str, ...] = ("/00/", "/01/", "/253/", "/255/", "/401/", "/402/", "/414/")
_R_REBASE += ("/417/", "/8003/", "/8004/", "/8006/", "/8010/", "/8017/", "/8018/")
_R_V = r"[\x22\x27\x2D\x2E\x30-\x39\x3B-\x3F\x41-\x5A\x5F\x61-\x7A]"
_R_V_SLASH = r"[\x2F\x22\x27\x2D\x2E\x30-\x39\x3B-\x3F\x41-\x5A\x5F\x61-\x7A]"
_R_GTIN14 = re.compile(r"https://id.gs1.org/01/\d{14}")
_R_GTIN13 = re.compile(r"https://id.gs1.org/01/\d{13}")
_R_GTIN12 = re.compile(r"https://id.gs1.org/01/\d{12}")
_R_GTIN8 = re.compile(r"https://id.gs1.org/01/\d{8}")
_R_CPV_LAST = re.compile(rf"https://id.gs1.org/(?:8006/\d{{18}}|01/\d{{14}})/22/{_R_V}{{0,20}}$")
_R_CPV_MORE = re.compile(
    rf"https://id.gs1.org/(?:8006/\d{{18}}|01/\d{{14}})/22/{_R_V_SLASH}{{0,20}}$"
)
_R_LOT_AND_SERIAL = re.compile(
    rf"https://id.gs1.org/(?:8006/\d{{18}}|01/\d{{14}})/10/{_R_V}{{0,20}}/21/{_R_V}{{0,20}}$"
)
_R_VALID = re.compile(
    "https://id.gs1.org/(?:"
    + "|".join(
        (
            r"00/\d{18}",
            rf"01/\d{{14}}/21/{_R_V}{{0,20}}",
            rf"01/\d{{14}}/10/{_R_V}{{0,20}}",
            r"01/\d{14}",
            rf"01/\d{{14}}/235/{_R_V}{{0,28}}",
            rf"253/\d{{13}}{_R_V}{{0,17}}",
            r"255/\d{13}\d{0,12}",
            rf"401/{_R_V}{{0,30}}",
            r"402/\d{17}",
            r"414/\d{13}",
            rf"414/\d{{13}}/254/{_R_V}{{0,20}}",
            r"417/\d{13}",
            rf"8003/\d{{14}}{_R_V}{{0,16}}",
            rf"8004/{_R_V}{{0,30}}",
            rf"8006/\d{{18}}/21/{_R_V}{{0,20}}",
            rf"8006/\d{{18}}/10/{_R_V}{{0,20}}",
            r"8006/\d{18}",
            r"8010/[\x23\x2D\x2F\x30-\x39\x41-\x5A]{0,30}/8011/\d{0,12}",
            r"8010/[\x23\x2D\x2F\x30-\x39\x41-\x5A]{0,30}",
            r"8017/\d{18}",
            r"8018/\d{18}",
        )
    )
    + ")$"
)


def _reference_dl(uri: str) -> str | None:
    """The reference's Digital Link branch, step by step."""
    if _R_DL.match(uri) is None:
        return None
    query = uri.find("?")
    if query >= 0:
        uri = uri[:query]
    for alias, ai in _R_ALIASES:
        uri = uri.replace(alias, ai)
    if _R_ON_ID.match(uri) is None:
        for ai in _R_REBASE:
            at = uri.find(ai)
            if at != -1:
                uri = "https://id.gs1.org" + uri[at:]
                break
    if _R_GTIN14.match(uri) is None:
        if _R_GTIN13.match(uri) is not None:
            uri = uri.replace("/01/", "/01/0")
        elif _R_GTIN12.match(uri) is not None:
            uri = uri.replace("/01/", "/01/00")
        elif _R_GTIN8.match(uri) is not None:
            uri = uri.replace("/01/", "/01/000000")
    after_cpv = uri[uri.find("/22/") + 4 :]
    if _R_CPV_LAST.match(uri) is not None:
        uri = uri[: uri.find("/22/")] + after_cpv[after_cpv.find("/") : -1]
    if _R_CPV_MORE.match(uri) is not None:
        uri = uri[: uri.find("/22/")] + after_cpv[after_cpv.find("/") :]
    if _R_LOT_AND_SERIAL.match(uri) is not None:
        after_lot = uri[uri.find("/10/") + 4 :]
        uri = uri[: uri.find("/10/")] + after_lot[after_lot.find("/") :]
    return uri if _R_VALID.match(uri) is not None else None


def canonical_uri(uri: str) -> str:
    """The form of an identifier that the EPCIS 2.0 / CBV 2.0 event hash algorithm hashes.

    EPC URNs and Digital Links become canonical Digital Links on https://id.gs1.org exactly
    as the reference event hash generator makes them; anything else, including identifiers
    the reference cannot normalise, comes back unchanged. Never raises for a str.
    """
    if "." not in uri:
        return uri
    if uri.startswith("urn:epc:"):
        colon = uri.find(":", uri.find(":", 8) + 1)
        entry = _R_URN.get(uri[: colon + 1]) if colon > 0 else None
        if entry is None:
            return uri
        pattern, build = entry
        if pattern.match(uri, colon + 1) is None:
            return uri
        try:
            return build(uri, uri.index("."))
        except ValueError:  # the reference fails here (a trailing newline); keep the text
            return uri
    if uri.startswith("http"):
        try:
            return _reference_dl(uri) or uri
        except ValueError:
            return uri
    return uri
