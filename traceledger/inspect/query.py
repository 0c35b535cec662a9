"""The EPCIS 2.0 query subset: events by type, time, vocabulary, identifier and place.

`parse_query` turns REST query parameters (EPCIS 2.0 REST binding names) into an
:class:`EventQuery`; :class:`QueryService` answers it with one SQL statement over the
index (``events``, ``event_keys``), a page at a time. Pages are keyset-paginated on
(eventTime, index), so following ``nextPageToken`` never repeats or skips an event,
however many pages there are. Who asks decides what is seen: inspectors and regulators
see every event, an enterprise the events it signed and those naming its own goods.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from traceledger.accounts.provenance import provenance
from traceledger.errors import IdentifierError, QueryParameterError
from traceledger.standards import cbv
from traceledger.standards.epcis import EVENT_TYPES, parse_time
from traceledger.standards.eventhash import hash_id_digest
from traceledger.standards.gs1 import GS1Key, parse_identifier

DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 1000
MAX_VALUES = 100  # values in one list parameter
CONFIDENTIAL_FIELD = "traceledger:confidential"
# Never withheld, so a shown event stays a valid EPCIS event.
_ESSENTIAL = frozenset({"type", "eventTime", "eventTimeZoneOffset", "eventID", "action"})

# Identifier roles of event_keys (see traceledger.epcis.raw_mentions).
EPC_ROLES = ("epc", "child", "input", "output")
ANY_EPC_ROLES = (*EPC_ROLES, "parent")
CLASS_ROLES = ("class", "childClass", "inputClass", "outputClass")
# The "what" of an event: an enterprise sees events naming its goods in these roles
# (not merely its locations or parties, which say where, not whose).
GOODS_ROLES = (*ANY_EPC_ROLES, *CLASS_ROLES, "lotMember")

# Where the GS1 company prefix sits in an index key: (Digital Link primary key AI, whether
# one indicator/extension digit comes first). Mirrors GS1Key.owned_by for every scheme.
_KEY_LAYOUT = (
    ("01", True),  # GTIN (and UPUI)
    ("8006", True),  # ITIP
    ("00", True),  # SSCC
    ("8003", True),  # GRAI
    ("414", False),  # GLN
    ("417", False),  # PGLN
    ("8004", False),  # GIAI
    ("8010", False),  # CPID
    ("8017", False),  # GSRN-P
    ("8018", False),  # GSRN
    ("253", False),  # GDTI
    ("255", False),  # GCN
    ("401", False),  # GINC
    ("402", False),  # GSIN
)
# Schemes whose serial is appended to the key itself rather than after "/<AI>/".
_SERIAL_APPENDED = frozenset({"grai", "gdti", "gcn"})

# Parameters that hold one value, and lists (EPCIS pipe-delimited; "," also separates
# vocabulary words and event types, which never contain one).
_SINGLE = ("GE_eventTime", "LT_eventTime", "perPage", "nextPageToken")
_WORD_LISTS = ("eventType", "EQ_bizStep", "EQ_disposition")
_URI_LISTS = (
    "MATCH_epc",
    "MATCH_anyEPC",
    "MATCH_epcClass",
    "EQ_bizLocation",
    "EQ_readPoint",
    "EQ_eventID",
)
PARAMETERS = frozenset((*_SINGLE, *_WORD_LISTS, *_URI_LISTS))


@dataclass(frozen=True, slots=True)
class KeyMatch:
    """Index keys an identifier parameter matches: exact keys, and key prefixes."""

    exact: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.exact or self.prefixes)


@dataclass(frozen=True, slots=True)
class EventQuery:
    event_types: tuple[str, ...] = ()
    ge_time: datetime | None = None
    lt_time: datetime | None = None
    biz_steps: tuple[str, ...] = ()
    dispositions: tuple[str, ...] = ()
    epc: KeyMatch = field(default_factory=KeyMatch)
    any_epc: KeyMatch = field(default_factory=KeyMatch)
    epc_class: KeyMatch = field(default_factory=KeyMatch)
    biz_locations: tuple[str, ...] = ()
    read_points: tuple[str, ...] = ()
    event_ids: tuple[str, ...] = ()
    per_page: int = DEFAULT_PER_PAGE
    after: tuple[datetime, int] | None = None  # the last (eventTime, index) already seen


@dataclass(frozen=True, slots=True)
class Viewer:
    """Who asks: `enterprise_id` None sees everything (inspectors, regulators)."""

    enterprise_id: int | None = None
    prefixes: tuple[str, ...] = ()

    def sees_everything(self) -> bool:
        return self.enterprise_id is None

    def owns(self, key: GS1Key) -> bool:
        return any(key.owned_by(p) for p in self.prefixes)


@dataclass(frozen=True, slots=True)
class Page:
    events: list[bytes]  # each a JSON object, as stored (or with confidential fields withheld)
    next_page_token: str | None


# ---------------------------------------------------------------------------------------------
# Parameters


def parse_query(params: Mapping[str, Sequence[str]]) -> EventQuery:
    """An EventQuery from REST query parameters (name -> every value given for it)."""
    for name, values in params.items():
        if name not in PARAMETERS:
            shown = name[:80]  # the name is the caller's text: never echo it at any length
            raise QueryParameterError(
                shown,
                f"unknown query parameter {shown!r}; supported: {', '.join(sorted(PARAMETERS))}",
            )
        if name in _SINGLE and len(values) > 1:
            raise QueryParameterError(name, f"{name} may be given only once")

    def one(name: str) -> str | None:
        values = params.get(name)
        return values[0] if values else None

    return EventQuery(
        event_types=tuple(_event_type(v) for v in _words(params, "eventType")),
        ge_time=parse_query_time(one("GE_eventTime"), "GE_eventTime"),
        lt_time=parse_query_time(one("LT_eventTime"), "LT_eventTime"),
        biz_steps=tuple(_vocab("bizStep", v, "EQ_bizStep") for v in _words(params, "EQ_bizStep")),
        dispositions=tuple(
            _vocab("disposition", v, "EQ_disposition") for v in _words(params, "EQ_disposition")
        ),
        epc=_epc_match(_uris(params, "MATCH_epc"), "MATCH_epc"),
        any_epc=_epc_match(_uris(params, "MATCH_anyEPC"), "MATCH_anyEPC"),
        epc_class=_class_match(_uris(params, "MATCH_epcClass")),
        biz_locations=tuple(_place(v, "EQ_bizLocation") for v in _uris(params, "EQ_bizLocation")),
        read_points=tuple(_place(v, "EQ_readPoint") for v in _uris(params, "EQ_readPoint")),
        event_ids=tuple(_uris(params, "EQ_eventID")),
        per_page=_per_page(one("perPage")),
        after=decode_page_token(one("nextPageToken")),
    )


def _split(params: Mapping[str, Sequence[str]], name: str, separators: str) -> list[str]:
    out: list[str] = []
    for raw in params.get(name, ()):
        parts = [raw]
        for sep in separators:
            parts = [p for part in parts for p in part.split(sep)]
        if any(not p.strip() for p in parts):
            raise QueryParameterError(name, f"{name} has an empty value")
        out += [p.strip() for p in parts]
    if len(out) > MAX_VALUES:
        raise QueryParameterError(name, f"{name} takes at most {MAX_VALUES} values")
    return list(dict.fromkeys(out))


def _words(params: Mapping[str, Sequence[str]], name: str) -> list[str]:
    return _split(params, name, "|,")


def _uris(params: Mapping[str, Sequence[str]], name: str) -> list[str]:
    # A comma is legal inside an EPC (TDS GS3A3), so identifier lists split on "|" only.
    return _split(params, name, "|")


def parse_query_time(raw: str | None, name: str) -> datetime | None:
    if raw is None:
        return None
    # An unencoded "+" in a query string arrives as a space: "...T08:00:00 08:00".
    text = raw.strip().replace(" ", "+")
    try:
        return parse_time(text)
    except ValueError as exc:
        raise QueryParameterError(
            name, f"{name} must be an RFC 3339 date-time with an offset, got {raw[:80]!r}"
        ) from exc


def _event_type(value: str) -> str:
    if value not in EVENT_TYPES:
        raise QueryParameterError(
            "eventType", f"eventType {value[:80]!r} is not one of {', '.join(EVENT_TYPES)}"
        )
    return value


def _vocab(vocab: str, value: str, name: str) -> str:
    try:
        return cbv.normalize(vocab, value)
    except ValueError as exc:
        raise QueryParameterError(name, f"{name}: {exc}") from exc


def _identifier(uri: str, name: str) -> GS1Key | None:
    try:
        return parse_identifier(uri)
    except IdentifierError as exc:
        raise QueryParameterError(name, f"{name}: {exc}") from exc


def _epc_match(uris: Iterable[str], name: str) -> KeyMatch:
    """Instance identifiers match exactly; a class (EPC id pattern "...*", or a GTIN
    Digital Link without serial) matches every instance of it."""
    exact: list[str] = []
    prefixes: list[str] = []
    for uri in uris:
        key = _identifier(uri, name)
        if key is None:
            exact.append(uri)  # a non-GS1 URI is indexed as written
        elif key.level == "instance":
            exact.append(key.item_key().canonical())
        elif key.level == "lot":
            raise QueryParameterError(
                name, f"{name}: {uri} names a lot, not instances; use MATCH_epcClass"
            )
        else:
            sep = "" if key.scheme in _SERIAL_APPENDED else "/"
            prefixes.append(key.canonical() + sep)
    return KeyMatch(tuple(exact), tuple(prefixes))


def _class_match(uris: Iterable[str]) -> KeyMatch:
    """A lot matches itself; a class (a GTIN) matches itself and every lot of it."""
    name = "MATCH_epcClass"
    exact: list[str] = []
    prefixes: list[str] = []
    for uri in uris:
        key = _identifier(uri, name)
        if key is None:
            exact.append(uri)
        elif key.level == "instance":
            raise QueryParameterError(
                name, f"{name}: {uri} names one instance, not a class; use MATCH_epc"
            )
        else:
            exact.append(key.canonical())
            if key.level == "class" and key.scheme in ("gtin", "itip"):
                prefixes.append(key.canonical() + "/")
    return KeyMatch(tuple(exact), tuple(prefixes))


def _place(uri: str, name: str) -> str:
    key = _identifier(uri, name)
    return uri if key is None else key.item_key().canonical()


def _per_page(raw: str | None) -> int:
    if raw is None:
        return DEFAULT_PER_PAGE
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 7 or not 1 <= int(raw) <= MAX_PER_PAGE:
        raise QueryParameterError(
            "perPage", f"perPage must be an integer from 1 to {MAX_PER_PAGE}, got {raw[:20]!r}"
        )
    return int(raw)


def encode_page_token(event_time: datetime, idx: int) -> str:
    raw = json.dumps([event_time.isoformat(), idx], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_page_token(token: str | None) -> tuple[datetime, int] | None:
    if token is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        when, idx = json.loads(raw)
        if not isinstance(idx, int) or isinstance(idx, bool) or idx < 0:
            raise ValueError("bad index")  # noqa: TRY301 - one answer for every bad token
        return parse_time(when), idx
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise QueryParameterError(
            "nextPageToken", "nextPageToken is not a token this server gave out"
        ) from exc


# ---------------------------------------------------------------------------------------------
# Who sees what


def owned_key_patterns(prefixes: Iterable[str]) -> list[str]:
    """SQL LIKE patterns of the index keys under these company prefixes (digits only)."""
    out: list[str] = []
    for prefix in prefixes:
        if not (prefix.isascii() and prefix.isdigit()):
            raise ValueError(f"a company prefix is digits, got {prefix!r}")
        out += [f"{ai}/{'_' if indicator else ''}{prefix}%" for ai, indicator in _KEY_LAYOUT]
    return out


async def viewer_for(conn: Any, enterprise_id: int | None) -> Viewer:
    """The viewer for a token: everything for officials, else the enterprise's scope."""
    if enterprise_id is None:
        return Viewer()
    rows = await conn.fetch(
        "SELECT prefix FROM enterprise_prefixes WHERE enterprise_id = $1 ORDER BY prefix",
        enterprise_id,
    )
    return Viewer(enterprise_id, tuple(r["prefix"] for r in rows))


def shown_event(
    payload: bytes, viewer: Viewer, signer: int | None
) -> tuple[bytes, dict[str, Any] | None]:
    """The event as this viewer may see it: fields its sender marked confidential are
    withheld from other enterprises. Returns the bytes, and the parsed event if changed."""
    if viewer.sees_everything() or signer == viewer.enterprise_id:
        return payload, None
    if CONFIDENTIAL_FIELD.encode() not in payload:
        return payload, None
    event = json.loads(payload)
    hidden = event.get(CONFIDENTIAL_FIELD) if isinstance(event, dict) else None
    if not isinstance(hidden, list):
        return payload, None
    names = {h for h in hidden if isinstance(h, str)} - _ESSENTIAL
    kept = {k: v for k, v in event.items() if k not in names}
    return json.dumps(kept, ensure_ascii=False, separators=(",", ":")).encode(), kept


def annotated(
    payload: bytes, verified: bool | None, submitted_with: str | None, *, always: bool = False
) -> bytes:
    """The event with what answers add to it: `eventIDVerified` (is an ni: eventID the
    event's own hash?) and `provenance` (signed by the enterprise, or a token).

    EPCIS query answers show events as captured, so there only what needs saying is
    added (`always` off): a hash eventID that is not the event's hash, and how an event
    that came without a DSSE envelope was sent.
    """
    extra: dict[str, object] = {}
    if verified is not None and (always or not verified):
        extra["eventIDVerified"] = verified
    if always or (submitted_with or "dsse") != "dsse":
        extra["provenance"] = provenance(submitted_with)
    if not extra:
        return payload
    tail = json.dumps(extra, ensure_ascii=False, separators=(",", ":")).encode()
    # A stored event is a non-empty JSON object: splice the members in before its "}".
    return payload.rstrip()[:-1] + b"," + tail[1:]


# ---------------------------------------------------------------------------------------------
# SQL


class _Sql:
    """A WHERE clause built with numbered parameters.

    Only fixed SQL and "$n" placeholders are ever put into the text (hence the S608
    exemptions below); every value travels as a parameter.
    """

    def __init__(self) -> None:
        self.args: list[object] = []
        self.where: list[str] = []

    def arg(self, value: object) -> str:
        self.args.append(value)
        return f"${len(self.args)}"

    def keys_in(self, match: KeyMatch, roles: Sequence[str]) -> None:
        """Events naming a matching key in one of `roles` (driven by the event_keys index)."""
        alternatives = []
        if match.exact:
            alternatives.append(f"k.key = ANY({self.arg(list(match.exact))}::text[])")
        alternatives += [
            f"(k.key >= {self.arg(p)} AND k.key < {self.arg(_after_prefix(p))})"
            for p in match.prefixes
        ]
        self.where.append(
            "e.idx IN (SELECT k.idx FROM event_keys k"  # noqa: S608 - see _Sql
            f" WHERE k.role = ANY({self.arg(list(roles))}::text[])"
            f" AND ({' OR '.join(alternatives)}))"
        )


def _after_prefix(prefix: str) -> str:
    """The least string above every string starting with `prefix` (keys compare as "C")."""
    return prefix[:-1] + chr(ord(prefix[-1]) + 1)


def build_sql(query: EventQuery, viewer: Viewer) -> tuple[str, list[object]]:
    sql = _Sql()
    if query.event_types:
        sql.where.append(f"e.event_type = ANY({sql.arg(list(query.event_types))}::text[])")
    if query.ge_time is not None:
        sql.where.append(f"e.event_time >= {sql.arg(query.ge_time)}")
    if query.lt_time is not None:
        sql.where.append(f"e.event_time < {sql.arg(query.lt_time)}")
    if query.biz_steps:
        sql.where.append(f"e.biz_step = ANY({sql.arg(list(query.biz_steps))}::text[])")
    if query.dispositions:
        sql.where.append(f"e.disposition = ANY({sql.arg(list(query.dispositions))}::text[])")
    if query.epc:
        sql.keys_in(query.epc, EPC_ROLES)
    if query.any_epc:
        sql.keys_in(query.any_epc, ANY_EPC_ROLES)
    if query.epc_class:
        sql.keys_in(query.epc_class, CLASS_ROLES)
    if query.biz_locations:
        sql.keys_in(KeyMatch(query.biz_locations), ("bizLocation",))
    if query.read_points:
        sql.keys_in(KeyMatch(query.read_points), ("readPoint",))
    if query.event_ids:
        ids = sql.arg(list(query.event_ids))
        # A hash ID also names the event whose computed hash it is, whatever eventID its
        # sender gave it: the entry's identity (a plain event's is its hash).
        digests = [d for d in map(hash_id_digest, query.event_ids) if d]
        sql.where.append(
            f"(e.event_id = ANY({ids}::text[]) OR (NOT e.declaration AND e.idx IN"  # noqa: S608
            f" (SELECT idx FROM entries WHERE identity = ANY({sql.arg(digests)}::bytea[]))))"
        )
    if query.after is not None:
        when, idx = query.after
        t = sql.arg(when)
        # Spelled out (not a row comparison) so the eventTime index bounds the scan.
        sql.where.append(f"e.event_time >= {t} AND (e.event_time > {t} OR e.idx > {sql.arg(idx)})")
    if not viewer.sees_everything():
        own = sql.arg(viewer.enterprise_id)
        patterns = owned_key_patterns(viewer.prefixes)
        # Probed per event through event_keys_idx while the page fills. "OFFSET 0" keeps
        # PostgreSQL from turning the EXISTS into a hash of every matching key in the
        # table, which costs a full scan of event_keys on every page.
        goods = (
            "EXISTS (SELECT 1 FROM event_keys o WHERE o.idx = e.idx"  # noqa: S608 - see _Sql
            f" AND o.role = ANY({sql.arg(list(GOODS_ROLES))}::text[])"
            f" AND o.key LIKE ANY({sql.arg(patterns)}::text[]) OFFSET 0)"
            if patterns
            else "false"
        )
        sql.where.append(f"(e.enterprise_id = {own} OR {goods})")
    sql.where.append("n.payload IS NOT NULL")  # redacted events are not shown
    text = (
        "SELECT e.idx, e.event_time, e.enterprise_id, n.payload,"  # noqa: S608 - see _Sql
        " e.event_id_verified, e.submitted_with"
        " FROM events e JOIN entries n ON n.idx = e.idx"
        f" WHERE {' AND '.join(sql.where)}"
        f" ORDER BY e.event_time, e.idx LIMIT {sql.arg(query.per_page + 1)}"
    )
    return text, sql.args


class QueryService:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def viewer(self, enterprise_id: int | None) -> Viewer:
        async with self._pool.acquire() as conn:
            return await viewer_for(conn, enterprise_id)

    async def events(self, query: EventQuery, viewer: Viewer, *, annotate: bool = False) -> Page:
        """A page of events; `annotate` always says eventIDVerified and provenance."""
        text, args = build_sql(query, viewer)
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(text, *args)
        more = len(rows) > query.per_page
        rows = rows[: query.per_page]
        events = [
            annotated(
                shown_event(bytes(r["payload"]), viewer, r["enterprise_id"])[0],
                r["event_id_verified"],
                r["submitted_with"],
                always=annotate,
            )
            for r in rows
        ]
        token = None
        if more and rows:
            token = encode_page_token(rows[-1]["event_time"], rows[-1]["idx"])
        return Page(events, token)
