"""One delivery of one subscription: the next batch of matching events, or a scheduled
run's report, POSTed as an EPCISQueryDocument with proof of inclusion.

The cursor (`subscriptions.next_idx`) moves only after the receiver answers 2xx, and
only as far as the events just read, so deliveries are at-least-once and in log order:
a failed batch is sent again, after a delay that doubles with each failure in a row,
until the subscription is suspended after `max_attempts` (its owner sees that, and why).
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg

from traceledger.errors import NotFoundError
from traceledger.inspect.query import EventQuery, parse_definition
from traceledger.inspect.query_document import log_proof, query_document
from traceledger.inspect.query_sql import Found, QueryService
from traceledger.inspect.schedule import parse_schedule
from traceledger.inspect.visibility import Viewer, viewer_for
from traceledger.inspect.webhooks import retry_delay
from traceledger.log.checkpoints import SignedCheckpoint
from traceledger.log.reader import LogReader
from traceledger.settings import Settings
from traceledger.standards.epcis import now_utc
from traceledger.store.conn import Conn

# POSTs a body to a URL signed with a secret (or unsigned); None on success, else why not.
Post = Callable[[str, bytes, str | None], Awaitable[str | None]]


@dataclass(frozen=True, slots=True)
class Ready:
    """The log as far as deliveries may go: indexed, and under `checkpoint`."""

    size: int
    checkpoint: SignedCheckpoint


@dataclass(frozen=True, slots=True)
class Policy:
    """How deliveries are batched and retried (from the settings; small in tests)."""

    batch: int
    retry_base: float
    retry_max: float
    max_attempts: int
    public_url: str  # where acknowledgments go ("" leaves URLs relative)

    @classmethod
    def of(cls, settings: Settings) -> Policy:
        return cls(
            settings.webhook_batch_events,
            settings.webhook_retry_base,
            settings.webhook_retry_max,
            settings.webhook_max_attempts,
            settings.public_url or "",
        )

    def delay(self, failures: int) -> float:
        return retry_delay(failures, self.retry_base, self.retry_max)


async def ready_log(pool: asyncpg.Pool, reader: LogReader) -> Ready | None:
    """How far pushed results may go: indexed and under the newest checkpoint (None
    before the first checkpoint)."""
    try:
        checkpoint = await reader.checkpoint()
    except NotFoundError:
        return None
    async with pool.acquire() as conn:
        indexed: int = await conn.fetchval("SELECT next_idx FROM index_state")
    return Ready(min(indexed, checkpoint.size), checkpoint)


@dataclass(frozen=True, slots=True)
class Batch:
    """The next matching events from a cursor, and how far the log is settled for it."""

    found: list[Found]
    settled: int
    caught_up: bool


async def read_batch(
    conn: Conn, query: EventQuery, viewer: Viewer, start: int, ready: Ready, limit: int
) -> Batch:
    found, settled = await QueryService.between(conn, query, viewer, start, ready.size, limit)
    return Batch(found, settled, settled >= ready.size)


def pushed_document(
    name: str, batch: Batch, proof: dict[str, Any], subscription_id: str | None = None
) -> bytes:
    return query_document(
        name, [f.event for f in batch.found], subscription_id=subscription_id, log_proof=proof
    )


async def deliver_subscription(
    pool: asyncpg.Pool,
    reader: LogReader,
    post: Post,
    policy: Policy,
    sub_id: uuid.UUID,
    ready: Ready,
) -> None:
    async with pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT s.*, q.name, q.definition::text AS definition, q.enterprise_id"
            " FROM subscriptions s JOIN named_queries q ON q.id = s.query_id"
            " WHERE s.id = $1 AND s.suspended_at IS NULL",
            sub_id,
        )
        if row is None:
            return  # deleted or suspended meanwhile
        query = parse_definition(json.loads(row["definition"]))
        viewer = await viewer_for(conn, row["enterprise_id"])
        batch = await read_batch(conn, query, viewer, row["next_idx"], ready, policy.batch)
        report = not row["stream"] and row["report_if_empty"] and batch.caught_up
        if not batch.found and not report:
            await _advance(conn, row, batch, sent=False)
            return
        proof = await log_proof(conn, reader, batch.found, ready.checkpoint)
    body = pushed_document(row["name"], batch, proof, str(sub_id))
    failure = await post(row["dest"], body, row["signature_token"])
    async with pool.acquire() as conn:
        if failure is None:
            await _advance(conn, row, batch, sent=True)
        else:
            await _failed(conn, row, failure, policy)


async def _advance(conn: Conn, row: Any, batch: Batch, *, sent: bool) -> None:
    """Move the cursor past what is settled; a scheduled run that caught up is over."""
    next_run = row["next_run_at"]
    if not row["stream"] and batch.caught_up:
        schedule = row["schedule"]
        parsed = json.loads(schedule) if isinstance(schedule, str) else schedule
        next_run = parse_schedule(parsed).next_after(now_utc())
    await conn.execute(
        "UPDATE subscriptions SET next_idx = greatest(next_idx, $2), next_run_at = $3,"
        " failures = CASE WHEN $4 THEN 0 ELSE failures END,"
        " retry_at = CASE WHEN $4 THEN NULL ELSE retry_at END,"
        " last_error = CASE WHEN $4 THEN NULL ELSE last_error END,"
        " last_notified_at = CASE WHEN $4 THEN now() ELSE last_notified_at END"
        " WHERE id = $1",
        row["id"],
        batch.settled,
        next_run,
        sent,
    )


async def _failed(conn: Conn, row: Any, failure: str, policy: Policy) -> None:
    failures = row["failures"] + 1
    await conn.execute(
        "UPDATE subscriptions SET failures = $2, last_error = $3,"
        " retry_at = now() + make_interval(secs => $4),"
        " suspended_at = CASE WHEN $2::int >= $5::int THEN now() END WHERE id = $1",
        row["id"],
        failures,
        failure[:500],
        policy.delay(failures),
        policy.max_attempts,
    )
