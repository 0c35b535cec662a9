"""Earlier, frozen logs ("shards") that lookups read beside the current log.

A log rotates by period (a new origin and key each year, say; `traceledger rotate`),
as public transparency logs do, so that no tree and no key lives forever. Each shard is
a complete traceledger log in its own database. The current one takes appends; the past
ones are only read: opened without migrating, with no workers, and their origin and
verifier key taken from their own `log_meta` (what they were created with).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import asyncpg

from traceledger.errors import ConfigError
from traceledger.log.identity import stored_identity
from traceledger.log.reader import LogReader
from traceledger.store.pool import connect_pool
from traceledger.tlog.note import Verifier


@dataclass(frozen=True, slots=True)
class Shard:
    """One frozen log: where to read it, and the key its checkpoints must verify with."""

    origin: str
    verifier: Verifier
    pool: asyncpg.Pool
    reader: LogReader


def check_distinct(current: str, past: Sequence[str]) -> None:
    """An origin names one log: two shards under one name would make `log` ambiguous."""
    seen = {current}
    for origin in past:
        if origin in seen:
            which = "the current log's" if origin == current else "another past shard's"
            raise ConfigError(
                f"the past shard {origin!r} has {which} origin; every shard needs its own "
                "origin (TRACELEDGER_PAST_SHARDS lists earlier logs, not the current one)"
            )
        seen.add(origin)


@contextlib.asynccontextmanager
async def open_past_shards(
    dsns: Sequence[str], current_origin: str, *, pool_max: int = 4
) -> AsyncIterator[list[Shard]]:
    """Open every past shard read-only; refuse duplicate origins; close them on exit."""
    async with contextlib.AsyncExitStack() as stack:
        shards: list[Shard] = []
        for dsn in dsns:
            pool = await connect_pool(
                dsn,
                min_size=1,
                max_size=max(2, pool_max),
                migrate_schema=False,
                application_name="traceledger-past-shard",
            )
            stack.push_async_callback(pool.close)
            async with pool.acquire() as conn:
                verifier = await stored_identity(conn)
                if verifier is None:
                    raise ConfigError(
                        "a past shard's database holds no log (TRACELEDGER_PAST_SHARDS)"
                    )
            shards.append(Shard(verifier.name, verifier, pool, LogReader(pool)))
        check_distinct(current_origin, [s.origin for s in shards])
        yield shards
