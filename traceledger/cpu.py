"""Worker processes for pure CPU work: parsing, checking and hashing documents.

The event loop then only waits on the network and the database, so no large request
holds up the others, and every core works (one process runs Python on one core).
Workers start from a fork server that has already imported the modules they run (those
of the process's first pool), so a pool starts in milliseconds; `workers=0` runs the
work inline instead (for tools and for debugging).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import importlib
import multiprocessing
import os
import select
import signal
import threading
import time
from collections.abc import Callable, Sequence
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

# What workers import before the first task: the capture pipeline, the indexer's
# derivation of rows, and what they use.
PRELOAD = ["traceledger.ingest.prepare", "traceledger.ingest.indexer"]


def default_workers() -> int:
    """One worker per core this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


class CpuPool:
    """Runs pure functions (their arguments and results picklable) in worker processes.

    `preload`: the modules workers run, imported by the fork server before it forks any
    (the process's first pool decides: there is one fork server a process)."""

    def __init__(self, workers: int, preload: Sequence[str] = PRELOAD) -> None:
        self.workers = workers
        self.preload = list(preload)
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None

    async def __aenter__(self) -> CpuPool:
        if self.workers > 0:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(self.preload)
            self._executor = concurrent.futures.ProcessPoolExecutor(
                self.workers,
                mp_context=context,
                initializer=end_with,
                initargs=(os.getpid(),),
            )
            # Start every worker now, not on the first request: the first task would
            # otherwise wait for the fork server to import PRELOAD (a third of a second),
            # and the event loop with it.
            loop = asyncio.get_running_loop()
            warming = functools.partial(warm, self.preload)
            await asyncio.gather(
                *(loop.run_in_executor(self._executor, warming) for _ in range(self.workers))
            )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._executor is not None:
            executor, self._executor = self._executor, None
            await asyncio.to_thread(executor.shutdown, wait=True, cancel_futures=True)

    async def run(self, fn: Callable[P, T], *args: P.args, **kwargs: P.kwargs) -> T:
        if self._executor is None:
            return fn(*args, **kwargs)
        loop = asyncio.get_running_loop()
        # A partial of a module-level function pickles; a lambda would not.
        return await loop.run_in_executor(self._executor, functools.partial(fn, *args, **kwargs))


def warm(preload: list[str]) -> None:
    """Run in each worker as the pool starts: what the first task would do."""
    for module in preload:
        importlib.import_module(module)


def end_with(parent: int) -> None:
    """In each worker: exit when the process that started the pool has ended, however it
    ended. After a kill -9 nothing else would end them (a worker waits on a queue it
    holds both ends of, and the fork server lives while any worker does), and they would
    keep the dead server's stdout and stderr open.

    Ctrl-C reaches the whole process group: the serving process stops the pool, so a
    worker ignores it rather than print a KeyboardInterrupt traceback of its own."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_after, args=(parent,), name="end-with", daemon=True).start()


def _exit_after(parent: int) -> None:
    try:
        handle = os.pidfd_open(parent)
    except (AttributeError, OSError):  # not Linux 5.3+: look every second
        while _alive(parent):
            time.sleep(1.0)
    else:
        select.select([handle], [], [])  # readable once the process has ended
    os._exit(0)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
