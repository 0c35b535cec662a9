"""EPCIS REST binding capture jobs: what became of each document posted to /capture.

The ledger captures a document before it answers 202 (the append is durable by then),
so a job is written once, finished, in PostgreSQL: it survives a restart, and a job
that exists always tells the truth about its document. Only the enterprise that
submitted a job sees it.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from traceledger.errors import NotFoundError
from traceledger.standards.epcis import utc_iso
from traceledger.store.conn import Conn

ERROR_BEHAVIOUR = "rollback"  # the only one: a document is captured whole or not at all


def new_job_id() -> str:
    """An unguessable capture ID (URL-safe): knowing one must not let others find more."""
    return "c" + secrets.token_urlsafe(18)


@dataclass(frozen=True, slots=True)
class CaptureJob:
    seq: int
    id: str
    created_at: datetime
    finished_at: datetime | None
    success: bool
    errors: list[Any]
    receipt: Mapping[str, Any] | None

    def to_json(self) -> dict[str, Any]:
        """The job as the REST binding's CaptureJob, plus what was appended where."""
        job: dict[str, Any] = {
            "captureID": self.id,
            "createdAt": utc_iso(self.created_at),
            "running": False,
            "success": self.success,
            "captureErrorBehaviour": ERROR_BEHAVIOUR,
            "errors": self.errors,
        }
        if self.finished_at is not None:
            job["finishedAt"] = utc_iso(self.finished_at)
        if self.receipt is not None:
            job["envelope"] = self.receipt.get("envelope")
            job["entries"] = self.receipt.get("entries", [])
        return job


_COLUMNS = "seq, id, created_at, finished_at, success, errors, receipt"


def _job(row: asyncpg.Record) -> CaptureJob:
    receipt = row["receipt"]
    return CaptureJob(
        row["seq"],
        row["id"],
        row["created_at"],
        row["finished_at"],
        row["success"],
        json.loads(row["errors"]),
        None if receipt is None else json.loads(receipt),
    )


async def record_job(
    conn: Conn,
    *,
    enterprise_id: int,
    token_id: int | None,
    created_at: datetime,
    errors: Sequence[Mapping[str, Any]] = (),
    envelope_hash: bytes | None = None,
    receipt: bytes | None = None,
) -> CaptureJob:
    """Write a finished job: captured (a receipt) or refused (errors)."""
    row = await conn.fetchrow(
        "INSERT INTO capture_jobs (id, enterprise_id, token_id, created_at, finished_at,"  # noqa: S608 - fixed columns
        " running, success, errors, envelope_hash, receipt)"
        " VALUES ($1, $2, $3, $4, now(), false, $5, $6::jsonb, $7, $8::jsonb)"
        f" RETURNING {_COLUMNS}",
        new_job_id(),
        enterprise_id,
        token_id,
        created_at,
        not errors,
        json.dumps(list(errors)),
        envelope_hash,
        None if receipt is None else receipt.decode(),
    )
    assert row is not None
    return _job(row)


async def get_job(conn: Conn, job_id: str, enterprise_id: int) -> CaptureJob:
    row = await conn.fetchrow(
        f"SELECT {_COLUMNS} FROM capture_jobs WHERE id = $1 AND enterprise_id = $2",  # noqa: S608
        job_id,
        enterprise_id,
    )
    if row is None:
        raise NotFoundError(f"no capture job {job_id[:80]!r} of yours")
    return _job(row)


async def list_jobs(
    conn: Conn, enterprise_id: int, per_page: int, before: int | None
) -> tuple[list[CaptureJob], int | None]:
    """The enterprise's jobs, newest first, a page at a time; and where the next starts."""
    rows = await conn.fetch(
        f"SELECT {_COLUMNS} FROM capture_jobs"  # noqa: S608 - fixed columns
        " WHERE enterprise_id = $1 AND ($2::bigint IS NULL OR seq < $2)"
        " ORDER BY seq DESC LIMIT $3",
        enterprise_id,
        before,
        per_page + 1,
    )
    jobs = [_job(r) for r in rows[:per_page]]
    return jobs, (jobs[-1].seq if len(rows) > per_page else None)
