"""Rotating the log to a new time shard: a new origin, key and database, the old log frozen.

The operator stops the ingest service (it signs a final checkpoint on the way out), runs
`traceledger rotate`, and restarts with the settings it prints. The old log is never
appended to again; lookups keep reading it as a past shard (traceledger/shards.py).
Rotation inside a running process, at a period boundary, is deliberately not automatic:
it needs a new key file and new settings on every process, which is an operator's job.
"""

from __future__ import annotations

import io
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from traceledger.errors import ConfigError, StoreError
from traceledger.log.checkpoints import latest_checkpoint
from traceledger.log.identity import check_log_identity, read_log_identity, stored_identity
from traceledger.log.logkey import load_or_create_log_key
from traceledger.log.shards import check_distinct
from traceledger.settings import Settings
from traceledger.store import schema
from traceledger.store.pool import connect_one, connect_pool
from traceledger.tlog.note import Signer

# Who may capture and query carries over to the new shard; catalogs are log entries and
# stay in their shard. In foreign-key order; the audit trail stays with the old log.
REGISTRY_TABLES = ("enterprises", "enterprise_prefixes", "enterprise_keys", "access_tokens")
# Processes that append to a log: they must be stopped before it is frozen.
_WRITERS = ("traceledger-ingest", "traceledger-all")
ROTATE = "traceledger-rotate"  # how this tool's connections show in pg_stat_activity


@dataclass(frozen=True, slots=True)
class Rotation:
    """What the operator must configure from now on."""

    database_url: str
    origin: str
    log_key: Path
    past_shards: tuple[str, ...]
    verifier_key: str
    final_size: int  # the frozen log's final checkpoint size
    archived_published: Path | None  # where the old log's published checkpoint went

    def environment(self) -> dict[str, str]:
        return {
            "DATABASE_URL": self.database_url,
            "TRACELEDGER_ORIGIN": self.origin,
            "TRACELEDGER_LOG_KEY": str(self.log_key),
            "TRACELEDGER_PAST_SHARDS": ",".join(self.past_shards),
        }


def file_safe(origin: str) -> str:
    """An origin as part of a file name (`a.org/log/2027` -> `a.org-log-2027`)."""
    return re.sub(r"[^A-Za-z0-9._-]+", "-", origin).strip("-.")


def _with_database(dsn: str, name: str) -> str:
    return urlunsplit(urlsplit(dsn)._replace(path="/" + name))


async def rotate(settings: Settings, new_origin: str, new_dsn: str) -> Rotation:
    """Freeze the current log and create the next one; see the module docstring."""
    if not settings.database_url:
        raise ConfigError(
            "rotation needs DATABASE_URL: the embedded PostgreSQL's address changes between "
            "starts, so a past shard on it could not be named in TRACELEDGER_PAST_SHARDS"
        )
    Settings(origin=new_origin)  # the same rules as any origin
    if new_dsn == settings.database_url or new_dsn in settings.past_shards:
        raise ConfigError("the new shard needs a database of its own")
    key_file = settings.log_key_file.parent / f"log-key-{file_safe(new_origin)}.pem"
    if key_file.exists():
        raise ConfigError(f"{key_file} exists; refusing to overwrite a log key")
    past = await _past_origins(settings.past_shards)
    if new_origin == settings.origin or new_origin in past:
        raise ConfigError(f"{new_origin!r} already names a log; the new one needs its own origin")
    check_distinct(settings.origin, past)
    final = await _freeze(settings)
    await _create_database(new_dsn)
    signer = Signer(new_origin, load_or_create_log_key(key_file))
    await _start_shard(settings.database_url, new_dsn, signer)
    archived = None
    published = settings.published_checkpoint_file
    if published.exists():
        # The new log's integrator keeps its own published checkpoint at the same path.
        archived = published.with_name(f"{published.name}-{file_safe(settings.origin)}")
        published.replace(archived)
    return Rotation(
        new_dsn,
        new_origin,
        key_file,
        (settings.database_url, *settings.past_shards),
        signer.verifier.encode(),
        final,
        archived,
    )


async def _past_origins(dsns: tuple[str, ...]) -> list[str]:
    origins = []
    for dsn in dsns:
        async with connect_one(dsn, ROTATE) as conn:
            stored = await stored_identity(conn)
        if stored is None:
            raise ConfigError(f"the past shard {dsn!r} holds no log")
        origins.append(stored.name)
    return origins


async def _freeze(settings: Settings) -> int:
    """Check the current log can be frozen: no writer running, its head fully signed."""
    assert settings.database_url is not None
    async with connect_one(settings.database_url, ROTATE) as conn:
        await schema.check_schema(conn)  # the registry is copied column for column
        await read_log_identity(conn, settings.origin)
        writers = await conn.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND application_name = ANY($1::text[]) AND pid <> pg_backend_pid()",
            list(_WRITERS),
        )
        if writers:
            raise ConfigError(
                f"{writers} connections of a running ingest service are open on the current "
                "log; stop it first (it signs the final checkpoint on the way out)"
            )
        head = await conn.fetchval("SELECT size FROM log_head")
        last = await latest_checkpoint(conn)
    if last is None or last.size < head:
        raise ConfigError(
            f"the current log holds {head} entries but its latest checkpoint covers "
            f"{0 if last is None else last.size}: start the ingest service until it has "
            "signed them, stop it, then rotate (a frozen log must end in a signed checkpoint)"
        )
    return last.size


async def _create_database(dsn: str) -> None:
    """Create the new shard's database, or accept an empty existing one."""
    try:
        conn = await asyncpg.connect(dsn)
    except asyncpg.InvalidCatalogNameError:
        name = urlsplit(dsn).path.lstrip("/")
        async with connect_one(_with_database(dsn, "postgres"), ROTATE) as admin:
            await admin.execute(f'CREATE DATABASE "{name.replace(chr(34), chr(34) * 2)}"')
        return
    except (OSError, asyncpg.PostgresError) as exc:
        raise StoreError(f"cannot connect to PostgreSQL: {exc}") from exc
    try:
        holds = await conn.fetchval("SELECT to_regclass('log_meta') IS NOT NULL")
        if holds and await conn.fetchval("SELECT EXISTS (SELECT 1 FROM log_meta)"):
            raise ConfigError("the new shard's database already holds a log")
    finally:
        await conn.close()


async def _start_shard(old_dsn: str, new_dsn: str, signer: Signer) -> None:
    """Migrate the new database, bind it to the new origin and key, copy the registry."""
    pool = await connect_pool(new_dsn, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn, conn.transaction():
            await check_log_identity(conn, signer.verifier.name, signer.verifier)
            async with connect_one(old_dsn, ROTATE) as old:
                for table in REGISTRY_TABLES:
                    data = io.BytesIO()
                    await old.copy_from_table(table, output=data, format="binary")
                    data.seek(0)
                    await conn.copy_to_table(table, source=data, format="binary")
            for table in ("enterprises", "access_tokens"):
                # Identities continue where the old log's stopped (ids stay the same).
                await conn.execute(
                    f"SELECT setval(pg_get_serial_sequence('{table}', 'id'),"  # noqa: S608
                    f" coalesce((SELECT max(id) FROM {table}), 0) + 1, false)"
                )
    finally:
        await pool.close()
