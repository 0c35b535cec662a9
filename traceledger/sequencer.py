"""Sequencing: give entries durable, contiguous indexes, many appenders per transaction.

Appenders hand their entries to one sequencer task per process. It gathers everything
waiting (group commit), then runs a single short transaction: lock the head row (the
single-writer lock across processes), drop entries whose identity is already logged,
COPY the new rows, move the head, commit. Only after the commit is durable does any
appender learn its indexes, so an acknowledged entry is never lost.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import asyncpg

from traceledger.errors import BusyError, StoreError, TraceledgerError
from traceledger.leaf import Leaf, sha256
from traceledger.merkle import leaf_hash

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Entry:
    """What an appender logs: a 32-byte identity (for dedup), the payload, its envelope."""

    identity: bytes
    payload: bytes
    envelope: bytes | None = None

    def __post_init__(self) -> None:
        if len(self.identity) != 32:
            raise ValueError("identity must be 32 bytes (a SHA-256 digest)")


@dataclass(frozen=True, slots=True)
class Appended:
    index: int
    duplicate: bool


@dataclass(frozen=True, slots=True)
class Head:
    size: int
    last_hash: bytes
    last_time_us: int


@dataclass(slots=True)
class _Request:
    entries: Sequence[Entry]
    done: asyncio.Future[list[Appended]]


def _now_us() -> int:
    return time.time_ns() // 1000


class Sequencer:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        max_batch_entries: int = 10_000,
        max_pending_entries: int = 100_000,
        clock: Callable[[], int] = _now_us,
    ) -> None:
        self._pool = pool
        self._max_batch = max_batch_entries
        self._max_pending = max_pending_entries
        self._clock = clock
        self._queue: list[_Request] = []
        self._pending_entries = 0
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False

    async def __aenter__(self) -> Sequencer:
        self._task = asyncio.create_task(self._run(), name="sequencer")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Finish what is queued, then stop; later appends are refused."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def append(self, entries: Sequence[Entry]) -> list[Appended]:
        """Append atomically: all entries get indexes in one committed transaction, or none."""
        if not entries:
            return []
        if self._closing or self._task is None:
            raise BusyError("the log is shutting down", retry_after=5)
        if len(entries) > self._max_batch:
            raise BusyError(
                f"{len(entries)} entries exceed the per-transaction limit of {self._max_batch}"
            )
        if self._pending_entries + len(entries) > self._max_pending:
            raise BusyError(f"the sequencer already holds {self._pending_entries} entries")
        request = _Request(entries, asyncio.get_running_loop().create_future())
        # If the appender is cancelled (client gone), nobody awaits the outcome: mark it seen.
        request.done.add_done_callback(lambda f: f.cancelled() or f.exception())
        self._queue.append(request)
        self._pending_entries += len(entries)
        self._wakeup.set()
        return await asyncio.shield(request.done)

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                group = self._take_group()
                try:
                    await self._settle(group)
                finally:
                    self._pending_entries -= sum(len(r.entries) for r in group)
            if self._closing:
                return

    async def _settle(self, group: list[_Request]) -> None:
        try:
            results = await self._commit(group)
        except Exception as exc:
            if len(group) > 1:
                # One request must not sink the others that shared its transaction.
                for req in group:
                    await self._settle([req])
                return
            log.exception("sequencing failed")
            err = exc if isinstance(exc, TraceledgerError) else StoreError(str(exc))
            if not group[0].done.done():
                group[0].done.set_exception(err)
            return
        for req, res in zip(group, results, strict=True):
            if not req.done.done():
                req.done.set_result(res)

    def _take_group(self) -> list[_Request]:
        group: list[_Request] = []
        total = 0
        while self._queue and (not group or total + len(self._queue[0].entries) <= self._max_batch):
            req = self._queue.pop(0)
            group.append(req)
            total += len(req.entries)
        return group

    async def _commit(self, group: list[_Request]) -> list[list[Appended]]:
        identities = list({e.identity for req in group for e in req.entries})
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow("SELECT size, last_hash, last_time FROM log_head FOR UPDATE")
            if row is None:
                raise StoreError("log_head row is missing; the schema is damaged")
            head = Head(row["size"], bytes(row["last_hash"]), row["last_time"])
            known: dict[bytes, int] = {
                bytes(r["identity"]): r["idx"]
                for r in await conn.fetch(
                    "SELECT identity, idx FROM entries WHERE identity = ANY($1::bytea[])",
                    identities,
                )
            }
            rows, envelopes, results, head = self._plan(group, head, known)
            if envelopes:
                await conn.execute(
                    "INSERT INTO envelopes (hash, body)"
                    " SELECT * FROM unnest($1::bytea[], $2::bytea[]) ON CONFLICT (hash) DO NOTHING",
                    list(envelopes),
                    list(envelopes.values()),
                )
            if rows:
                await conn.copy_records_to_table(
                    "entries",
                    records=rows,
                    columns=["idx", "identity", "leaf", "payload", "envelope_hash"],
                )
                await conn.execute(
                    "UPDATE log_head SET size = $1, last_hash = $2, last_time = $3",
                    head.size,
                    head.last_hash,
                    head.last_time_us,
                )
        return results

    def _plan(
        self, group: list[_Request], head: Head, known: dict[bytes, int]
    ) -> tuple[list[tuple[object, ...]], dict[bytes, bytes], list[list[Appended]], Head]:
        """Assign indexes and build leaves; pure apart from reading the clock."""
        # Record times never go backwards along the chain, even if the wall clock does.
        now = max(self._clock(), head.last_time_us)
        size, prev = head.size, head.last_hash
        rows: list[tuple[object, ...]] = []
        envelopes: dict[bytes, bytes] = {}
        results: list[list[Appended]] = []
        for req in group:
            out: list[Appended] = []
            for entry in req.entries:
                if entry.identity in known:
                    out.append(Appended(known[entry.identity], duplicate=True))
                    continue
                env_hash = None
                if entry.envelope is not None:
                    env_hash = sha256(entry.envelope)
                    envelopes[env_hash] = entry.envelope
                leaf = Leaf(size, prev, now, entry.identity, sha256(entry.payload), env_hash)
                encoded = leaf.encode()
                rows.append((size, entry.identity, encoded, entry.payload, env_hash))
                known[entry.identity] = size
                out.append(Appended(size, duplicate=False))
                prev = leaf_hash(encoded)
                size += 1
            results.append(out)
        return rows, envelopes, results, Head(size, prev, now)


async def read_head(conn: asyncpg.Connection) -> Head:
    row = await conn.fetchrow("SELECT size, last_hash, last_time FROM log_head")
    if row is None:
        raise StoreError("log_head row is missing; the schema is damaged")
    return Head(row["size"], bytes(row["last_hash"]), row["last_time"])
