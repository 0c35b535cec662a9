"""Answering an EventQuery: one SQL statement over the index (`events`, `event_keys`).

Pages are keyset-paginated on the sort order ((eventTime, index) or the index alone for
record time, which follows the index), so following `nextPageToken` never repeats or
skips an event. Subscriptions read the same statement in log order between two indexes.
Who asks decides what is seen (traceledger.inspect.visibility). The few conditions an
index cannot settle exactly (a source or destination of a given type, an error
declaration) narrow the rows in SQL and are then checked on the event itself.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from traceledger.errors import IdentifierError
from traceledger.inspect.query import (
    ANY_EPC_ROLES,
    CLASS_ROLES,
    EPC_ROLES,
    EventQuery,
    KeyMatch,
    PartyMatch,
    Position,
    encode_page_token,
)
from traceledger.inspect.visibility import Viewer, annotated, shown_event, viewer_for, visible_sql
from traceledger.log.record_times import first_index_recorded_at
from traceledger.standards import cbv
from traceledger.standards.eventhash import hash_id_digest
from traceledger.standards.gs1 import parse_identifier
from traceledger.store.conn import Conn


@dataclass(frozen=True, slots=True)
class Found:
    idx: int
    event: bytes  # a JSON object, as stored (or with confidential fields withheld)
    withheld: bool = False  # fields were withheld, so it no longer hashes to its leaf


@dataclass(frozen=True, slots=True)
class Page:
    found: list[Found]
    next_page_token: str | None

    @property
    def events(self) -> list[bytes]:
        return [f.event for f in self.found]


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

    def any_of(self, column: str, values: Sequence[str]) -> None:
        if values:
            self.where.append(f"{column} = ANY({self.arg(list(values))}::text[])")

    def keys_in(self, match: KeyMatch, roles: Sequence[str]) -> None:
        """Events naming a matching key in one of `roles` (driven by the event_keys index)."""
        if not match:
            return
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


# How the key of an error declaration appears in a stored (compact JSON) event.
_DECLARATION = b'"errorDeclaration":'


def _filters(sql: _Sql, query: EventQuery) -> None:
    sql.any_of("e.event_type", query.event_types)
    if query.ge_time is not None:
        sql.where.append(f"e.event_time >= {sql.arg(query.ge_time)}")
    if query.lt_time is not None:
        sql.where.append(f"e.event_time < {sql.arg(query.lt_time)}")
    sql.any_of("e.action", query.actions)
    sql.any_of("e.biz_step", query.biz_steps)
    sql.any_of("e.disposition", query.dispositions)
    if query.event_ids:
        ids = sql.arg(list(query.event_ids))
        # A hash ID also names the event whose computed hash it is, whatever eventID its
        # sender gave it: the entry's identity (a plain event's is its hash).
        digests = [d for d in map(hash_id_digest, query.event_ids) if d]
        sql.where.append(
            f"(e.event_id = ANY({ids}::text[]) OR (NOT e.declaration AND e.idx IN"  # noqa: S608
            f" (SELECT idx FROM entries WHERE identity = ANY({sql.arg(digests)}::bytea[]))))"
        )
    sql.keys_in(query.epc, EPC_ROLES)
    sql.keys_in(query.any_epc, ANY_EPC_ROLES)
    sql.keys_in(query.epc_class, CLASS_ROLES)
    sql.keys_in(query.parent, ("parent",))
    sql.keys_in(query.input_epc, ("input",))
    sql.keys_in(query.output_epc, ("output",))
    sql.keys_in(KeyMatch(query.biz_locations), ("bizLocation",))
    sql.keys_in(KeyMatch(query.read_points), ("readPoint",))
    for party in query.sources:
        sql.keys_in(KeyMatch(party.keys), ("source",))
    for party in query.destinations:
        sql.keys_in(KeyMatch(party.keys), ("destination",))
    if query.error_declaration:
        sql.where.append(f"position({sql.arg(_DECLARATION)} IN n.payload) > 0")


def _page_order(sql: _Sql, query: EventQuery) -> str:
    """The keyset condition after the last page, and the ORDER BY of the sort order."""
    way, cmp = ("DESC", "<") if query.descending else ("ASC", ">")
    after = query.after
    if query.order_by == "recordTime":
        if after is not None:
            sql.where.append(f"e.idx {cmp} {sql.arg(after.idx)}")
        return f"e.idx {way}"
    if after is not None:
        if after.event_time is None:
            # A token from a record-time page: start over rather than guess.
            after = None
        else:
            t = sql.arg(after.event_time)
            # Spelled out (not a row comparison) so the eventTime index bounds the scan.
            sql.where.append(
                f"e.event_time {cmp}= {t} AND (e.event_time {cmp} {t}"
                f" OR e.idx {cmp} {sql.arg(after.idx)})"
            )
    return f"e.event_time {way}, e.idx {way}"


def build_sql(
    query: EventQuery,
    viewer: Viewer,
    *,
    limit: int,
    window: tuple[int | None, int | None] = (None, None),
    log_order: bool = False,
) -> tuple[str, list[object]]:
    """The statement for one page: at most `limit` rows with index in `window` [start,
    end), in the query's order, or in log order for subscriptions."""
    sql = _Sql()
    _filters(sql, query)
    start, end = window
    if start is not None:
        sql.where.append(f"e.idx >= {sql.arg(start)}")
    if end is not None:
        sql.where.append(f"e.idx < {sql.arg(end)}")
    order = "e.idx" if log_order else _page_order(sql, query)
    if (visible := visible_sql(viewer, sql.arg)) is not None:
        sql.where.append(visible)
    sql.where.append("n.payload IS NOT NULL")  # redacted events are not shown
    text = (
        "SELECT e.idx, e.event_time, e.enterprise_id, n.payload,"  # noqa: S608 - see _Sql
        " e.event_id_verified, e.submitted_with"
        " FROM events e JOIN entries n ON n.idx = e.idx"
        f" WHERE {' AND '.join(sql.where)}"
        f" ORDER BY {order} LIMIT {sql.arg(limit)}"
    )
    return text, sql.args


# ---------------------------------------------------------------------------------------------
# What only the event itself settles


def _key_of(uri: object) -> object:
    if not isinstance(uri, str):
        return None
    try:
        key = parse_identifier(uri)
    except IdentifierError:
        return uri
    return uri if key is None else key.item_key().canonical()


def _party_listed(event: Mapping[str, Any], field: str, inner: str, party: PartyMatch) -> bool:
    for item in event.get(field) or ():
        if not isinstance(item, Mapping):
            continue
        kind = cbv.normalized_or_raw("sourceDestType", item.get("type"))
        if kind == party.type and _key_of(item.get(inner)) in party.keys:
            return True
    return False


def payload_matches(query: EventQuery, payload: bytes) -> bool:
    """The conditions SQL only narrows: a source or destination of the asked type naming
    one of the asked parties, and the presence of an error declaration."""
    if not query.needs_payload_check():
        return True
    event = json.loads(payload)
    if not isinstance(event, dict):
        return False
    if query.error_declaration and "errorDeclaration" not in event:
        return False
    return all(_party_listed(event, "sourceList", "source", p) for p in query.sources) and all(
        _party_listed(event, "destinationList", "destination", p) for p in query.destinations
    )


# ---------------------------------------------------------------------------------------------
# The service


async def record_window(conn: Conn, query: EventQuery) -> tuple[int | None, int | None]:
    """GE_recordTime / LT_recordTime as an index range (record times follow the index)."""
    start = end = None
    if query.ge_record_time is not None:
        start = await first_index_recorded_at(conn, query.ge_record_time)
    if query.lt_record_time is not None:
        end = await first_index_recorded_at(conn, query.lt_record_time)
    return start, end


class QueryService:
    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool

    async def viewer(self, enterprise_id: int | None) -> Viewer:
        async with self._pool.acquire() as conn:
            return await viewer_for(conn, enterprise_id)

    async def events(self, query: EventQuery, viewer: Viewer, *, annotate: bool = False) -> Page:
        """One page of results in the query's order, and the token for the next;
        `annotate` always says eventIDVerified and provenance (see visibility.annotated)."""
        served = query.after.served if query.after is not None else 0
        size = query.per_page
        if query.event_count_limit is not None:
            size = min(size, query.event_count_limit - served)
            if size <= 0:
                return Page([], None)
        async with self._pool.acquire() as conn:
            window = await record_window(conn, query)
            text, args = build_sql(query, viewer, limit=size + 1, window=window)
            rows = await conn.fetch(text, *args)
        more = len(rows) > size
        rows = rows[:size]
        found = _shown(query, viewer, rows, annotate=annotate)
        served += len(found)
        token = None
        if more and rows and (query.event_count_limit is None or served < query.event_count_limit):
            last = rows[-1]
            when = None if query.order_by == "recordTime" else last["event_time"]
            token = encode_page_token(Position(when, last["idx"], served))
        return Page(found, token)

    @staticmethod
    async def between(
        conn: Conn, query: EventQuery, viewer: Viewer, start: int, end: int, limit: int
    ) -> tuple[list[Found], int]:
        """Matching events with index in [start, end), in log order, from at most `limit`
        rows; and the index up to which the range is settled (`end` unless cut short).
        For subscriptions, which follow the log."""
        window = await record_window(conn, query)
        low = max(start, window[0] or 0)
        high = end if window[1] is None else min(end, window[1])
        if low >= high:
            return [], end
        text, args = build_sql(query, viewer, limit=limit, window=(low, high), log_order=True)
        rows = await conn.fetch(text, *args)
        settled = rows[-1]["idx"] + 1 if len(rows) == limit else end
        return _shown(query, viewer, rows, annotate=False), settled


def _shown(
    query: EventQuery, viewer: Viewer, rows: Sequence[Any], *, annotate: bool
) -> list[Found]:
    found = []
    for r in rows:
        payload = bytes(r["payload"])
        if payload_matches(query, payload):
            shown, changed = shown_event(payload, viewer, r["enterprise_id"])
            shown = annotated(shown, r["event_id_verified"], r["submitted_with"], always=annotate)
            found.append(Found(r["idx"], shown, changed is not None))
    return found
