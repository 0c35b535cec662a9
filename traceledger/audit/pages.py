"""Pages of the log worked on in order, each by a worker process on its own connection.

An audit reads every entry once and its cost is CPU per entry: a worker that reads its
page itself leaves the process that started it only the results to fold, so every core
works, and the database serves each worker's reads while the others compute.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import multiprocessing.util
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

import asyncpg

from traceledger.cpu import CpuPool, default_workers
from traceledger.errors import StoreError
from traceledger.store.conn import Conn
from traceledger.store.hosts import HostByHost, split_hosts
from traceledger.store.pool import dsn_of

T = TypeVar("T")

# What a page's work is: an async function of (connection, first index, page size),
# defined at a module's top level so that workers can be handed it.
PageWork = Callable[[Conn, int, int], Awaitable[T]]


def workers_for(
    pool: asyncpg.Pool, total: int, page: int, workers: int | None, module: str
) -> CpuPool:
    """Worker processes for `total` entries in pages of `page` (`workers`: how many, by
    default one per core, none for a single page); none without a DSN to connect with.
    `module` holds the page's work: the only one their fork server needs to import
    (unless the process has started one before, as the service has)."""
    wanted = (default_workers() if total > page else 0) if workers is None else workers
    return CpuPool(wanted if dsn_of(pool) is not None else 0, preload=[module])


class Pages(Generic[T]):
    """`work` on pages [n * size, (n + 1) * size) for n = 0, 1, ..., handed back in order,
    every worker busy and one page waiting. With workers, each page is read and worked
    on by a worker on its own connection; without, on `reader` here."""

    def __init__(
        self, reader: Conn, pool: asyncpg.Pool, cpu: CpuPool, size: int, work: PageWork[T]
    ) -> None:
        self.reader, self.cpu, self.size, self.work = reader, cpu, size, work
        self.dsn = dsn_of(pool) if cpu.workers else None
        self._ahead: collections.deque[asyncio.Future[T]] = collections.deque()
        self._next = 0

    async def next(self) -> T:
        """The next page's result."""
        while len(self._ahead) <= self.cpu.workers:
            self._ahead.append(asyncio.ensure_future(self._one(self._next)))
            self._next += self.size
        return await self._ahead.popleft()

    async def _one(self, start: int) -> T:
        if self.dsn is not None:
            return await self.cpu.run(on_own_connection, self.dsn, self.work, start, self.size)
        return await self.work(self.reader, start, self.size)

    async def close(self) -> None:
        """Cancel what is under way: `reader` must be idle before it goes back."""
        for task in self._ahead:
            task.cancel()
        for task in self._ahead:
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await task


# The pool's session settings that matter to an audit's queries (store/pool.py says why).
AUDIT_SETTINGS = {
    "plan_cache_mode": "force_custom_plan",
    "jit": "off",
    "application_name": "traceledger audit",
}

# A worker process's own connection, by DSN, and the event loop it runs on.
_READERS: dict[str, tuple[asyncio.AbstractEventLoop, asyncpg.Connection]] = {}


def on_own_connection(dsn: str, work: PageWork[T], start: int, size: int) -> T:
    """In a worker process: `work` on the page, on this process's own connection."""
    loop, conn = _READERS.get(dsn) or _open_reader(dsn)
    return loop.run_until_complete(work(conn, start, size))


def _open_reader(dsn: str) -> tuple[asyncio.AbstractEventLoop, asyncpg.Connection]:
    loop = asyncio.new_event_loop()
    try:
        # Host by host, as the pool connects; a multi-host DSN's target_session_attrs
        # keeps a worker on the primary, where the caller read how far to go.
        connect = HostByHost(split_hosts(dsn))(dsn, server_settings=AUDIT_SETTINGS)
        conn = loop.run_until_complete(connect)
    except (
        OSError,
        asyncpg.PostgresError,
        asyncpg.InterfaceError,
        asyncpg.InternalClientError,  # no host would take writes
    ) as exc:
        loop.close()
        raise StoreError(f"an audit worker cannot connect to PostgreSQL: {exc}") from exc
    # Closed as the worker exits (multiprocessing runs its finalizers then; atexit not).
    multiprocessing.util.Finalize(
        None, lambda: loop.run_until_complete(conn.close()), exitpriority=10
    )
    _READERS[dsn] = loop, conn
    return loop, conn
