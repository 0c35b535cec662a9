"""The notifier: one process at a time plans recall notices and delivers every webhook.

Each round (every `notify_interval`) it reads how far the log is both indexed and under
a signed checkpoint, so whatever it sends can be proven included. It plans notices for
the recalls and verdicts logged since its cursor, then starts a delivery for each due
recall notice and for each subscription with news, and goes on while those run: a
slow or dead receiver holds up only itself. A delivery's outcome is written in its own
row (cursor, attempts, next attempt, suspension), so any leader picks up where another
stopped; a delivery cut short is repeated, never lost (at-least-once).
"""

from __future__ import annotations

import asyncio
import functools
import logging
import uuid
from collections.abc import Awaitable, Callable

import asyncpg

from traceledger.errors import TraceledgerError, WebhookUnreachableError
from traceledger.inspect.notice_delivery import NoticeSender, due_notices
from traceledger.inspect.recall_notices import plan_notice, recalls_between, record_plans
from traceledger.inspect.subscription_delivery import (
    Policy,
    Ready,
    deliver_subscription,
    ready_log,
)
from traceledger.inspect.webhooks import WebhookTransport, delivery_headers
from traceledger.log.reader import LogReader
from traceledger.settings import Settings
from traceledger.store.leader import LeaderTask
from traceledger.store.locks import Lock

log = logging.getLogger(__name__)

PLAN_CHUNK = 5000  # log entries read for recalls per round


class Notifier:
    """Background worker (Ledger.open starts it when given a webhook transport)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        reader: LogReader,
        transport: WebhookTransport,
        settings: Settings,
    ) -> None:
        self._pool = pool
        self._reader = reader
        self._transport = transport
        self.policy = Policy.of(settings)
        self._slots = asyncio.Semaphore(settings.webhook_concurrency)
        self._inflight: dict[object, asyncio.Task[None]] = {}
        self._notices = NoticeSender(pool, self._post, self.policy)
        self.task = LeaderTask(
            pool, "notifier", Lock.NOTIFIER, settings.notify_interval, self.round
        )

    async def __aenter__(self) -> Notifier:
        await self.task.__aenter__()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.task.close()
        # What is still on its way is repeated by the next leader (at-least-once).
        for running in list(self._inflight.values()):
            running.cancel()
        await asyncio.gather(*self._inflight.values(), return_exceptions=True)
        await self._notices.close()

    async def round(self) -> bool:
        """Plan new notices, start due deliveries; True if more recalls wait to be read."""
        ready = await ready_log(self._pool, self._reader)
        if ready is None:
            return False
        more = await self._plan(ready)
        await self._start_due(ready)
        return more

    async def _plan(self, ready: Ready) -> bool:
        async with self._pool.acquire() as conn:
            start: int = await conn.fetchval("SELECT next_idx FROM notice_state")
            end = min(ready.size, start + PLAN_CHUNK)
            if end <= start:
                return False
            plans = [
                await plan_notice(conn, self._reader, recall, ready.checkpoint)
                for recall in await recalls_between(conn, start, end)
            ]
            async with conn.transaction():
                moved = await conn.fetchval(
                    "UPDATE notice_state SET next_idx = $1 WHERE next_idx = $2 RETURNING 1",
                    end,
                    start,
                )
                if moved is None:
                    return False  # another leader got there first
                await record_plans(conn, plans)
        return end < ready.size

    async def _start_due(self, ready: Ready) -> None:
        busy = [k for k in self._inflight if isinstance(k, uuid.UUID)]
        running = [k for k in self._inflight if isinstance(k, tuple)]
        async with self._pool.acquire() as conn:
            notices = await due_notices(conn, running)
            await self._notices.bodies(conn, notices)
            subscriptions = await conn.fetch(
                "SELECT s.id FROM subscriptions s JOIN named_queries q ON q.id = s.query_id"
                " JOIN access_tokens t ON t.id = q.created_by"
                " WHERE s.suspended_at IS NULL AND (s.retry_at IS NULL OR s.retry_at <= now())"
                # An official's query lives as long as the token that made it.
                " AND (q.enterprise_id IS NOT NULL OR t.revoked_at IS NULL)"
                " AND ((s.stream AND s.next_idx < $1) OR (NOT s.stream AND s.next_run_at <= now()))"
                " AND NOT s.id = ANY($2::uuid[]) LIMIT 1000",
                ready.size,
                busy,
            )
        for due in notices:
            self._start(due.spot, self._notices.send, due)
        deliver = functools.partial(
            deliver_subscription, self._pool, self._reader, self._post, self.policy
        )
        for r in subscriptions:
            self._start(r["id"], deliver, r["id"], ready)

    def _start(self, spot: object, work: Callable[..., Awaitable[None]], *args: object) -> None:
        """Run one delivery unless that one is already running."""
        if spot in self._inflight:
            return

        async def run() -> None:
            try:
                async with self._slots:
                    await work(*args)
            except (OSError, asyncpg.PostgresError, TraceledgerError):
                log.warning("delivery %s failed; it is retried", spot, exc_info=True)
            finally:
                self._inflight.pop(spot, None)

        self._inflight[spot] = asyncio.create_task(run(), name=f"delivery {spot}")

    async def _post(self, url: str, body: bytes, secret: str | None) -> str | None:
        """POST a delivery; None on success, else why it failed."""
        try:
            status = await self._transport.post(url, body, delivery_headers(secret, body))
        except WebhookUnreachableError as exc:
            return str(exc)[:500]
        return None if 200 <= status < 300 else f"HTTP {status}"
