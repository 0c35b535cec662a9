"""How often each serialized item's code is looked up: the counterfeit signal of Chinese
trace labels ("此码已被查询 N 次，首次查询于 ...").

A genuine code is looked up a few times (the shop, the buyer); a code copied onto fakes
by every buyer of a fake. The count must be cheap to keep, hard to inflate and private:

- No client address is stored anywhere. `RepeatFilter` keeps, in memory only and for one
  window, a keyed hash of (client, key); the key is random, rotates every window and is
  never written down, so what it held cannot be linked back to an address afterwards.
- A client counts at most once a window (a minute) per code, so a reload, or the page's
  own proof check fetching the answer, is not a second scan, and inflating a count takes
  many addresses and a lot of time.
- The lookup never waits for a write to count: `record` only adds to a pending batch in
  memory, which `ScanFlusher` (started by `Ledger.open`) writes every interval in one
  statement. `tally` reads a code's stored count once per few seconds at most (waiting
  for a flush under way, so the two never lose or double a count), and adds what this
  process has not written yet. A crash loses at most one interval of counts.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import hmac
import logging
import secrets
import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from traceledger.standards.gs1 import GS1Key
from traceledger.store.conn import Conn

__all__ = ["RepeatFilter", "ScanCounter", "ScanFlusher", "Tally", "most_scanned"]

log = logging.getLogger(__name__)

WINDOW = 60.0  # seconds in which one client counts once per code
MAX_CLIENTS = 200_000  # (client, code) pairs remembered in a window
MAX_PENDING = 100_000  # codes waiting to be written before new ones are dropped
MAX_KNOWN = 50_000  # stored counts kept in memory
MAX_LISTED = 500  # serials an inspector's list may hold


@dataclass(frozen=True, slots=True)
class Tally:
    """A code's look-ups: how many, the first and the last (UTC)."""

    count: int
    first: datetime
    last: datetime

    def plus(self, other: Tally | None) -> Tally:
        if other is None:
            return self
        return Tally(
            self.count + other.count, min(self.first, other.first), max(self.last, other.last)
        )


class RepeatFilter:
    """Whether a client already counted for a code within the last window.

    Remembers HMAC(secret, client, code) with the time it counted. The secret changes
    every window and the previous one is kept for one more, so a pair seen just before
    a change is still recognised just after it; older pairs are forgotten.
    """

    def __init__(
        self,
        window: float = WINDOW,
        clock: Callable[[], float] = time.monotonic,
        max_entries: int = MAX_CLIENTS,
    ) -> None:
        self.window = window
        self._clock = clock
        self._max = max_entries
        self._secrets: list[tuple[float, bytes]] = []  # (created, secret), newest first
        self._seen: OrderedDict[bytes, float] = OrderedDict()  # oldest first

    def _rotate(self, now: float) -> None:
        if not self._secrets or now - self._secrets[0][0] >= self.window:
            self._secrets = [(now, secrets.token_bytes(32)), *self._secrets[:1]]

    def _forget(self, now: float) -> None:
        while self._seen:
            digest, when = next(iter(self._seen.items()))
            if now - when < self.window and len(self._seen) < self._max:
                return
            del self._seen[digest]

    def __len__(self) -> int:
        """How many (client, code) pairs are remembered."""
        return len(self._seen)

    def first_in_window(self, client: str, code: str) -> bool:
        """True (and remembered) if `client` has not counted for `code` this window."""
        now = self._clock()
        self._rotate(now)
        self._forget(now)
        message = f"{client}\n{code}".encode()
        digests = [hmac.digest(secret, message, hashlib.sha256)[:16] for _, secret in self._secrets]
        if any(d in self._seen for d in digests):
            return False
        self._seen[digests[0]] = now
        return True


def _merge(into: dict[str, Tally], more: dict[str, Tally]) -> None:
    for key, tally in more.items():
        into[key] = tally.plus(into.get(key))


class ScanCounter:
    """Counts look-ups per code in memory; `flush` writes them, `tally` reads them."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        read_pool: asyncpg.Pool | None = None,
        *,
        window: float = WINDOW,
        cache_seconds: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._pool = pool
        self._read_pool = read_pool or pool
        self._clock = clock
        self.repeats = RepeatFilter(window, clock)
        self._cache_seconds = cache_seconds
        self._pending: dict[str, Tally] = {}
        self._flushing: dict[str, Tally] = {}
        self._flush_lock = asyncio.Lock()
        # Stored counts as last read or written: key -> (tally or None, when read).
        self._known: OrderedDict[str, tuple[Tally | None, float]] = OrderedDict()
        self.dropped = 0  # look-ups not counted because too many codes were pending

    def record(self, key: str, client: str) -> bool:
        """Count a look-up of `key` by `client` (an address, never stored); False when
        the client already counted for it this window."""
        if not self.repeats.first_in_window(client, key):
            return False
        if key not in self._pending and len(self._pending) >= MAX_PENDING:
            self.dropped += 1  # the database is away for long: forget rather than grow
            return False
        now = datetime.now(UTC)
        _merge(self._pending, {key: Tally(1, now, now)})
        return True

    async def tally(self, key: str) -> Tally | None:
        """`key`'s look-ups: stored (read at most every few seconds) plus not yet written;
        None when nothing is known (never counted, or the database cannot say)."""
        known = self._known.get(key)
        if known is None or self._clock() - known[1] > self._cache_seconds:
            # Never while a flush is under way: a read that overlapped one could miss the
            # counts it was writing (read before its commit, remembered after it) or count
            # them twice (read after its commit, while they are still "flushing").
            async with self._flush_lock:
                try:
                    async with self._read_pool.acquire() as conn:
                        row = await conn.fetchrow(
                            "SELECT count, first_at, last_at FROM scan_counts WHERE key = $1",
                            key,
                        )
                except (OSError, asyncpg.PostgresError) as exc:
                    log.warning("scan count of %s not read: %s", key, exc)
                    return None  # the page goes without a count rather than a wrong one
                self._remember(key, None if row is None else Tally(*row))
            known = self._known[key]
        stored = known[0]
        unwritten = [t for t in (self._flushing.get(key), self._pending.get(key)) if t]
        for tally in unwritten:
            stored = tally.plus(stored)
        return stored

    def _remember(self, key: str, tally: Tally | None) -> None:
        self._known[key] = (tally, self._clock())
        self._known.move_to_end(key)
        while len(self._known) > MAX_KNOWN:
            self._known.popitem(last=False)

    async def flush(self) -> int:
        """Write the pending counts in one statement; returns how many codes. A flush
        that finds another under way waits for it, then writes what is pending by then."""
        async with self._flush_lock:
            return await self._flush()

    async def _flush(self) -> int:
        if not self._pending:
            return 0
        self._flushing, self._pending = self._pending, {}
        keys = sorted(self._flushing)  # one lock order for concurrent flushers
        try:
            async with self._pool.acquire() as conn:
                rows = await conn.fetch(
                    "INSERT INTO scan_counts AS s (key, count, first_at, last_at)"
                    " SELECT * FROM unnest($1::text[], $2::bigint[],"
                    "                      $3::timestamptz[], $4::timestamptz[])"
                    " ON CONFLICT (key) DO UPDATE SET count = s.count + excluded.count,"
                    "   first_at = least(s.first_at, excluded.first_at),"
                    "   last_at = greatest(s.last_at, excluded.last_at)"
                    " RETURNING key, count, first_at, last_at",
                    keys,
                    [self._flushing[k].count for k in keys],
                    [self._flushing[k].first for k in keys],
                    [self._flushing[k].last for k in keys],
                )
        except (OSError, asyncpg.PostgresError):
            _merge(self._pending, self._flushing)  # try again next interval
            raise
        finally:
            written, self._flushing = self._flushing, {}
        for row in rows:
            self._remember(row["key"], Tally(row["count"], row["first_at"], row["last_at"]))
        return len(written)


class ScanFlusher:
    """Writes a counter's pending counts every `interval` seconds, and once more on exit."""

    def __init__(self, counter: ScanCounter, interval: float) -> None:
        self.counter = counter
        self._interval = interval
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def __aenter__(self) -> ScanFlusher:
        self._task = asyncio.create_task(self._run(), name="scan-flusher")
        return self

    async def __aexit__(self, *exc: object) -> None:
        self._stop.set()
        if self._task is not None:
            await self._task
        with contextlib.suppress(OSError, asyncpg.PostgresError):
            await self.counter.flush()

    async def _run(self) -> None:
        while not self._stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._stop.wait(), self._interval)
            try:
                await self.counter.flush()
            except (OSError, asyncpg.PostgresError) as exc:
                log.warning("scan counts not written yet: %s", exc)


def _listed(row: Any) -> dict[str, Any]:
    return {
        "key": row["key"],
        "count": row["count"],
        "first": row["first_at"].astimezone(UTC).isoformat(),
        "last": row["last_at"].astimezone(UTC).isoformat(),
    }


# The look-ups of one serial, of a lot's serials, of a GTIN's serials; most first.
_MOST_SCANNED = {
    "serial": "SELECT key, count, first_at, last_at FROM scan_counts WHERE key = $1"
    " ORDER BY count DESC, key LIMIT $2",
    # The serials a lot's commissioning events made (the indexer links them: lotMember).
    "lot": "SELECT key, count, first_at, last_at FROM scan_counts"
    " WHERE key IN (SELECT e.key FROM event_keys m"
    "               JOIN event_keys e ON e.idx = m.idx AND e.role IN ('epc', 'output')"
    "               WHERE m.key = $1 AND m.role = 'lotMember')"
    " ORDER BY count DESC, key LIMIT $2",
    # A prefix search on the primary key (its C collation lets LIKE use the index).
    "class": "SELECT key, count, first_at, last_at FROM scan_counts WHERE key LIKE $1"
    " ORDER BY count DESC, key LIMIT $2",
}


async def most_scanned(conn: Conn, key: GS1Key, limit: int = 20) -> list[dict[str, Any]]:
    """The most looked-up serials of `key`: of a lot (the serials its commissioning
    events made), of a product class (every serial of the GTIN), or the one serial
    itself. Many look-ups of one serial suggest a copied code."""
    limit = max(1, min(limit, MAX_LISTED))
    if key.serial is not None:
        rows = await conn.fetch(_MOST_SCANNED["serial"], key.item_key().canonical(), limit)
    elif key.lot is not None:
        rows = await conn.fetch(_MOST_SCANNED["lot"], key.canonical(), limit)
    else:
        rows = await conn.fetch(_MOST_SCANNED["class"], key.canonical() + "/21/%", limit)
    return [_listed(r) for r in rows]
