"""Recall notices: every holder of recalled or failed goods is told, and it shows.

When a recall (disposition `recalled`) or a `non_conformant` verdict is logged and its
signer was entitled to say it (traceledger.inspect.entitlement), the notifier traces the
goods forward as the log stood at that moment and writes one notice per enterprise
holding any of them (traceledger.inspect.holding), in the same transaction that moves
its cursor past the event: each notice is planned exactly once. Deliveries then go to
each holder's registered recall endpoint, signed with that endpoint's secret; holders
without an endpoint, or whose endpoint keeps failing, are listed for the inspector to
chase, and a holder acknowledges by POSTing back the token its notice carries.
"""

from __future__ import annotations

import json
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from traceledger.errors import NotFoundError, RegistryError
from traceledger.inspect.entitlement import recall_entitled
from traceledger.inspect.query_document import log_proof
from traceledger.inspect.query_sql import Found
from traceledger.inspect.trace import Scope, forward_scope
from traceledger.inspect.visibility import shown_to_other_enterprises
from traceledger.inspect.webhooks import check_webhook_url
from traceledger.log.checkpoints import SignedCheckpoint
from traceledger.log.reader import LogReader
from traceledger.standards.epcis import utc_iso
from traceledger.standards.gs1 import parse_index_key
from traceledger.store.conn import Conn
from traceledger.trust.roles import WHAT

KINDS = ("recalled", "non_conformant")
# The roles in which a recall or verdict names the goods it is about.
RECALLED_ROLES = tuple(sorted(WHAT))
NOTICE_TYPE = "RecallNotice"


@dataclass(frozen=True, slots=True)
class Recall:
    idx: int
    kind: str
    signer: int | None
    signer_name: str | None
    event_id: str
    event_time: datetime
    goods: tuple[str, ...]
    payload: bytes


@dataclass(frozen=True, slots=True)
class Plan:
    """What a recall leads to: its notice's common body and each holder's goods."""

    recall: Recall
    entitled: bool
    truncated: bool
    body: dict[str, Any]
    holders: dict[int, list[dict[str, Any]]]  # enterprise id -> what it holds


async def recalls_between(conn: Conn, start: int, end: int) -> list[Recall]:
    """Recalls and non_conformant verdicts logged at indexes [start, end), in log order
    (error declarations, which retract an event, are not new recalls)."""
    rows = await conn.fetch(
        "SELECT e.idx, e.disposition, e.enterprise_id, e.event_id, e.event_time, n.payload,"
        " en.name,"
        " coalesce((SELECT array_agg(k.key ORDER BY k.key) FROM event_keys k"
        "  WHERE k.idx = e.idx AND k.role = ANY($3::text[])), '{}') AS goods"
        " FROM events e JOIN entries n ON n.idx = e.idx"
        " LEFT JOIN enterprises en ON en.id = e.enterprise_id"
        " WHERE e.idx >= $1 AND e.idx < $2 AND e.disposition = ANY($4::text[])"
        " AND e.corrects IS NULL AND n.payload IS NOT NULL"
        " AND position('\"errorDeclaration\":'::bytea IN n.payload) = 0"
        " ORDER BY e.idx",
        start,
        end,
        list(RECALLED_ROLES),
        list(KINDS),
    )
    return [
        Recall(
            r["idx"],
            r["disposition"],
            r["enterprise_id"],
            r["name"],
            r["event_id"],
            r["event_time"],
            tuple(r["goods"]),
            bytes(r["payload"]),
        )
        for r in rows
    ]


def _held(scopes: Sequence[Scope], signer: int | None) -> dict[int, list[dict[str, Any]]]:
    holders: dict[int, dict[str, dict[str, Any]]] = {}
    for scope in scopes:
        for h in scope.holdings():
            if h.enterprise_id == signer:
                continue  # whoever recorded it knows
            key = parse_index_key(h.key)
            holders.setdefault(h.enterprise_id, {})[h.key] = {
                "key": h.key,
                "digitalLink": key.digital_link() if key is not None else None,
                "heldSince": utc_iso(h.since),
                "receivedIndex": h.received.idx,
                "location": h.received.biz_location or h.received.read_point,
            }
    return {ent: list(held.values()) for ent, held in holders.items()}


async def plan_notice(
    conn: Conn, reader: LogReader, recall: Recall, checkpoint: SignedCheckpoint
) -> Plan:
    """Whether the recall is believed, who holds its goods, and the notice they get."""
    entitled = await recall_entitled(conn, recall.signer, recall.goods)
    scopes: list[Scope] = []
    if entitled:
        for key in recall.goods:
            parsed = parse_index_key(key)
            if parsed is not None:
                scopes.append(await forward_scope(conn, parsed, upto=recall.idx))
    shown, changed = shown_to_other_enterprises(recall.payload)
    proven = Found(recall.idx, shown, withheld=changed is not None)
    body = {
        "type": NOTICE_TYPE,
        "recall": {
            "index": recall.idx,
            "eventID": recall.event_id,
            "kind": recall.kind,
            "eventTime": utc_iso(recall.event_time),
            "recordedBy": recall.signer_name,
            "goods": list(recall.goods),
            "event": json.loads(shown),
        },
        "traceledger:log": await log_proof(conn, reader, [proven], checkpoint),
    }
    truncated = any(s.truncated for s in scopes)
    return Plan(recall, entitled, truncated, body, _held(scopes, recall.signer))


async def record_plans(conn: Conn, plans: Sequence[Plan]) -> None:
    """Write notices and their deliveries (call inside the cursor's transaction)."""
    for plan in plans:
        await conn.execute(
            "INSERT INTO recall_notices (recall_idx, kind, entitled, truncated, body)"
            " VALUES ($1, $2, $3, $4, $5)",
            plan.recall.idx,
            plan.recall.kind,
            plan.entitled,
            plan.truncated,
            json.dumps(plan.body, ensure_ascii=False),
        )
        await conn.executemany(
            "INSERT INTO recall_deliveries (recall_idx, enterprise_id, holds, ack_token)"
            " VALUES ($1, $2, $3::jsonb, $4)",
            [
                (plan.recall.idx, ent, json.dumps(held), secrets.token_urlsafe(24))
                for ent, held in sorted(plan.holders.items())
            ],
        )


def notice_bytes(
    common: dict[str, Any], holder: tuple[int, str], holds: list[Any], ack: tuple[str, str]
) -> bytes:
    """One holder's notice: the common part, what it holds, how to acknowledge."""
    url, token = ack
    notice = {
        **common,
        "holder": {"enterpriseId": holder[0], "name": holder[1]},
        "affected": holds,
        "acknowledge": {"method": "POST", "url": url, "body": {"ackToken": token}},
    }
    return json.dumps(notice, ensure_ascii=False, separators=(",", ":")).encode()


# ---------------------------------------------------------------------------------------------
# Endpoints, acknowledgments and the inspector's view


async def set_endpoint(conn: Conn, enterprise_id: int, url: str, secret: str | None) -> str:
    """Register (or replace) where an enterprise gets recall notices; returns the secret
    that signs them (generated unless given)."""
    try:
        check_webhook_url(url)
    except ValueError as exc:
        raise RegistryError(str(exc)) from exc
    if await conn.fetchval("SELECT id FROM enterprises WHERE id = $1", enterprise_id) is None:
        raise RegistryError(f"no enterprise with id {enterprise_id}")
    if secret is not None and not 16 <= len(secret) <= 1024:
        raise RegistryError("a recall endpoint secret is 16 to 1024 characters")
    secret = secret or secrets.token_urlsafe(32)
    await conn.execute(
        "INSERT INTO recall_endpoints (enterprise_id, url, secret) VALUES ($1, $2, $3)"
        " ON CONFLICT (enterprise_id) DO UPDATE"
        " SET url = EXCLUDED.url, secret = EXCLUDED.secret, updated_at = now()",
        enterprise_id,
        url,
        secret,
    )
    return secret


async def remove_endpoint(conn: Conn, enterprise_id: int) -> None:
    done = await conn.fetchval(
        "DELETE FROM recall_endpoints WHERE enterprise_id = $1 RETURNING enterprise_id",
        enterprise_id,
    )
    if done is None:
        raise RegistryError(f"enterprise {enterprise_id} has no recall endpoint")


async def acknowledge(
    conn: Conn, recall_idx: int, *, token: str | None = None, enterprise_id: int | None = None
) -> dict[str, Any]:
    """A holder says it got the notice: by the token its notice carries, or as itself (an
    enterprise token). Repeating it changes nothing."""
    row = await conn.fetchrow(
        "UPDATE recall_deliveries SET acknowledged_at = coalesce(acknowledged_at, now())"
        " WHERE recall_idx = $1 AND (ack_token = $2 OR enterprise_id = $3)"
        " RETURNING enterprise_id, acknowledged_at",
        recall_idx,
        token,
        enterprise_id,
    )
    if row is None:
        raise NotFoundError(f"no recall notice at index {recall_idx} for this acknowledgment")
    return {
        "recallIndex": recall_idx,
        "enterpriseId": row["enterprise_id"],
        "acknowledgedAt": utc_iso(row["acknowledged_at"]),
    }


def _status(row: Any) -> str:
    if row["acknowledged_at"] is not None:
        return "acknowledged"
    if row["delivered_at"] is not None:
        return "delivered"
    if row["suspended_at"] is not None:
        return "suspended"
    if row["endpoint"] is None:
        return "no-endpoint"
    return "retrying" if row["attempts"] else "pending"


def _when(value: datetime | None) -> str | None:
    return None if value is None else utc_iso(value)


async def notices_for(conn: Conn, recall_idx: int) -> dict[str, Any]:
    """Who was told about a recall, when, and whether they acknowledged; who could not be
    reached."""
    notice = await conn.fetchrow(
        "SELECT kind, entitled, truncated, body, created_at"
        " FROM recall_notices WHERE recall_idx = $1",
        recall_idx,
    )
    if notice is None:
        raise NotFoundError(
            f"no recall notice for index {recall_idx}: it is not a recall or non_conformant "
            "verdict, or the log has not reached it yet"
        )
    rows = await conn.fetch(
        "SELECT d.*, e.name, p.url AS endpoint FROM recall_deliveries d"
        " JOIN enterprises e ON e.id = d.enterprise_id"
        " LEFT JOIN recall_endpoints p ON p.enterprise_id = d.enterprise_id"
        " WHERE d.recall_idx = $1 ORDER BY d.enterprise_id",
        recall_idx,
    )
    told = [
        {
            "enterpriseId": r["enterprise_id"],
            "enterprise": r["name"],
            "status": _status(r),
            "endpoint": r["endpoint"],
            "attempts": r["attempts"],
            "lastAttemptAt": _when(r["last_attempt_at"]),
            "deliveredAt": _when(r["delivered_at"]),
            "acknowledgedAt": _when(r["acknowledged_at"]),
            "suspendedAt": _when(r["suspended_at"]),
            "lastError": r["last_error"],
            "holds": json.loads(r["holds"]) if isinstance(r["holds"], str) else r["holds"],
        }
        for r in rows
    ]
    body = json.loads(notice["body"])
    return {
        "recall": {**body["recall"], "entitled": notice["entitled"]},
        "noticedAt": utc_iso(notice["created_at"]),
        "scopeTruncated": notice["truncated"],
        "notices": told,
        "unreachable": [n for n in told if n["status"] in ("no-endpoint", "suspended")],
    }
