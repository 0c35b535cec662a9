"""Lookup answers built ahead of the first scan, kept in the database.

Most QR codes are scanned once or a few times, each by a different shopper, so an
in-memory cache of recent answers (history_cache) rarely helps them; assembling a
history live costs a walk, dozens of inclusion proofs and a JSON rendering. So the
process that indexes events also builds, in the background, the consumer answer of every
serialized item and lot that new events name, and of every stored answer they make stale
(an event on a lot, a container or an upstream input reaches every answer whose walk
visited that key: the GIN index on `keys` finds them). Lookups, on the primary or on a
replica, then read one row.

A stored answer is served only while the same test as the in-memory cache's holds: no
event indexed since its walk began names a key the walk visited (checked in the same
query), its pending events are not yet covered by a newer checkpoint, and the clock has
not passed the moment its status would change by itself (an expiry date). Otherwise the
lookup assembles the answer live, so these rows make lookups faster, never different.
Inclusion proofs in a stored answer are against the checkpoint it was built at, which
stays verifiable forever.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from traceledger.lookup.cache import CachedAnswer
from traceledger.standards.gs1 import GS1Key
from traceledger.store.conn import Conn


def prebuildable(key: GS1Key) -> bool:
    """Keys a shopper scans: a serialized trade item or a lot (not a bare GTIN, whose
    history is every event of the product, nor logistic units and locations)."""
    return key.class_key() is not None and key.level != "class"


def valid_until(answer: dict[str, Any]) -> datetime | None:
    """When the answer's status changes with no new event: the day after its expiry
    date (history._status compares that date with today), if that day is still ahead."""
    expiry = answer["status"].get("expiryDate")
    if not isinstance(expiry, str):
        return None
    try:
        flips = date.fromisoformat(expiry[:10]) + timedelta(days=1)
    except ValueError:
        return None
    moment = datetime(flips.year, flips.month, flips.day, tzinfo=UTC)
    return moment if moment > datetime.now(UTC) else None


async def read_prebuilt(conn: Conn, key: str, size: int, now: float) -> CachedAnswer | None:
    """The stored answer for `key` if it is still what a fresh lookup would say, given
    that the newest checkpoint has `size` entries."""
    row = await conn.fetchrow(
        "SELECT a.body, a.tree_size, a.indexed_below, a.keys, a.pending, a.event_count"
        " FROM prebuilt_answers a WHERE a.key = $1"
        " AND (a.valid_until IS NULL OR a.valid_until > now())"
        " AND (a.pending = 0 OR a.tree_size >= $2)"
        " AND NOT EXISTS (SELECT 1 FROM event_keys k WHERE k.key = ANY(a.keys)"
        "                 AND k.idx >= a.indexed_below AND k.role <> 'lotMember')"
        # A field erased since the walk began (traceledger/ops/redaction.py).
        " AND NOT EXISTS (SELECT 1 FROM redactions r"
        "                 WHERE r.entry IS NULL OR r.entry >= a.indexed_below)",
        key,
        size,
    )
    if row is None:
        return None
    answer = CachedAnswer(
        (key, False),
        list(row["keys"]),
        row["indexed_below"],
        max(size, row["tree_size"]),
        row["pending"],
        row["event_count"],
        now,
    )
    answer.bodies[answer.own_path] = bytes(row["body"])
    return answer


async def store_prebuilt(conn: Conn, answers: list[CachedAnswer]) -> None:
    await conn.executemany(
        "INSERT INTO prebuilt_answers (key, tree_size, indexed_below, keys, pending,"
        " event_count, valid_until, body) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)"
        " ON CONFLICT (key) DO UPDATE SET tree_size = excluded.tree_size,"
        " indexed_below = excluded.indexed_below, keys = excluded.keys,"
        " pending = excluded.pending, event_count = excluded.event_count,"
        " valid_until = excluded.valid_until, built_at = now(), body = excluded.body",
        [
            (
                a.slot[0],
                a.answer["treeSize"],
                a.indexed_below,
                a.keys,
                a.pending,
                a.event_count,
                valid_until(a.answer),
                a.json_body(a.own_path)[0],
            )
            for a in answers
        ],
    )
