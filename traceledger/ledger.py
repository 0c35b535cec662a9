"""The ledger as one object: database, log key, sequencer, integrator and reader."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from traceledger import db
from traceledger.cosigned import log_reader
from traceledger.cosigner import Cosigner
from traceledger.db import Conn
from traceledger.errors import ConfigError, StoreError
from traceledger.indexer import Indexer
from traceledger.integrator import Integrator
from traceledger.logkey import load_or_create_log_key
from traceledger.note import Signer, Verifier, key_hash
from traceledger.reader import LogReader
from traceledger.sequencer import Sequencer
from traceledger.settings import Settings
from traceledger.shards import Shard, open_past_shards


async def resolve_dsn(settings: Settings) -> str:
    """The configured server, or the embedded one under the home folder."""
    if settings.database_url:
        return settings.database_url
    return await asyncio.to_thread(db.start_embedded, settings.pgdata)


async def read_log_identity(conn: Conn, origin: str) -> Verifier:
    """The log's verifier key as the database records it (a lookup holds no signing key)."""
    row = await conn.fetchrow("SELECT origin, public_key FROM log_meta")
    if row is None:
        raise StoreError("the database holds no log yet; start the ingest service first")
    if row["origin"] != origin:
        raise ConfigError(
            f"this database holds the log {row['origin']!r}, not {origin!r}; "
            "set TRACELEDGER_ORIGIN (or --origin) to the log's origin"
        )
    public = bytes(row["public_key"])
    return Verifier(origin, key_hash(origin, public), Ed25519PublicKey.from_public_bytes(public))


async def check_log_identity(conn: Conn, origin: str, verifier: Verifier) -> None:
    """Bind the database to one origin and key on first start; refuse any other later."""
    public = verifier.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    await conn.execute(
        "INSERT INTO log_meta (origin, public_key) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        origin,
        public,
    )
    if await read_log_identity(conn, origin) != verifier:
        raise ConfigError(
            "the log key does not match the key this log was created with; "
            "point TRACELEDGER_LOG_KEY (or --log-key) at the original key file"
        )


@dataclass
class Ledger:
    settings: Settings
    pool: asyncpg.Pool  # the primary: every write goes here
    signer: Signer | None  # None in the lookup role, which signs nothing
    sequencer: Sequencer
    integrator: Integrator | None
    indexer: Indexer | None
    reader: LogReader  # on read_pool
    # READ_DATABASE_URL (a streaming replica) when set, else the same pool as `pool`.
    read_pool: asyncpg.Pool
    verifier: Verifier
    # Earlier, frozen logs lookups also read (settings.past_shards), newest first.
    past: list[Shard] = field(default_factory=list)

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, settings: Settings, *, integrate: bool = True) -> AsyncIterator[Ledger]:
        """Start everything; on exit drain the sequencer, sign a final checkpoint, close.

        `integrate=False` opens the store without the background workers (for tools).
        The lookup role (`settings.role`) starts no workers and no sequencer, needs no log
        key and leaves the schema to the ingest service: it only reads, and writes its
        audit trail to the primary.
        """
        lookup = settings.role == "lookup"
        signer = (
            None
            if lookup
            else Signer(settings.origin, load_or_create_log_key(settings.log_key_file))
        )
        dsn = await resolve_dsn(settings)
        pool = await db.connect_pool(
            dsn,
            min_size=settings.pool_min,
            max_size=settings.pool_max,
            migrate_schema=not lookup,
            application_name=f"traceledger-{settings.role}",
        )
        read_pool = pool
        try:
            if settings.read_database_url:
                read_pool = await db.connect_pool(
                    settings.read_database_url,
                    min_size=settings.pool_min,
                    max_size=settings.pool_max,
                    migrate_schema=False,
                    application_name=f"traceledger-{settings.role}-read",
                )
            if signer is None:
                async with read_pool.acquire() as conn:
                    verifier = await read_log_identity(conn, settings.origin)
            else:
                verifier = signer.verifier
                async with pool.acquire() as conn:
                    await check_log_identity(conn, settings.origin, verifier)
            sequencer = Sequencer(
                pool,
                max_batch_entries=settings.max_batch_entries,
                max_pending_entries=settings.max_pending_entries,
            )
            integrator = (
                Integrator(
                    pool,
                    signer,
                    interval=settings.checkpoint_interval,
                    chunk=settings.integrate_chunk,
                    published=settings.published_checkpoint_file,
                )
                if integrate and signer is not None
                else None
            )
            if integrator is not None:
                # Before the first append: a database restored from an old backup must not
                # take events at indexes the log already published (traceledger/published.py).
                await integrator.check_published()
                sequencer.gate = integrator.check_appendable
            indexer = Indexer(pool) if integrate and not lookup else None
            async with contextlib.AsyncExitStack() as stack:
                # First: a misconfigured past shard stops the start before any worker runs.
                past = await stack.enter_async_context(
                    open_past_shards(
                        settings.past_shards, settings.origin, pool_max=settings.pool_max
                    )
                )
                # Witnesses cosign where the integrator signs; entered first, so it stops
                # last and the final checkpoint is offered to the witnesses too.
                if integrator is not None and (policy := settings.witness_policy) is not None:
                    cosigner = Cosigner(
                        pool, policy, LogReader(pool), interval=settings.checkpoint_interval
                    )
                    await stack.enter_async_context(cosigner)
                # Exit order matters: the sequencer drains first, then the integrator
                # folds in what it committed and signs the final checkpoint.
                for worker in (integrator, indexer):
                    if worker is not None:
                        await stack.enter_async_context(worker.task)
                if not lookup:
                    await stack.enter_async_context(sequencer)
                reader = log_reader(read_pool, settings.witness_policy)
                yield cls(
                    settings,
                    pool,
                    signer,
                    sequencer,
                    integrator,
                    indexer,
                    reader,
                    read_pool,
                    verifier,
                    past,
                )
        finally:
            if read_pool is not pool:
                await read_pool.close()
            await pool.close()
