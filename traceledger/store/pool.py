"""Connection pools to PostgreSQL, with the session settings every query relies on."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg

from traceledger.errors import StoreError
from traceledger.store.hosts import HostByHost, split_hosts
from traceledger.store.schema import check_schema, migrate

log = logging.getLogger(__name__)


# Which server a pool reached: with a multi-host DSN, the one that answered read-write.
_WHERE = (
    "SELECT current_setting('server_version') AS version, current_database() AS database,"
    " coalesce(host(inet_server_addr()) || ':' || inet_server_port(), 'a local socket')"
    " AS address"
)


def dsn_of(pool: asyncpg.Pool) -> str | None:
    """The DSN `pool` connects with, for work that needs connections of its own (verify's
    worker processes); None if there is none to give. asyncpg keeps it only in a private
    attribute (and Pool takes no weak references, so we cannot keep our own note)."""
    args = getattr(pool, "_connect_args", None) or [None]
    return args[0] if isinstance(args[0], str) else None


async def connect_pool(
    dsn: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    migrate_schema: bool = True,
    application_name: str = "traceledger",
) -> asyncpg.Pool:
    """Open a pool and bring the schema up to date (or, without `migrate_schema`, check it).

    A DSN naming several hosts is connected host by host (traceledger/store/hosts.py)."""
    hosts = split_hosts(dsn)
    try:
        pool = await asyncpg.create_pool(
            dsn,
            connect=HostByHost(hosts) if len(hosts) > 1 else None,
            min_size=min_size,
            max_size=max_size,
            # asyncpg prepares every statement; after five runs PostgreSQL may switch to a
            # generic plan that ignores the actual keys (`key = ANY($1)`), which turned a
            # 1 ms lookup query into 45 ms. Plan each execution for its parameters.
            server_settings={
                "plan_cache_mode": "force_custom_plan",
                # Our queries are short index lookups. Before statistics catch up with a
                # bulk load, the planner's inflated costs trigger JIT compilation, which
                # took 18 ms of a 1 ms history query. JIT never pays off here.
                "jit": "off",
                # Names our sessions in pg_stat_activity (which pool, on which server).
                "application_name": application_name,
            },
        )
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        raise StoreError(f"cannot connect to PostgreSQL: {exc}") from exc
    try:
        async with pool.acquire() as conn:
            if migrate_schema:
                await migrate(conn)
            else:
                await check_schema(conn)
            where = await conn.fetchrow(_WHERE)
    except BaseException:
        await pool.close()
        raise
    assert where is not None
    log.info(
        "database pool %s open (%d to %d connections): PostgreSQL %s at %s, database %s",
        application_name,
        min_size,
        max_size,
        where["version"],
        where["address"],
        where["database"],
    )
    return pool


@contextlib.asynccontextmanager
async def connect_one(
    dsn: str, application_name: str = "traceledger"
) -> AsyncIterator[asyncpg.Connection]:
    """One connection for a tool (backup, rotation), closed on the way out; an unreachable
    server is a StoreError."""
    try:
        conn = await asyncpg.connect(dsn, server_settings={"application_name": application_name})
    except (TimeoutError, OSError, asyncpg.PostgresError) as exc:
        raise StoreError(f"cannot connect to PostgreSQL: {exc}") from exc
    try:
        yield conn
    finally:
        await conn.close()
