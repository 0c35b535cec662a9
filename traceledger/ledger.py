"""The ledger as one object: database, log key, sequencer, integrator and reader."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass

import asyncpg
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from traceledger import db
from traceledger.db import Conn
from traceledger.errors import ConfigError
from traceledger.indexer import Indexer
from traceledger.integrator import Integrator
from traceledger.logkey import load_or_create_log_key
from traceledger.note import Signer, Verifier
from traceledger.reader import LogReader
from traceledger.sequencer import Sequencer
from traceledger.settings import Settings


async def resolve_dsn(settings: Settings) -> str:
    """The configured server, or the embedded one under the home folder."""
    if settings.database_url:
        return settings.database_url
    return await asyncio.to_thread(db.start_embedded, settings.pgdata)


async def check_log_identity(conn: Conn, origin: str, verifier: Verifier) -> None:
    """Bind the database to one origin and key on first start; refuse any other later."""
    public = verifier.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    await conn.execute(
        "INSERT INTO log_meta (origin, public_key) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        origin,
        public,
    )
    row = await conn.fetchrow("SELECT origin, public_key FROM log_meta")
    assert row is not None
    if row["origin"] != origin:
        raise ConfigError(
            f"this database holds the log {row['origin']!r}, not {origin!r}; "
            "set TRACELEDGER_ORIGIN (or --origin) to the log's origin"
        )
    if bytes(row["public_key"]) != public:
        raise ConfigError(
            "the log key does not match the key this log was created with; "
            "point TRACELEDGER_LOG_KEY (or --log-key) at the original key file"
        )


@dataclass
class Ledger:
    settings: Settings
    pool: asyncpg.Pool
    signer: Signer
    sequencer: Sequencer
    integrator: Integrator | None
    indexer: Indexer | None
    reader: LogReader

    @property
    def verifier(self) -> Verifier:
        return self.signer.verifier

    @classmethod
    @contextlib.asynccontextmanager
    async def open(cls, settings: Settings, *, integrate: bool = True) -> AsyncIterator[Ledger]:
        """Start everything; on exit drain the sequencer, sign a final checkpoint, close.

        `integrate=False` opens the store without the background workers (for tools).
        """
        key = load_or_create_log_key(settings.log_key_file)
        signer = Signer(settings.origin, key)
        dsn = await resolve_dsn(settings)
        pool = await db.connect_pool(dsn, min_size=settings.pool_min, max_size=settings.pool_max)
        try:
            async with pool.acquire() as conn:
                await check_log_identity(conn, settings.origin, signer.verifier)
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
                )
                if integrate
                else None
            )
            indexer = Indexer(pool) if integrate else None
            async with contextlib.AsyncExitStack() as stack:
                # Exit order matters: the sequencer drains first, then the integrator
                # folds in what it committed and signs the final checkpoint.
                for worker in (integrator, indexer):
                    if worker is not None:
                        await stack.enter_async_context(worker.task)
                await stack.enter_async_context(sequencer)
                yield cls(settings, pool, signer, sequencer, integrator, indexer, LogReader(pool))
        finally:
            await pool.close()
