"""A live subscription over one connection (the binding's WebSocket subscriptions).

Like a webhook subscription, but its cursor lives only as long as the connection: from
`initialRecordTime` (default: now) it yields an EPCISQueryDocument, with proof of
inclusion, for each batch of new matching events as the log reaches them (`stream`), or
at each scheduled run (with an empty report if asked). The HTTP layer sends what it
yields and waits `pause()` between calls.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import datetime

import asyncpg

from traceledger.inspect.named_queries import NamedQuery
from traceledger.inspect.query_document import log_proof
from traceledger.inspect.schedule import Schedule
from traceledger.inspect.subscription_delivery import pushed_document, read_batch, ready_log
from traceledger.inspect.visibility import Viewer
from traceledger.log.reader import LogReader
from traceledger.log.record_times import first_index_recorded_at
from traceledger.standards.epcis import now_utc

MAX_PAUSE = 60.0  # seconds between looks, even for a schedule far ahead


class LiveFeed:
    def __init__(
        self,
        pool: asyncpg.Pool,
        reader: LogReader,
        named: NamedQuery,
        viewer: Viewer,
        *,
        cursor: int,
        schedule: Schedule | None,
        report_if_empty: bool,
        batch: int,
    ) -> None:
        self._pool = pool
        self._reader = reader
        self._named = named
        self._query = named.query
        self._viewer = viewer
        self.cursor = cursor
        self._schedule = schedule
        self._report = report_if_empty
        self._batch = batch
        self.next_run = schedule.next_after(now_utc()) if schedule is not None else None

    @staticmethod
    async def start_index(pool: asyncpg.Pool, initial_record_time: datetime | None) -> int:
        async with pool.acquire() as conn:
            return await first_index_recorded_at(conn, initial_record_time or now_utc())

    async def still_there(self) -> bool:
        """False once the named query was deleted (its streams end with it)."""
        async with self._pool.acquire() as conn:
            found = await conn.fetchval("SELECT 1 FROM named_queries WHERE id = $1", self._named.id)
        return found is not None

    def pause(self, poll: float) -> float:
        """Seconds to wait before the next call to `due`."""
        if self.next_run is None:
            return poll
        return min(MAX_PAUSE, max(0.0, (self.next_run - now_utc()).total_seconds()))

    async def due(self) -> AsyncIterator[bytes]:
        """The documents due now, oldest events first; the cursor follows each."""
        if self.next_run is not None and now_utc() < self.next_run:
            return
        ready = await ready_log(self._pool, self._reader)
        if ready is None:
            return
        sent = False
        while True:
            async with self._pool.acquire() as conn:
                batch = await read_batch(
                    conn, self._query, self._viewer, self.cursor, ready, self._batch
                )
                report = self.next_run is not None and self._report and batch.caught_up
                document = None
                if batch.found or (report and not sent):
                    proof = await log_proof(conn, self._reader, batch.found, ready.checkpoint)
                    document = pushed_document(self._named.name, batch, proof)
            if document is not None:
                yield document
                sent = True
            self.cursor = batch.settled
            if batch.caught_up:
                break
        if self._schedule is not None:
            self.next_run = self._schedule.next_after(now_utc())
