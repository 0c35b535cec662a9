"""The composition root: the ledger as one object that opens the database and the log
and starts every background worker (integrator, indexer, cosigner, prebuilder, notifier,
scan counter)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg

from traceledger.cpu import CpuPool, default_workers
from traceledger.errors import ConfigError
from traceledger.ingest.catalogs.indexing import index_entry as index_catalog
from traceledger.ingest.indexer import Indexer
from traceledger.ingest.masterdata import index_entry as index_master_data
from traceledger.inspect.notifier import Notifier
from traceledger.inspect.webhooks import WebhookTransport
from traceledger.log.cosigned import log_reader
from traceledger.log.cosigner import Cosigner, WitnessTransport
from traceledger.log.identity import check_log_identity, read_log_identity
from traceledger.log.integrator import Integrator
from traceledger.log.logkey import load_or_create_log_key
from traceledger.log.reader import LogReader
from traceledger.log.sequencer import Sequencer
from traceledger.log.shards import Shard, open_past_shards
from traceledger.lookup.history import HistoryService
from traceledger.lookup.prebuilder import Prebuilder
from traceledger.lookup.scans import ScanCounter, ScanFlusher
from traceledger.settings import Settings
from traceledger.store import embedded
from traceledger.store.leader import LeaderTask
from traceledger.store.locks import Lock
from traceledger.store.pool import connect_pool
from traceledger.tlog.note import Signer, Verifier


async def resolve_dsn(settings: Settings) -> str:
    """The configured server, or the embedded one under the home folder."""
    if settings.database_url:
        return settings.database_url
    return await asyncio.to_thread(embedded.start_embedded, settings.pgdata)


# The locks a background worker holds a connection of the primary's pool for, while it leads.
WORKER_LOCKS = (Lock.INTEGRATOR, Lock.INDEXER, Lock.PREBUILDER, Lock.COSIGNER, Lock.NOTIFIER)


@dataclass
class Ledger:
    settings: Settings
    pool: asyncpg.Pool  # the primary: every write goes here
    signer: Signer | None  # None in the lookup role, which signs nothing
    sequencer: Sequencer
    reader: LogReader  # on read_pool
    # READ_DATABASE_URL (a streaming replica) when set, else the same pool as `pool`.
    read_pool: asyncpg.Pool
    verifier: Verifier
    # Earlier, frozen logs lookups also read (settings.past_shards), newest first.
    past: list[Shard] = field(default_factory=list)
    # The background workers this process runs (None where its role or `integrate` says not).
    integrator: Integrator | None = None
    indexer: Indexer | None = None
    cosigner: Cosigner | None = None
    prebuilder: Prebuilder | None = None
    notifier: Notifier | None = None
    # Worker processes for capture's parsing, checks and hashes (none in the lookup role).
    cpu: CpuPool | None = None
    # Look-ups of serialized items (roles serving lookups; None with count_scans off).
    scans: ScanCounter | None = None

    def workers(self) -> dict[str, LeaderTask | None]:
        """Every background worker by name; None where this process does not run it."""
        return {
            "integrator": self.integrator.task if self.integrator else None,
            "indexer": self.indexer.task if self.indexer else None,
            "prebuilder": self.prebuilder.task if self.prebuilder else None,
            "cosigner": self.cosigner.task if self.cosigner else None,
            "notifier": self.notifier.task if self.notifier else None,
        }

    @classmethod
    @contextlib.asynccontextmanager
    async def open(
        cls,
        settings: Settings,
        *,
        integrate: bool = True,
        witness_transport: WitnessTransport | None = None,
        webhook_transport: WebhookTransport | None = None,
    ) -> AsyncIterator[Ledger]:
        """Start everything; on exit drain the sequencer, sign a final checkpoint, close.

        `integrate=False` opens the store without the background workers (for tools).
        The lookup role (`settings.role`) starts no workers and no sequencer, needs no log
        key and leaves the schema to the ingest service: it only reads, and writes its
        audit trail to the primary. With witnesses configured, `witness_transport` carries
        the add-checkpoint requests (the core speaks no HTTP); with `webhook_transport`
        the notifier delivers subscriptions and recall notices through it.
        """
        lookup = settings.role == "lookup"
        signer = (
            None
            if lookup
            else Signer(settings.origin, load_or_create_log_key(settings.log_key_file))
        )
        async with contextlib.AsyncExitStack() as stack:
            pool, read_pool = await _open_pools(settings, stack)
            verifier = await _log_identity(settings, signer, pool, read_pool)
            # Before any worker: a misconfigured past shard stops the start.
            past = await stack.enter_async_context(
                open_past_shards(settings.past_shards, settings.origin, pool_max=settings.pool_max)
            )
            ledger = cls(
                settings,
                pool,
                signer,
                Sequencer(
                    pool,
                    max_batch_entries=settings.max_batch_entries,
                    max_pending_entries=settings.max_pending_entries,
                ),
                log_reader(read_pool, settings.witness_policy),
                read_pool,
                verifier,
                past,
            )
            if not lookup:
                # Before the sequencer, so capture's workers outlive its last append.
                workers = settings.cpu_workers
                ledger.cpu = CpuPool(default_workers() if workers is None else workers)
                await stack.enter_async_context(ledger.cpu)
            if integrate and signer is not None:
                await ledger._start_workers(stack, signer, witness_transport)
            if integrate and settings.count_scans and settings.role != "ingest":
                # Whoever serves lookups counts them and writes the counts to the primary.
                ledger.scans = ScanCounter(pool, read_pool)
                await stack.enter_async_context(
                    ScanFlusher(ledger.scans, settings.checkpoint_interval)
                )
            if not lookup:
                await stack.enter_async_context(ledger.sequencer)
            if integrate and signer is not None and settings.prebuild_answers:
                # Entered last, so it stops first: it only reads what the others made.
                ledger.prebuilder = answer_builder(ledger)
                await stack.enter_async_context(ledger.prebuilder.task)
            if integrate and signer is not None and webhook_transport is not None:
                # Last in, first out: deliveries stop before anything they read does.
                ledger.notifier = Notifier(
                    ledger.pool,
                    log_reader(ledger.pool, settings.witness_policy),
                    webhook_transport,
                    settings,
                )
                await stack.enter_async_context(ledger.notifier)
            yield ledger

    async def _start_workers(
        self,
        stack: contextlib.AsyncExitStack,
        signer: Signer,
        transport: WitnessTransport | None,
    ) -> None:
        """Integrator, indexer and (with witnesses) cosigner, in their exit order: the
        sequencer (entered after these) drains first, then the integrator folds in what it
        committed and signs the final checkpoint, which the cosigner, stopping last,
        still offers to the witnesses."""
        settings = self.settings
        self.integrator = Integrator(
            self.pool,
            signer,
            interval=settings.checkpoint_interval,
            chunk=settings.integrate_chunk,
            published=settings.published_checkpoint_file,
        )
        # Before the first append: a database restored from an old backup must not take
        # events at indexes the log already published (traceledger/log/published.py).
        await self.integrator.check_published()
        self.sequencer.gate = self.integrator.check_appendable
        self.indexer = Indexer(self.pool, others=[index_catalog, index_master_data], cpu=self.cpu)
        if (policy := settings.witness_policy) is not None:
            if transport is None:
                raise ConfigError("witnesses are configured but no transport reaches them")
            self.cosigner = Cosigner(
                self.pool,
                policy,
                LogReader(self.pool),
                transport,
                interval=settings.checkpoint_interval,
            )
            await stack.enter_async_context(self.cosigner.task)
        await stack.enter_async_context(self.integrator.task)
        await stack.enter_async_context(self.indexer.task)


async def _open_pools(
    settings: Settings, stack: contextlib.AsyncExitStack
) -> tuple[asyncpg.Pool, asyncpg.Pool]:
    """The primary's pool and the read pool (the same one without READ_DATABASE_URL);
    both close when `stack` does, after everything entered later."""
    lookup = settings.role == "lookup"
    pool = await connect_pool(
        await resolve_dsn(settings),
        min_size=settings.pool_min,
        max_size=settings.pool_max + (0 if lookup else len(WORKER_LOCKS)),
        migrate_schema=not lookup,
        application_name=f"traceledger-{settings.role}",
    )
    stack.push_async_callback(pool.close)
    if not settings.read_database_url:
        return pool, pool
    read_pool = await connect_pool(
        settings.read_database_url,
        min_size=settings.pool_min,
        max_size=settings.pool_max,
        migrate_schema=False,
        application_name=f"traceledger-{settings.role}-read",
    )
    stack.push_async_callback(read_pool.close)
    return pool, read_pool


async def _log_identity(
    settings: Settings, signer: Signer | None, pool: asyncpg.Pool, read_pool: asyncpg.Pool
) -> Verifier:
    """The log's verifier: bound to the database on first start by the signing process,
    read from the (possibly replicated) database by a lookup, which holds no key."""
    if signer is None:
        async with read_pool.acquire() as conn:
            return await read_log_identity(conn, settings.origin)
    async with pool.acquire() as conn:
        await check_log_identity(conn, settings.origin, signer.verifier)
    return signer.verifier


def answer_builder(ledger: Ledger) -> Prebuilder:
    """The prebuilder: it reads and writes the primary, so what it stores is never
    behind what it read (a replica may be)."""
    settings = ledger.settings
    service = HistoryService(
        ledger.pool,
        log_reader(ledger.pool, settings.witness_policy),
        verifier_key=ledger.verifier.encode(),
        origin=ledger.verifier.name,
        past=ledger.past,
    )
    return Prebuilder(ledger.pool, service, interval=settings.checkpoint_interval)
