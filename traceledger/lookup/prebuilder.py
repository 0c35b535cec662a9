"""The prebuilder: one process at a time builds lookup answers ahead of the first scan.

It follows the index, never past the newest checkpoint lookups use, and rebuilds every
stored answer a new event makes stale (traceledger/lookup/prebuilt.py keeps them).
"""

from __future__ import annotations

import asyncio

import asyncpg

from traceledger.errors import NotFoundError
from traceledger.log.checkpoints import SignedCheckpoint
from traceledger.lookup.cache import CachedAnswer
from traceledger.lookup.history import HistoryService
from traceledger.lookup.prebuilt import prebuildable, store_prebuilt
from traceledger.standards.gs1 import GS1Key, parse_index_key
from traceledger.store.conn import Conn
from traceledger.store.leader import LeaderTask
from traceledger.store.locks import Lock

STORE_BATCH = 50  # answers written per statement
# Answers assembled at once: one's queries wait on the database while another's proofs
# and JSON run here.
CONCURRENT_BUILDS = 4


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
        self.task = LeaderTask(pool, "prebuilder", Lock.PREBUILDER, interval, self.build_once)
        self.built = 0  # answers stored by this process

    async def build_once(self) -> bool:
        """One chunk of new events, else one batch of stale answers; True if more waits."""
        try:
            checkpoint = await self._service.newest_checkpoint()
        except NotFoundError:
            return False  # nothing is provable before the first checkpoint
        async with self._pool.acquire() as conn:
            start: int = await conn.fetchval("SELECT next_idx FROM prebuild_state")
            self.task.position = start
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
        batch: list[CachedAnswer] = []
        for i in range(0, len(keys), CONCURRENT_BUILDS):
            if self.task.stopping:
                return False
            # Parsed a group at a time: a chunk names thousands of keys, and parsing them
            # all at once would hold the event loop for tens of milliseconds.
            group = _prebuildable(keys[i : i + CONCURRENT_BUILDS])
            built = await asyncio.gather(*(self._assemble(k, checkpoint) for k in group))
            self.task.beat()  # a chunk may take long: say it is not stalled
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
        except Exception as exc:
            exc.add_note(f"while building the answer for {key.canonical()}")
            raise

    async def _store(self, answers: list[CachedAnswer]) -> None:
        if answers:
            async with self._pool.acquire() as conn:
                await store_prebuilt(conn, answers)
            self.built += len(answers)


async def _touched(conn: Conn, start: int, end: int) -> list[str]:
    """The keys events in [start, end) name, and every stored answer whose walk visited
    one of them (the builder keeps those that are prebuildable)."""
    named = [
        r["key"]
        for r in await conn.fetch(
            "SELECT DISTINCT key FROM event_keys"
            " WHERE idx >= $1 AND idx < $2 AND role <> 'lotMember'",
            start,
            end,
        )
    ]
    rows = await conn.fetch("SELECT key FROM prebuilt_answers WHERE keys && $1::text[]", named)
    return sorted({*named, *(r["key"] for r in rows)})


def _prebuildable(keys: list[str]) -> list[GS1Key]:
    """The keys an answer is prebuilt for (traceledger/lookup/prebuilt.py)."""
    return [g for g in map(parse_index_key, keys) if g is not None and prebuildable(g)]


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
