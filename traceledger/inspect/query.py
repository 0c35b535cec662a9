"""The EPCIS 2.0 query language: parameters in, an :class:`EventQuery` out.

The same parameters come two ways: as REST query-string values (`GET /v1/events`,
pipe-delimited lists) through `parse_query`, and as the JSON object of a named query
(`POST /queries`, lists as JSON arrays) through `parse_definition`. Both give one
immutable `EventQuery`; `traceledger.inspect.query_sql` answers it. Page tokens record
where the last page ended, so following `nextPageToken` never repeats or skips an event.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from traceledger.errors import IdentifierError, QueryParameterError
from traceledger.standards import cbv
from traceledger.standards.epcis import EVENT_TYPES, parse_time
from traceledger.standards.gs1 import GS1Key, parse_identifier

DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 1000
MAX_VALUES = 100  # values in one list parameter
MAX_COUNT_LIMIT = 1_000_000_000

# Identifier roles of event_keys (see traceledger.standards.epcis.raw_mentions).
EPC_ROLES = ("epc", "child", "input", "output")
ANY_EPC_ROLES = (*EPC_ROLES, "parent")
CLASS_ROLES = ("class", "childClass", "inputClass", "outputClass")
ORDER_FIELDS = ("eventTime", "recordTime")
ACTIONS = ("ADD", "OBSERVE", "DELETE")

# Schemes whose serial is appended to the key itself rather than after "/<AI>/".
_SERIAL_APPENDED = frozenset({"grai", "gdti", "gcn"})

# Parameters that hold one value, and lists (EPCIS pipe-delimited; "," also separates
# vocabulary words and event types, which never contain one).
_SINGLE = (
    "GE_eventTime",
    "LT_eventTime",
    "GE_recordTime",
    "LT_recordTime",
    "orderBy",
    "orderDirection",
    "eventCountLimit",
    "EXISTS_errorDeclaration",
    "perPage",
    "nextPageToken",
)
_WORD_LISTS = ("eventType", "EQ_bizStep", "EQ_disposition", "EQ_action")
_URI_LISTS = (
    "MATCH_epc",
    "MATCH_anyEPC",
    "MATCH_epcClass",
    "MATCH_parentID",
    "MATCH_inputEPC",
    "MATCH_outputEPC",
    "EQ_bizLocation",
    "EQ_readPoint",
    "EQ_eventID",
)
PARAMETERS = frozenset((*_SINGLE, *_WORD_LISTS, *_URI_LISTS))
# EQ_source_<type> and EQ_destination_<type>: the type is a CBV source/destination type.
_PARTY = re.compile(r"EQ_(source|destination)_([a-z][a-zA-Z0-9_]{0,60})")
# How the results of a named query are paged: not part of its definition.
PAGING = ("perPage", "nextPageToken")


@dataclass(frozen=True, slots=True)
class KeyMatch:
    """Index keys an identifier parameter matches: exact keys, and key prefixes."""

    exact: tuple[str, ...] = ()
    prefixes: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.exact or self.prefixes)


@dataclass(frozen=True, slots=True)
class PartyMatch:
    """EQ_source_<type> / EQ_destination_<type>: a list entry of this type naming one of
    these identifiers (index keys)."""

    type: str  # CBV short name, e.g. owning_party
    keys: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class Position:
    """Where the last page ended: its last event, and how many events were served so far
    (for eventCountLimit). `event_time` is None when results are in record-time order."""

    event_time: datetime | None
    idx: int
    served: int = 0


@dataclass(frozen=True, slots=True)
class EventQuery:
    event_types: tuple[str, ...] = ()
    ge_time: datetime | None = None
    lt_time: datetime | None = None
    ge_record_time: datetime | None = None
    lt_record_time: datetime | None = None
    actions: tuple[str, ...] = ()
    biz_steps: tuple[str, ...] = ()
    dispositions: tuple[str, ...] = ()
    epc: KeyMatch = field(default_factory=KeyMatch)
    any_epc: KeyMatch = field(default_factory=KeyMatch)
    epc_class: KeyMatch = field(default_factory=KeyMatch)
    parent: KeyMatch = field(default_factory=KeyMatch)
    input_epc: KeyMatch = field(default_factory=KeyMatch)
    output_epc: KeyMatch = field(default_factory=KeyMatch)
    biz_locations: tuple[str, ...] = ()
    read_points: tuple[str, ...] = ()
    sources: tuple[PartyMatch, ...] = ()
    destinations: tuple[PartyMatch, ...] = ()
    event_ids: tuple[str, ...] = ()
    error_declaration: bool = False  # EXISTS_errorDeclaration
    order_by: str = "eventTime"
    descending: bool = False
    event_count_limit: int | None = None
    per_page: int = DEFAULT_PER_PAGE
    after: Position | None = None

    def needs_payload_check(self) -> bool:
        """Whether some condition is only settled by reading the event itself."""
        return bool(self.sources or self.destinations or self.error_declaration)


# ---------------------------------------------------------------------------------------------
# Parameters


def parse_query(params: Mapping[str, Sequence[str]]) -> EventQuery:
    """An EventQuery from REST query parameters (name -> every value given for it)."""
    for name, values in params.items():
        if name not in PARAMETERS and not _PARTY.fullmatch(name):
            shown = name[:80]  # the name is the caller's text: never echo it at any length
            raise QueryParameterError(
                shown,
                f"unknown query parameter {shown!r}; supported: "
                f"{', '.join(sorted(PARAMETERS))}, EQ_source_<type>, EQ_destination_<type>",
            )
        if name in _SINGLE and len(values) > 1:
            raise QueryParameterError(name, f"{name} may be given only once")

    def one(name: str) -> str | None:
        values = params.get(name)
        return values[0] if values else None

    order_by = _order_by(one("orderBy"))
    return EventQuery(
        event_types=tuple(_event_type(v) for v in _words(params, "eventType")),
        ge_time=parse_query_time(one("GE_eventTime"), "GE_eventTime"),
        lt_time=parse_query_time(one("LT_eventTime"), "LT_eventTime"),
        ge_record_time=parse_query_time(one("GE_recordTime"), "GE_recordTime"),
        lt_record_time=parse_query_time(one("LT_recordTime"), "LT_recordTime"),
        actions=tuple(_action(v) for v in _words(params, "EQ_action")),
        biz_steps=tuple(_vocab("bizStep", v, "EQ_bizStep") for v in _words(params, "EQ_bizStep")),
        dispositions=tuple(
            _vocab("disposition", v, "EQ_disposition") for v in _words(params, "EQ_disposition")
        ),
        epc=_epc_match(_uris(params, "MATCH_epc"), "MATCH_epc"),
        any_epc=_epc_match(_uris(params, "MATCH_anyEPC"), "MATCH_anyEPC"),
        epc_class=_class_match(_uris(params, "MATCH_epcClass")),
        parent=_epc_match(_uris(params, "MATCH_parentID"), "MATCH_parentID"),
        input_epc=_epc_match(_uris(params, "MATCH_inputEPC"), "MATCH_inputEPC"),
        output_epc=_epc_match(_uris(params, "MATCH_outputEPC"), "MATCH_outputEPC"),
        biz_locations=tuple(_place(v, "EQ_bizLocation") for v in _uris(params, "EQ_bizLocation")),
        read_points=tuple(_place(v, "EQ_readPoint") for v in _uris(params, "EQ_readPoint")),
        sources=_parties(params, "source"),
        destinations=_parties(params, "destination"),
        event_ids=tuple(_uris(params, "EQ_eventID")),
        error_declaration=_exists(one("EXISTS_errorDeclaration")),
        order_by=order_by or "eventTime",
        descending=_descending(one("orderDirection"), ordered=order_by is not None),
        event_count_limit=_count_limit(one("eventCountLimit")),
        per_page=_per_page(one("perPage")),
        after=decode_page_token(one("nextPageToken")),
    )


def parse_definition(definition: object) -> EventQuery:
    """The EventQuery of a named query's definition (the JSON object of POST /queries,
    EPCIS query-schema.json): lists are arrays, times strings, flags may be null."""
    return parse_query(definition_params(definition))


def definition_params(definition: object) -> dict[str, list[str]]:
    """A named query's JSON definition as REST parameters (name -> values)."""
    if not isinstance(definition, Mapping):
        raise QueryParameterError("query", "'query' must be a JSON object of EPCIS parameters")
    out: dict[str, list[str]] = {}
    for name, value in definition.items():
        if name in PAGING:
            raise QueryParameterError(
                name, f"{name} pages the results; give it to GET /queries/{{name}}/events"
            )
        out[name] = _definition_values(name, value)
    return out


def _definition_values(name: str, value: object) -> list[str]:
    if name.startswith("EXISTS_") and value in (None, True, 1):
        return [""]
    if isinstance(value, str):
        return [value]
    if isinstance(value, int) and not isinstance(value, bool):
        return [str(value)]
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        if not value:
            raise QueryParameterError(name[:80], f"{name[:80]} is an empty list")
        return list(value)
    raise QueryParameterError(
        name[:80], f"{name[:80]} must be a string, an integer or a list of strings"
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


def _action(value: str) -> str:
    if value not in ACTIONS:
        raise QueryParameterError(
            "EQ_action", f"EQ_action {value[:80]!r} is not one of {', '.join(ACTIONS)}"
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


def _parties(params: Mapping[str, Sequence[str]], side: str) -> tuple[PartyMatch, ...]:
    found = []
    for name in params:
        match = _PARTY.fullmatch(name)
        if match is None or match.group(1) != side:
            continue
        kind = _vocab("sourceDestType", match.group(2), name)
        found.append(PartyMatch(kind, tuple(_place(v, name) for v in _uris(params, name))))
    return tuple(found)


def _exists(raw: str | None) -> bool:
    """EXISTS_ parameters take no value (EPCIS "Void"); "true" is tolerated, "false" is not
    what the parameter means, so it is refused rather than silently ignored."""
    if raw is None:
        return False
    if raw.strip().lower() not in ("", "true", "1"):
        raise QueryParameterError(
            "EXISTS_errorDeclaration",
            "EXISTS_errorDeclaration takes no value: give it to keep only events with an "
            "error declaration, leave it out otherwise",
        )
    return True


def _order_by(raw: str | None) -> str | None:
    if raw is None:
        return None
    if raw not in ORDER_FIELDS:
        raise QueryParameterError(
            "orderBy", f"orderBy must be one of {', '.join(ORDER_FIELDS)}, got {raw[:80]!r}"
        )
    return raw


def _descending(raw: str | None, *, ordered: bool) -> bool:
    """EPCIS: orderDirection defaults to DESC once orderBy is given; without orderBy the
    results come oldest first (eventTime, then log order)."""
    if raw is None:
        return ordered
    if raw.upper() not in ("ASC", "DESC"):
        raise QueryParameterError(
            "orderDirection", f"orderDirection must be ASC or DESC, got {raw[:20]!r}"
        )
    return raw.upper() == "DESC"


def _positive(raw: str, name: str, high: int) -> int:
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10 or not 1 <= int(raw) <= high:
        raise QueryParameterError(
            name, f"{name} must be an integer from 1 to {high}, got {raw[:20]!r}"
        )
    return int(raw)


def _count_limit(raw: str | None) -> int | None:
    return None if raw is None else _positive(raw, "eventCountLimit", MAX_COUNT_LIMIT)


def _per_page(raw: str | None) -> int:
    return DEFAULT_PER_PAGE if raw is None else _positive(raw, "perPage", MAX_PER_PAGE)


# ---------------------------------------------------------------------------------------------
# Page tokens


def encode_page_token(position: Position) -> str:
    when = position.event_time.isoformat() if position.event_time is not None else None
    raw = json.dumps([when, position.idx, position.served], separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode("ascii").rstrip("=")


def decode_page_token(token: str | None) -> Position | None:
    if token is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        when, idx, served = json.loads(raw)
        if not all(_count(v) for v in (idx, served)):
            raise ValueError("bad index")  # noqa: TRY301 - one answer for every bad token
        return Position(None if when is None else parse_time(when), idx, served)
    except (ValueError, TypeError, binascii.Error, UnicodeDecodeError) as exc:
        raise QueryParameterError(
            "nextPageToken", "nextPageToken is not a token this server gave out"
        ) from exc


def _count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0
