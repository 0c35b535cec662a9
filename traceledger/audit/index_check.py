"""The event-key index, rebuilt from the log and compared (`traceledger verify`)."""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass

import asyncpg

from traceledger.audit.pages import Pages, workers_for
from traceledger.standards.epcis import EVENT_TYPES, parse_time
from traceledger.store.conn import Conn
from traceledger.trust.claims import keys_of

INDEX_PAGE = 4096
MAX_DIFFERENCES = 100  # reported; the count goes on


@dataclass(frozen=True)
class IndexReport:
    events: int
    differences: list[str]
    count: int  # differences found (more than listed when past MAX_DIFFERENCES)


async def verify_index(pool: asyncpg.Pool, *, workers: int | None = None) -> IndexReport:
    """Re-derive every indexed entry's keys and roles from its stored payload, with the
    trust rules' own reading of an event (trust.claims.keys_of), and compare them with
    event_keys: lookups, traces and entitlement all read the index, so a row added,
    removed or changed there would change what they believe. Pages are read and
    re-derived by worker processes (`workers`, one per core by default), as verify's."""
    differences: list[str] = []
    count = events = 0
    async with pool.acquire() as conn:
        below = int(await conn.fetchval("SELECT next_idx FROM index_state"))
        cpu = workers_for(pool, below, INDEX_PAGE, workers, __name__)
        async with cpu:
            pages = Pages(conn, pool, cpu, INDEX_PAGE, functools.partial(index_page, below=below))
            try:
                for _ in range(0, below, INDEX_PAGE):
                    for found in await pages.next():
                        if found is None:
                            events += 1
                            continue
                        count += 1
                        if len(differences) < MAX_DIFFERENCES:
                            differences.append(found)
            finally:
                await pages.close()
    return IndexReport(events, differences, count)


async def index_page(conn: Conn, start: int, size: int, *, below: int) -> list[str | None]:
    """One finding per indexed event in [start, start + size), below `below` (where the
    indexer has reached): None when its keys match (a page's work, see Pages)."""
    end = min(start + size, below)
    entries = await conn.fetch(
        "SELECT idx, payload FROM entries WHERE idx >= $1 AND idx < $2 ORDER BY idx", start, end
    )
    indexed = {
        r["idx"]
        for r in await conn.fetch("SELECT idx FROM events WHERE idx >= $1 AND idx < $2", start, end)
    }
    stored: dict[int, set[tuple[str, str]]] = {}
    for r in await conn.fetch(
        "SELECT idx, key, role FROM event_keys WHERE idx >= $1 AND idx < $2", start, end
    ):
        stored.setdefault(r["idx"], set()).add((r["key"], r["role"]))
    found: list[str | None] = []
    for r in entries:
        idx = r["idx"]
        if r["payload"] is None:
            continue  # redacted: nothing to re-derive from
        expected = _expected_keys(bytes(r["payload"]))
        have = stored.get(idx, set())
        if expected is None:
            if idx in indexed or have:
                found.append(f"entry {idx}: indexed, but its payload is no indexable event")
            continue
        if idx not in indexed:
            found.append(f"entry {idx}: an event missing from the index")
            continue
        found.append(_keys_difference(idx, expected, have))
    return found


def _expected_keys(payload: bytes) -> set[tuple[str, str]] | None:
    """The (key, role) rows the indexer writes for this payload; None if it indexes none."""
    try:
        event = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if not isinstance(event, dict) or event.get("type") not in EVENT_TYPES:
        return None
    try:
        parse_time(event.get("eventTime"))
        return set(keys_of(event))
    except (ValueError, KeyError, TypeError):
        return None  # the indexer skips an event it cannot read, as here


def _keys_difference(
    idx: int, expected: set[tuple[str, str]], have: set[tuple[str, str]]
) -> str | None:
    if expected == have:
        return None
    missing = ", ".join(f"{k} as {r}" for k, r in sorted(expected - have)) or "none"
    extra = ", ".join(f"{k} as {r}" for k, r in sorted(have - expected)) or "none"
    return f"entry {idx}: event_keys differ from the event (missing: {missing}; extra: {extra})"
