"""Worker processes for pure CPU work: parsing, checking and hashing documents.

The event loop then only waits on the network and the database, so no large request
holds up the others, and every core works (one process runs Python on one core).
Workers start from a fork server that has already imported the modules they run, so a
pool starts in milliseconds; `workers=0` runs the work inline instead (for tools and
for debugging).
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import multiprocessing
import os
from collections.abc import Callable
from typing import ParamSpec, TypeVar

P = ParamSpec("P")
T = TypeVar("T")

# How much lower the workers' CPU priority is than the serving process's (nice(2)
# increment): when every core is busy, the event loop, which answers requests and feeds
# the database, runs first, and the batch work in the workers takes what is left.
WORKER_NICENESS = 10

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
    """Runs pure functions (their arguments and results picklable) in worker processes."""

    def __init__(self, workers: int) -> None:
        self.workers = workers
        self._executor: concurrent.futures.ProcessPoolExecutor | None = None

    async def __aenter__(self) -> CpuPool:
        if self.workers > 0:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload(PRELOAD)
            self._executor = concurrent.futures.ProcessPoolExecutor(
                self.workers, mp_context=context, initializer=os.nice, initargs=(WORKER_NICENESS,)
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
