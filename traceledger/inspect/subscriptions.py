"""Webhook subscriptions to named queries (POST /queries/{name}/subscriptions).

A subscription either streams (`stream: true`: every new matching event, in log order)
or runs on a schedule (the events recorded since its last run, or an empty report with
`reportIfEmpty`). Its cursor is a log index: deliveries start at the first entry
recorded at or after `initialRecordTime` (default: now) and the cursor moves past what
a receiver acknowledged, so nothing is lost or reordered across restarts. The secret
(`signatureToken`) is kept to sign deliveries and never shown again.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from traceledger.errors import LimitReachedError, NotFoundError, SubscriptionError
from traceledger.inspect.named_queries import NamedQuery
from traceledger.inspect.query import parse_query_time
from traceledger.inspect.schedule import parse_schedule
from traceledger.inspect.webhooks import check_webhook_url
from traceledger.log.record_times import first_index_recorded_at
from traceledger.standards.epcis import now_utc, utc_iso
from traceledger.store.conn import Conn

MAX_SUBSCRIPTIONS = 10  # per named query
MAX_SECRET = 1024
_FIELDS = ("dest", "signatureToken", "stream", "schedule", "reportIfEmpty", "initialRecordTime")


@dataclass(frozen=True, slots=True)
class Request:
    """A checked subscription request."""

    dest: str
    secret: str | None
    schedule: dict[str, Any] | None  # None: a stream
    report_if_empty: bool
    initial_record_time: datetime | None


def check_request(body: Mapping[str, Any]) -> Request:
    """The subscription a request body asks for, or SubscriptionError naming the field."""
    unknown = sorted(str(k)[:40] for k in body if k not in _FIELDS)
    if unknown:
        raise SubscriptionError(unknown[0], f"unknown fields {unknown}; known: {list(_FIELDS)}")
    try:
        dest = check_webhook_url(body.get("dest"))
    except ValueError as exc:
        raise SubscriptionError("dest", f"dest: {exc}") from exc
    secret = body.get("signatureToken")
    if secret is not None and (not isinstance(secret, str) or not 1 <= len(secret) <= MAX_SECRET):
        raise SubscriptionError(
            "signatureToken", f"signatureToken is a string of 1 to {MAX_SECRET} characters"
        )
    stream, schedule = body.get("stream", False), body.get("schedule")
    if not isinstance(stream, bool) or (stream and schedule is not None):
        raise SubscriptionError("stream", "give either stream: true or a schedule, not both")
    if not stream and schedule is None:
        raise SubscriptionError(
            "stream", "say when to deliver: stream: true (every new event) or a schedule"
        )
    if schedule is not None:
        parse_schedule(schedule).next_after(now_utc())  # refuses one that never runs
    report = body.get("reportIfEmpty", False)
    if not isinstance(report, bool):
        raise SubscriptionError("reportIfEmpty", "reportIfEmpty is true or false")
    initial = body.get("initialRecordTime")
    if initial is not None and not isinstance(initial, str):
        raise SubscriptionError("initialRecordTime", "initialRecordTime is an RFC 3339 time")
    return Request(
        dest,
        secret,
        dict(schedule) if schedule is not None else None,
        report,
        parse_query_time(initial, "initialRecordTime"),
    )


async def create_subscription(conn: Conn, query: NamedQuery, request: Request) -> dict[str, Any]:
    async with conn.transaction():
        count = await conn.fetchval(
            "SELECT count(*) FROM subscriptions WHERE query_id = $1", query.id
        )
        if count >= MAX_SUBSCRIPTIONS:
            raise LimitReachedError(
                f"query {query.name!r} already has {MAX_SUBSCRIPTIONS} subscriptions"
            )
        start = await first_index_recorded_at(conn, request.initial_record_time or now_utc())
        next_run = None
        if request.schedule is not None:
            next_run = parse_schedule(request.schedule).next_after(now_utc())
        row = await conn.fetchrow(
            "INSERT INTO subscriptions (id, query_id, dest, signature_token, stream, schedule,"
            " report_if_empty, initial_record_time, next_idx, next_run_at)"
            " VALUES ($1, $2, $3, $4, $5, $6::jsonb, $7, $8, $9, $10) RETURNING *",
            uuid.uuid4(),
            query.id,
            request.dest,
            request.secret,
            request.schedule is None,
            None if request.schedule is None else json.dumps(request.schedule),
            request.report_if_empty,
            request.initial_record_time,
            start,
            next_run,
        )
    return subscription_json(row, query.name)


def subscription_json(row: Any, query_name: str) -> dict[str, Any]:
    """What the owner sees: the binding's fields and how deliveries fare (never the secret)."""
    out: dict[str, Any] = {
        "subscriptionID": str(row["id"]),
        "queryName": query_name,
        "dest": row["dest"],
        "createdAt": utc_iso(row["created_at"]),
    }
    if row["stream"]:
        out["stream"] = True
    else:
        schedule = row["schedule"]
        out["schedule"] = json.loads(schedule) if isinstance(schedule, str) else schedule
        out["reportIfEmpty"] = row["report_if_empty"]
    for name, column in (
        ("initialRecordTime", "initial_record_time"),
        ("lastNotifiedAt", "last_notified_at"),
        ("suspendedAt", "suspended_at"),
        ("nextAttemptAt", "retry_at"),
    ):
        if row[column] is not None:
            out[name] = utc_iso(row[column])
    out["status"] = "suspended" if row["suspended_at"] is not None else "active"
    out["failures"] = row["failures"]
    out["lastError"] = row["last_error"]
    out["deliveredBefore"] = row["next_idx"]  # the cursor: every match below it is delivered
    return out


async def list_subscriptions(conn: Conn, query: NamedQuery) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        "SELECT * FROM subscriptions WHERE query_id = $1 ORDER BY created_at, id", query.id
    )
    return [subscription_json(r, query.name) for r in rows]


def _uuid(raw: str) -> uuid.UUID:
    try:
        return uuid.UUID(raw)
    except ValueError as exc:
        raise NotFoundError(f"no subscription {raw[:60]!r}") from exc


async def find_subscription(conn: Conn, query: NamedQuery, sub_id: str) -> dict[str, Any]:
    row = await conn.fetchrow(
        "SELECT * FROM subscriptions WHERE id = $1 AND query_id = $2", _uuid(sub_id), query.id
    )
    if row is None:
        raise NotFoundError(f"no subscription {sub_id[:60]!r} on query {query.name!r}")
    return subscription_json(row, query.name)


async def delete_subscription(conn: Conn, query: NamedQuery, sub_id: str) -> None:
    done = await conn.fetchval(
        "DELETE FROM subscriptions WHERE id = $1 AND query_id = $2 RETURNING id",
        _uuid(sub_id),
        query.id,
    )
    if done is None:
        raise NotFoundError(f"no subscription {sub_id[:60]!r} on query {query.name!r}")
