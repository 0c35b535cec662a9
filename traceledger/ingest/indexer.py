"""Indexing: derive the lookup tables (events, event_keys) from the log.

The index is a pure function of the log, built by one leader process a chunk at a
time; the cursor moves in the same transaction as the rows it covers, so a crash
never skips or doubles an entry, and dropping the tables rebuilds them.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg

from traceledger.errors import IdentifierError, MalformedError
from traceledger.standards import cbv, dsse
from traceledger.standards.epcis import EVENT_TYPES, ilmd_fact, parse_time, raw_mentions
from traceledger.standards.gs1 import GS1Key, parse_identifier
from traceledger.store.conn import Conn
from traceledger.store.leader import LeaderTask
from traceledger.store.locks import Lock

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IndexedEvent:
    row: tuple[object, ...]
    keys: list[tuple[str, int, str]]
    event_id: str
    declaration: bool


def index_key(uri: str) -> str:
    """The event_keys key for an identifier: its GS1 key, else the URI as written."""
    try:
        key = parse_identifier(uri)
    except IdentifierError:
        return uri
    return key.item_key().canonical() if key is not None else uri


def _place(event: Mapping[str, Any], field: str) -> str | None:
    place = event.get(field)
    if isinstance(place, Mapping) and isinstance(place.get("id"), str):
        return index_key(place["id"])
    return None


def lot_members(idx: int, event: Mapping[str, Any]) -> set[tuple[str, int, str]]:
    """(lot key, idx, "lotMember") when an event creates serials of a lot named in its ILMD.

    A serial's EPC does not carry its lot; the creating event's ILMD does. Indexing the
    link lets a recall or forward trace of a lot reach every serial made in it.
    """
    lot = ilmd_fact(event.get("ilmd"), "lotNumber")
    creates = ("epc",) if event.get("action") == "ADD" else ("output",)
    if not isinstance(lot, str) or event.get("type") not in ("ObjectEvent", "TransformationEvent"):
        return set()
    found = set()
    for uri, role, _ in raw_mentions(event):
        if role not in creates or not isinstance(uri, str):
            continue
        try:
            key = parse_identifier(uri)
        except IdentifierError:
            continue
        if key is not None and key.scheme == "gtin" and key.serial is not None:
            found.add((GS1Key("gtin", key.key, lot=lot).canonical(), idx, "lotMember"))
    return found


def index_event(idx: int, event: Mapping[str, Any], enterprise_id: int | None) -> IndexedEvent:
    keys = sorted(
        {
            (index_key(uri), idx, role)
            for uri, role, _ in raw_mentions(event)
            if isinstance(uri, str)
        }
        | lot_members(idx, event)
    )
    row = (
        idx,
        str(event.get("eventID", "")),
        str(event["type"]),
        parse_time(event.get("eventTime")),
        event.get("action"),
        cbv.normalized_or_raw("bizStep", event.get("bizStep")),
        cbv.normalized_or_raw("disposition", event.get("disposition")),
        _place(event, "readPoint"),
        _place(event, "bizLocation"),
        enterprise_id,
    )
    return IndexedEvent(row, keys, str(row[1]), "errorDeclaration" in event)


# Indexes an entry that is not an EPCIS event (a risk catalog version, say):
# (connection, index, payload, signer's enterprise id or None).
OtherEntryIndexer = Callable[[Conn, int, bytes | None, int | None], Awaitable[None]]


class Indexer:
    """Derives the event tables from the log, in log order, one chunk per transaction.

    Entries that are not EPCIS events go to `others` (the composition root passes the
    catalog indexer), so capture need not know every kind of document the log holds.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        others: Sequence[OtherEntryIndexer] = (),
        interval: float = 0.2,
        chunk: int = 5000,
    ) -> None:
        self._pool = pool
        self._chunk = chunk
        self._others = tuple(others)
        self.task = LeaderTask(pool, "indexer", Lock.INDEXER, interval, self.index_once)

    async def index_once(self) -> bool:
        async with self._pool.acquire() as conn, conn.transaction():
            start = await conn.fetchval("SELECT next_idx FROM index_state FOR UPDATE")
            self.task.position = start
            rows = await conn.fetch(
                "SELECT idx, payload, envelope_hash FROM entries"
                " WHERE idx >= $1 ORDER BY idx LIMIT $2",
                start,
                self._chunk,
            )
            if not rows:
                return False
            signers = await _signers(
                conn, {bytes(r["envelope_hash"]) for r in rows if r["envelope_hash"] is not None}
            )
            indexed: list[IndexedEvent] = []
            for r in rows:
                event = _as_event(r["payload"])
                if event is None:  # not an EPCIS event: maybe a risk catalog version
                    env = r["envelope_hash"]
                    signer = signers.get(bytes(env)) if env is not None else None
                    for index_other in self._others:
                        await index_other(conn, r["idx"], r["payload"], signer)
                    continue
                env = r["envelope_hash"]
                try:
                    indexed.append(
                        index_event(
                            r["idx"], event, signers.get(bytes(env)) if env is not None else None
                        )
                    )
                except (ValueError, KeyError, TypeError) as exc:
                    log.warning("entry %d is not an indexable event: %s", r["idx"], exc)
            await _store(conn, indexed)
            await conn.execute("UPDATE index_state SET next_idx = $1", rows[-1]["idx"] + 1)
            return len(rows) == self._chunk


def _as_event(payload: bytes | None) -> Mapping[str, Any] | None:
    if payload is None:
        return None  # redacted
    try:
        event = json.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(event, dict) and event.get("type") in EVENT_TYPES:
        return event
    return None


async def _signers(conn: Conn, envelope_hashes: set[bytes]) -> dict[bytes, int]:
    """Which enterprise signed each envelope (the first signature by a registered key)."""
    if not envelope_hashes:
        return {}
    found: dict[bytes, int] = {}
    rows = await conn.fetch(
        "SELECT hash, body FROM envelopes WHERE hash = ANY($1::bytea[])", list(envelope_hashes)
    )
    for row in rows:
        if row["body"] is None:
            continue
        body = bytes(row["body"])
        try:
            # Bodies are stored as received: JSON starts with "{", MessagePack maps never do.
            if body.lstrip()[:1] == b"{":
                envelope = dsse.from_json_object(json.loads(body))
            else:
                envelope = dsse.parse_msgpack(body)
        except (MalformedError, ValueError):
            log.warning("envelope %s is unreadable; its events get no signer", row["hash"].hex())
            continue
        ent = await conn.fetchval(
            "SELECT enterprise_id FROM enterprise_keys WHERE key_id = ANY($1::text[]) LIMIT 1",
            [s.keyid for s in envelope.signatures],
        )
        if ent is not None:
            found[bytes(row["hash"])] = ent
    return found


async def _store(conn: Conn, indexed: list[IndexedEvent]) -> None:
    if not indexed:
        return
    # An error declaration points at the original event with the same eventID.
    declared = {e.event_id for e in indexed if e.declaration}
    originals: dict[str, int] = {}
    if declared:
        originals = {
            r["event_id"]: r["idx"]
            for r in await conn.fetch(
                "SELECT DISTINCT ON (event_id) event_id, idx FROM events"
                " WHERE event_id = ANY($1::text[]) AND corrects IS NULL ORDER BY event_id, idx",
                list(declared),
            )
        }
    rows = []
    for e in indexed:
        corrects = None
        if e.declaration:
            corrects = originals.get(e.event_id)
        else:
            originals.setdefault(e.event_id, e.row[0])  # type: ignore[arg-type]
        rows.append((*e.row, corrects))
    await conn.copy_records_to_table(
        "events",
        records=rows,
        columns=[
            "idx",
            "event_id",
            "event_type",
            "event_time",
            "action",
            "biz_step",
            "disposition",
            "read_point",
            "biz_location",
            "enterprise_id",
            "corrects",
        ],
    )
    await conn.copy_records_to_table(
        "event_keys", records=[k for e in indexed for k in e.keys], columns=["key", "idx", "role"]
    )
