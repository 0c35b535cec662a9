"""Numbered SQL migrations (traceledger/store/migrations/), applied at start under a lock."""

from __future__ import annotations

import logging
import re
from importlib import resources

import asyncpg

from traceledger.errors import StoreError
from traceledger.store.conn import Conn
from traceledger.store.locks import Lock

log = logging.getLogger(__name__)

_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
MIN_SERVER_VERSION = 150000


def migrations() -> list[tuple[int, str, str]]:
    """The packaged migrations as (version, name, sql), in order."""
    found = []
    for item in resources.files("traceledger.store.migrations").iterdir():
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
    await conn.execute("SELECT pg_advisory_lock($1)", Lock.MIGRATIONS)
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
        if not applied:
            log.info("schema up to date at version %d", known[-1][0] if known else 0)
    finally:
        await conn.execute("SELECT pg_advisory_unlock($1)", Lock.MIGRATIONS)
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
