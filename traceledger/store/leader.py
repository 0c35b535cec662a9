"""Background work that exactly one process does at a time (integrating, indexing, ...).

Each kind of work has an advisory lock. Every process tries to take it; the holder
runs rounds every `interval` until closed, the others wait and retry, so a crashed
leader is replaced within one interval of PostgreSQL noticing the dropped session.

Workers are supervised: a round that raises anything is logged when it happens (with
its traceback unless the database is merely unavailable or the worker refused on
purpose), counted, and retried after a backoff that doubles up to MAX_BACKOFF. A worker
that keeps failing at the same entry says so once (`stuck_at`), and never stops the
other workers, which are tasks of their own. The leader checks before every round that
its lock's session is still alive: after a failover the lock is gone with the old
primary, and another process may lead on the new one.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

import asyncpg

from traceledger.errors import TraceledgerError
from traceledger.store.conn import Conn
from traceledger.store.unavailable import database_unavailable

log = logging.getLogger(__name__)

# One round of work; True means more is already waiting, so go again at once.
Round = Callable[[], Awaitable[bool]]

MAX_BACKOFF = 30.0  # longest wait between failed rounds (seconds)
REPEATED = 3  # failures in a row at the same entry that make a worker "stuck" there
LOCK_PROBE_TIMEOUT = 5.0  # how long the lock's session may take to answer a probe


class _LostLeadership(Exception):  # noqa: N818 - a signal between two methods, not an error
    """The session holding the advisory lock is gone (a failover, a dropped connection)."""


def stall_limit(interval: float) -> float:
    """How long a leading worker may go without progress before it counts as stalled."""
    return max(10 * interval, 10.0)


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """One worker as /readyz and /metrics show it, at one moment."""

    name: str
    leading: bool
    running: bool  # its task is alive (only close() should end it)
    rounds: int  # rounds that succeeded, in this process
    failures: int  # rounds that failed, in this process
    consecutive_failures: int
    last_success_age: float | None  # seconds since the last successful round
    idle: float | None  # while leading: seconds since the last sign of progress
    last_error: str | None  # while the latest round failed: why
    stuck_at: int | None  # the entry it keeps failing at, once REPEATED times in a row
    interval: float

    @classmethod
    def off(cls, name: str = "") -> WorkerStatus:
        """A worker this process does not run."""
        return cls(name, False, False, 0, 0, 0, None, None, None, None, 0.0)

    def problem(self) -> str | None:
        """Why this worker makes the process not ready, or None if it does not."""
        if not self.running:
            return f"the {self.name} stopped: {self.last_error or 'no error recorded'}"
        if not self.leading:
            return None
        if self.consecutive_failures:
            where = f" at entry {self.stuck_at}" if self.stuck_at is not None else ""
            return (
                f"the {self.name} is failing{where} ({self.consecutive_failures} rounds "
                f"in a row): {self.last_error}"
            )
        limit = stall_limit(self.interval)
        if self.idle is not None and self.idle > limit:
            return (
                f"the {self.name} is stalled: no successful round for {self.idle:.0f}s "
                f"(limit {limit:g}s)"
            )
        return None


class LeaderTask:
    def __init__(
        self, pool: asyncpg.Pool, name: str, lock_id: int, interval: float, work: Round
    ) -> None:
        self._pool = pool
        self.name = name
        self._lock_id = lock_id
        self.interval = interval
        self._work = work
        self._stop = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self.last_error: Exception | None = None
        # Whether this process holds the lock and does the work; since when (monotonic).
        self.leading = False
        self.leading_since: float | None = None
        # time.monotonic() after the last round that finished without an error.
        self.last_success: float | None = None
        # time.monotonic() when a long round last said it is making progress (beat()).
        self.last_beat: float | None = None
        self.rounds = 0
        self.failures = 0
        self.consecutive_failures = 0
        # The entry the current round works on, when the worker says (its cursor).
        self.position: int | None = None
        self.stuck_at: int | None = None
        self._failing_at: int | None = None
        self._failing_repeats = 0
        self._last_logged: str | None = None

    @property
    def stopping(self) -> bool:
        """True once close() was called: long rounds may stop early at a safe point."""
        return self._stop.is_set()

    def beat(self) -> None:
        """Say that a long round is making progress (it is not stalled)."""
        self.last_beat = time.monotonic()

    def status(self) -> WorkerStatus:
        now = time.monotonic()
        running = self._task is not None and (not self._task.done() or self.stopping)
        progress = [t for t in (self.last_success, self.last_beat, self.leading_since) if t]
        return WorkerStatus(
            name=self.name,
            leading=self.leading,
            running=running,
            rounds=self.rounds,
            failures=self.failures,
            consecutive_failures=self.consecutive_failures,
            last_success_age=None if self.last_success is None else now - self.last_success,
            idle=now - max(progress) if self.leading and progress else None,
            last_error=_describe(self.last_error) if self.last_error else None,
            stuck_at=self.stuck_at,
            interval=self.interval,
        )

    async def __aenter__(self) -> LeaderTask:
        self._task = asyncio.create_task(self._run(), name=self.name)
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
                            await self._lead(lock_conn)
                        finally:
                            with contextlib.suppress(Exception):  # a dead session has no lock
                                await lock_conn.execute(
                                    "SELECT pg_advisory_unlock($1)", self._lock_id
                                )
                        if self._stop.is_set():
                            return
            except Exception as exc:
                self.last_error = exc
                if database_unavailable(exc):
                    log.warning("%s: the database is unavailable: %s", self.name, _describe(exc))
                else:
                    log.exception("%s: cannot take the lock", self.name)
            await self._sleep(self.interval)

    async def _lead(self, lock_conn: Conn) -> None:
        self.leading, self.leading_since = True, time.monotonic()
        log.info("%s: leading", self.name)
        try:
            await self._rounds(lock_conn)
        except _LostLeadership as exc:
            self.last_error = exc.__cause__ if isinstance(exc.__cause__, Exception) else exc
            log.warning("%s: lost the lock's session (%s); standing by", self.name, exc)
        finally:
            self.leading = False

    async def _rounds(self, lock_conn: Conn) -> None:
        while True:
            stopping = self._stop.is_set()
            await self._check_lock(lock_conn)
            delay = self.interval
            try:
                while await self._work():
                    self._succeeded()
                self._succeeded()
            except Exception as exc:
                delay = self._failed(exc)
            if stopping:
                return
            await self._sleep(delay)

    async def _check_lock(self, lock_conn: Conn) -> None:
        """Raise _LostLeadership unless the session that holds the lock still answers."""
        try:
            async with asyncio.timeout(max(self.interval, LOCK_PROBE_TIMEOUT)):
                await lock_conn.fetchval("SELECT 1")
        except Exception as exc:
            raise _LostLeadership(_describe(exc)) from exc

    def _succeeded(self) -> None:
        self.rounds += 1
        self.last_success = time.monotonic()
        if self.consecutive_failures:
            log.info(
                "%s: working again after %d failed rounds", self.name, self.consecutive_failures
            )
        self.last_error = None
        self.consecutive_failures = 0
        self.stuck_at = self._failing_at = self._last_logged = None
        self._failing_repeats = 0

    def _failed(self, exc: Exception) -> float:
        """Record a failed round, log it, and return how long to wait before the next."""
        self.failures += 1
        self.consecutive_failures += 1
        self.last_error = exc
        if self.position is not None and self.position == self._failing_at:
            self._failing_repeats += 1
        else:
            self._failing_at, self._failing_repeats = self.position, 1
        delay = min(self.interval * 2.0 ** (self.consecutive_failures - 1), MAX_BACKOFF)
        self._log_failure(exc, delay)
        if self._failing_repeats == REPEATED and self._failing_at is not None:
            self.stuck_at = self._failing_at
            log.error(
                "%s keeps failing at entry %d (%d times in a row): %s; it retries every "
                "%gs at most, the other workers go on",
                self.name,
                self.stuck_at,
                REPEATED,
                _describe(exc),
                MAX_BACKOFF,
            )
        return delay

    def _log_failure(self, exc: Exception, delay: float) -> None:
        described = _describe(exc)
        retry = f"retrying in {delay:.2g}s"
        if database_unavailable(exc):
            log.warning("%s: the database is unavailable: %s; %s", self.name, described, retry)
        elif isinstance(exc, TraceledgerError):
            # Deliberate refusals (an inconsistent log, a broken chain): keep the last
            # good state, say why, try again later.
            log.error("%s refuses: %s; %s", self.name, described, retry)
        elif described != self._last_logged:
            # A bug or data it cannot handle: the traceback, once per distinct error.
            log.error("%s failed: %s; %s", self.name, described, retry, exc_info=exc)
        else:
            log.error(
                "%s failed again (%d rounds in a row): %s; %s",
                self.name,
                self.consecutive_failures,
                described,
                retry,
            )
        self._last_logged = described

    async def _sleep(self, seconds: float) -> None:
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._stop.wait(), seconds)


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
