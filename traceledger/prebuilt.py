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

import asyncio
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

import asyncpg

from traceledger.db import Conn
from traceledger.errors import NotFoundError
from traceledger.gs1 import GS1Key, parse_index_key
from traceledger.history_cache import CachedAnswer
from traceledger.leader import LeaderTask

if TYPE_CHECKING:
    from traceledger.history import HistoryService
    from traceledger.integrator import SignedCheckpoint

_PREBUILD_LOCK = 0x7472_6163_656C_0008
STORE_BATCH = 50  # answers written per statement
# Answers assembled at once: one's queries wait on the database while another's proofs
# and JSON run here.
CONCURRENT_BUILDS = 4


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
        "                 AND k.idx >= a.indexed_below AND k.role <> 'lotMember')",
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


class Prebuilder:
    """Builds answers for what new events touch, a chunk of the index at a time.

    Its cursor (prebuild_state) follows the index, never past the newest checkpoint the
    lookups use, so answers are built once their events are provable. A crash repeats at
    most one chunk: building an answer again is harmless.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        service: HistoryService,
        *,
        interval: float = 0.5,
        chunk: int = 5000,
    ) -> None:
        self._pool = pool
        self._service = service
        self._chunk = chunk
        self.task = LeaderTask(pool, "prebuilder", _PREBUILD_LOCK, interval, self.build_once)
        self.built = 0  # answers stored by this process

    async def build_once(self) -> bool:
        """One chunk of new events, else one batch of stale answers; True if more waits."""
        try:
            checkpoint = await self._service.newest_checkpoint()
        except NotFoundError:
            return False  # nothing is provable before the first checkpoint
        async with self._pool.acquire() as conn:
            start: int = await conn.fetchval("SELECT next_idx FROM prebuild_state")
            indexed: int = await conn.fetchval("SELECT next_idx FROM index_state")
            ready = min(indexed, checkpoint.size)
            end = min(ready, start + self._chunk)
            if end > start:
                targets = await _touched(conn, start, end)
            else:
                targets = await _stale(conn, checkpoint.size, self._chunk // 10)
        if not await self._build(targets, checkpoint):
            return False  # stopping: the cursor stays, the next leader redoes the chunk
        if end > start:
            async with self._pool.acquire() as conn:
                await conn.execute(
                    "UPDATE prebuild_state SET next_idx = $1 WHERE next_idx = $2", end, start
                )
            return end < ready
        return len(targets) == self._chunk // 10

    async def _build(self, keys: list[str], checkpoint: SignedCheckpoint) -> bool:
        """Build and store answers for `keys`; False if told to stop on the way."""
        parsed = [k for k in map(parse_index_key, keys) if k is not None]
        batch: list[CachedAnswer] = []
        for i in range(0, len(parsed), CONCURRENT_BUILDS):
            if self.task.stopping:
                return False
            group = parsed[i : i + CONCURRENT_BUILDS]
            built = await asyncio.gather(*(self._assemble(k, checkpoint) for k in group))
            batch.extend(a for a in built if a is not None)
            if None in built:  # nothing to show (any more): no stored answer either
                gone = [k.canonical() for k, a in zip(group, built, strict=True) if a is None]
                async with self._pool.acquire() as conn:
                    await conn.execute("DELETE FROM prebuilt_answers WHERE key = ANY($1)", gone)
            if len(batch) >= STORE_BATCH:
                await self._store(batch)
                batch = []
        await self._store(batch)
        return True

    async def _assemble(self, key: GS1Key, checkpoint: SignedCheckpoint) -> CachedAnswer | None:
        try:
            return await self._service.assemble(key, checkpoint)
        except NotFoundError:
            return None  # a key only other lots' serials name (lotMember): no history

    async def _store(self, answers: list[CachedAnswer]) -> None:
        if answers:
            async with self._pool.acquire() as conn:
                await store_prebuilt(conn, answers)
            self.built += len(answers)


async def _touched(conn: Conn, start: int, end: int) -> list[str]:
    """The prebuildable keys events in [start, end) name, and every stored answer whose
    walk visited a key they name."""
    named = [
        r["key"]
        for r in await conn.fetch(
            "SELECT DISTINCT key FROM event_keys"
            " WHERE idx >= $1 AND idx < $2 AND role <> 'lotMember'",
            start,
            end,
        )
    ]
    targets = {k for k in named if (g := parse_index_key(k)) is not None and prebuildable(g)}
    rows = await conn.fetch("SELECT key FROM prebuilt_answers WHERE keys && $1::text[]", named)
    targets.update(r["key"] for r in rows)
    return sorted(targets)


async def _stale(conn: Conn, size: int, limit: int) -> list[str]:
    """Stored answers that went stale without a new event: their expiry date passed, or
    a newer checkpoint now covers their pending events."""
    rows = await conn.fetch(
        "SELECT key FROM prebuilt_answers WHERE valid_until <= now()"
        " UNION SELECT key FROM prebuilt_answers WHERE pending > 0 AND tree_size < $1"
        " LIMIT $2",
        size,
        limit,
    )
    return sorted(r["key"] for r in rows)
