"""Background work that exactly one process does at a time (integrating, indexing).

Each kind of work has an advisory lock. Every process tries to take it; the holder
runs rounds every `interval` until closed, the others wait and retry, so a crashed
leader is replaced within one interval of PostgreSQL noticing the dropped session.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable

import asyncpg

from traceledger.errors import TraceledgerError

log = logging.getLogger(__name__)

# One round of work; True means more is already waiting, so go again at once.
Round = Callable[[], Awaitable[bool]]


class LeaderTask:
    def __init__(
        self, pool: asyncpg.Pool, name: str, lock_id: int, interval: float, work: Round
    ) -> None:
        self._pool = pool
        self._name = name
        self._lock_id = lock_id
        self._interval = interval
        self._work = work
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.last_error: Exception | None = None
        # Whether this process holds the lock and does the work; since when (monotonic).
        self.leading = False
        self.leading_since: float | None = None
        # time.monotonic() after the last round that finished without an error.
        self.last_success: float | None = None

    @property
    def stopping(self) -> bool:
        """True once close() was called: long rounds may stop early at a safe point."""
        return self._stop.is_set()

    async def __aenter__(self) -> LeaderTask:
        self._task = asyncio.create_task(self._run(), name=self._name)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Run one last round (if leading), then stop."""
        self._stop.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def _run(self) -> None:
        while not self._stop.is_set():
            try:
                async with self._pool.acquire() as lock_conn:
                    # A dedicated connection holds the session lock for as long as we lead.
                    if await lock_conn.fetchval("SELECT pg_try_advisory_lock($1)", self._lock_id):
                        try:
                            await self._lead()
                        finally:
                            await lock_conn.execute("SELECT pg_advisory_unlock($1)", self._lock_id)
                        return
            except (OSError, asyncpg.PostgresError) as exc:
                self.last_error = exc
                log.warning("%s: %s; retrying", self._name, exc)
            await self._sleep()

    async def _lead(self) -> None:
        self.leading, self.leading_since = True, time.monotonic()
        try:
            await self._rounds()
        finally:
            self.leading = False

    async def _rounds(self) -> None:
        while True:
            stopping = self._stop.is_set()
            try:
                while await self._work():
                    pass
                self.last_error = None
                self.last_success = time.monotonic()
            except TraceledgerError as exc:
                # Deliberate refusals (an inconsistent log, a broken chain): keep the last
                # good state, say why, try again next round.
                self.last_error = exc
                log.error("%s refuses: %s", self._name, exc)  # noqa: TRY400 - expected, not a bug
            except (OSError, asyncpg.PostgresError) as exc:
                self.last_error = exc
                log.warning("%s: %s; retrying", self._name, exc)
            if stopping:
                return
            await self._sleep()

    async def _sleep(self) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), self._interval)
