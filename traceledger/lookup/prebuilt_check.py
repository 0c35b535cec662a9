"""Prebuilt answers, checked against the log: what `traceledger verify` reports.

A stored answer is served as it is (traceledger/lookup/prebuilt.py), so someone with
access to the database could edit one (remove a recall) and every shopper would read
the edit. Each answer a lookup would serve is assembled again from the log, with the
trust rules, and its status, producer and lot compared with the stored ones; the stored
status must also follow from the stored events (trust.status), so an answer whose status
alone was edited is caught even when its events were left alone.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from traceledger.errors import NotFoundError
from traceledger.lookup.history import HistoryService
from traceledger.lookup.prebuilt import read_prebuilt
from traceledger.standards.gs1 import parse_index_key
from traceledger.trust.status import status_of

MAX_DIFFERENCES = 100


@dataclass(frozen=True)
class PrebuiltReport:
    checked: int  # answers a lookup would serve, assembled again and compared
    stale: int  # stored answers no lookup would serve (they are rebuilt first)
    differences: list[str]


async def check_prebuilt(pool: asyncpg.Pool, service: HistoryService) -> PrebuiltReport:
    """Every servable prebuilt answer, compared with the answer the log gives now."""
    checkpoint = await service.newest_checkpoint()
    async with pool.acquire() as conn:
        keys = [r["key"] for r in await conn.fetch("SELECT key FROM prebuilt_answers ORDER BY key")]
    checked = stale = 0
    differences: list[str] = []
    for key in keys:
        async with pool.acquire() as conn:
            stored = await read_prebuilt(conn, key, checkpoint.size, 0.0)
        parsed = parse_index_key(key)
        if stored is None or parsed is None:
            stale += 1
            continue
        checked += 1
        body = json.loads(stored.bodies[stored.own_path])
        try:
            fresh = (await service.assemble(parsed, checkpoint)).answer
        except NotFoundError:
            fresh = None
        for found in _differences(key, body, fresh):
            if len(differences) < MAX_DIFFERENCES:
                differences.append(found)
    return PrebuiltReport(checked, stale, differences)


def _differences(key: str, stored: dict[str, Any], fresh: dict[str, Any] | None) -> list[str]:
    if fresh is None:
        return [f"prebuilt answer {key}: the log has no history for it"]
    found = []
    today = datetime.now(UTC).date()
    product = stored.get("product") or {}
    own = status_of(stored.get("events") or [], product.get("expiryDate"), today)
    if _plain(own) != _plain(stored.get("status")):
        found.append(f"prebuilt answer {key}: its status does not follow from its own events")
    for name, path in (
        ("status", ("status",)),
        ("producer", ("product", "producer")),
        ("lot", ("product", "lot")),
    ):
        if _plain(_at(stored, path)) != _plain(_at(fresh, path)):
            found.append(f"prebuilt answer {key}: its {name} differs from the log's")
    return found


def _at(answer: dict[str, Any], path: tuple[str, ...]) -> Any:
    value: Any = answer
    for name in path:
        value = value.get(name) if isinstance(value, dict) else None
    return value


def _plain(value: Any) -> Any:
    """As JSON would carry it (tuples, dates and such as in a stored body)."""
    return json.loads(json.dumps(value, default=str))
