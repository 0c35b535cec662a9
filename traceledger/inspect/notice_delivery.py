"""Sending recall notices: each holder's notice to its endpoint, and what became of it.

The notifier reads every due delivery with one query and starts one POST per holder;
what each POST came to (delivered, or the error and when to try again, or suspended) is
written in batches: POSTs finishing together share one statement, so a notice to a
thousand holders costs a few round trips to the database, not a thousand. A delivery
counts as running until its outcome is written, so it is never started twice.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from traceledger.inspect.recall_notices import notice_bytes
from traceledger.inspect.subscription_delivery import Policy, Post
from traceledger.store.conn import Conn

log = logging.getLogger(__name__)

Spot = tuple[int, int]  # (recall index, enterprise id)
_CACHED_BODIES = 64


@dataclass(frozen=True, slots=True)
class Due:
    spot: Spot
    name: str
    holds: list[Any]
    ack_token: str
    attempts: int
    url: str
    secret: str


@dataclass(frozen=True, slots=True)
class Outcome:
    due: Due
    failure: str | None


async def due_notices(conn: Conn, busy: Sequence[Spot], limit: int = 1000) -> list[Due]:
    """Deliveries to try now: not delivered, suspended or acknowledged, their time come,
    the holder has an endpoint, and none of them already running (`busy`)."""
    rows = await conn.fetch(
        "SELECT d.recall_idx, d.enterprise_id, d.holds::text AS holds, d.ack_token,"
        " d.attempts, e.name, p.url, p.secret FROM recall_deliveries d"
        " JOIN recall_endpoints p ON p.enterprise_id = d.enterprise_id"
        " JOIN enterprises e ON e.id = d.enterprise_id"
        " WHERE d.delivered_at IS NULL AND d.suspended_at IS NULL"
        " AND d.acknowledged_at IS NULL AND d.next_attempt_at <= now()"
        " AND (d.recall_idx, d.enterprise_id) NOT IN"
        "     (SELECT * FROM unnest($1::bigint[], $2::bigint[]))"
        " ORDER BY d.recall_idx, d.enterprise_id LIMIT $3",
        [s[0] for s in busy],
        [s[1] for s in busy],
        limit,
    )
    return [
        Due(
            (r["recall_idx"], r["enterprise_id"]),
            r["name"],
            json.loads(r["holds"]),
            r["ack_token"],
            r["attempts"],
            r["url"],
            r["secret"],
        )
        for r in rows
    ]


class NoticeSender:
    """POSTs notices and writes their outcomes in batches."""

    def __init__(self, pool: asyncpg.Pool, post: Post, policy: Policy) -> None:
        self._pool = pool
        self._post = post
        self._policy = policy
        self._bodies: dict[int, dict[str, Any]] = {}  # recall index -> the common part
        self._writes = BatchWriter(self._write)

    async def bodies(self, conn: Conn, due: Sequence[Due]) -> None:
        """Read the common part of every notice `due` needs (kept for the next rounds)."""
        wanted = sorted({d.spot[0] for d in due} - self._bodies.keys())
        if not wanted:
            return
        if len(self._bodies) + len(wanted) > _CACHED_BODIES:
            self._bodies.clear()
        rows = await conn.fetch(
            "SELECT recall_idx, body FROM recall_notices WHERE recall_idx = ANY($1::bigint[])",
            wanted,
        )
        self._bodies.update((r["recall_idx"], json.loads(r["body"])) for r in rows)

    async def send(self, due: Due) -> None:
        recall_idx, enterprise_id = due.spot
        ack = (f"{self._policy.public_url}/v1/recalls/{recall_idx}/notices", due.ack_token)
        body = notice_bytes(self._bodies[recall_idx], (enterprise_id, due.name), due.holds, ack)
        failure = await self._post(due.url, body, due.secret)
        if failure is not None:
            log.warning("recall notice %d to %s: %s", recall_idx, due.url, failure)
        await self._writes.add(Outcome(due, failure))

    async def close(self) -> None:
        """Write what finished before stopping (what did not is sent again later)."""
        await self._writes.close()

    async def _write(self, outcomes: list[Outcome]) -> None:
        policy = self._policy
        async with self._pool.acquire() as conn:
            await conn.executemany(
                "UPDATE recall_deliveries SET attempts = $3, last_attempt_at = now(), url = $4,"
                " last_error = $5,"
                " delivered_at = CASE WHEN $5::text IS NULL THEN now() END,"
                " next_attempt_at = now() + make_interval(secs => $6),"
                " suspended_at = CASE WHEN $5::text IS NOT NULL AND $3::int >= $7::int"
                " THEN now() END"
                " WHERE recall_idx = $1 AND enterprise_id = $2",
                [
                    (
                        *o.due.spot,
                        o.due.attempts + 1,
                        o.due.url,
                        o.failure,
                        policy.delay(o.due.attempts + 1),
                        policy.max_attempts,
                    )
                    for o in outcomes
                ],
            )


class BatchWriter:
    """Group commit for outcomes: `add` returns once its item is written, together with
    every item added while the previous batch was being written."""

    def __init__(self, write: Callable[[list[Any]], Awaitable[None]]) -> None:
        self._write = write
        self._waiting: list[tuple[Any, asyncio.Future[None]]] = []
        self._writer: asyncio.Task[None] | None = None

    async def add(self, item: Any) -> None:
        done = asyncio.get_running_loop().create_future()
        self._waiting.append((item, done))
        if self._writer is None or self._writer.done():
            self._writer = asyncio.create_task(self._drain(), name="notice outcomes")
        await done

    async def close(self) -> None:
        if self._writer is not None:
            await asyncio.gather(self._writer, return_exceptions=True)

    async def _drain(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting, []
            try:
                await self._write([item for item, _ in batch])
            except Exception as exc:
                for _, done in batch:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for _, done in batch:
                if not done.done():
                    done.set_result(None)
