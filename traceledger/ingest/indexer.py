"""Indexing: derive the lookup tables (events, event_keys) from the log.

The index is a pure function of the log, built by one leader process a chunk at a
time; the cursor moves in the same transaction as the rows it covers, so a crash
never skips or doubles an entry, and dropping the tables rebuilds them.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import asyncpg

from traceledger.accounts import registry
from traceledger.cpu import CpuPool
from traceledger.errors import MalformedError
from traceledger.ingest.custody import custody_facts
from traceledger.ingest.envelopes import stored_envelope
from traceledger.standards import cbv, jsontext
from traceledger.standards.epcis import EVENT_TYPES, parse_time, raw_mentions
from traceledger.standards.eventhash import hash_id_verified
from traceledger.store.conn import Conn
from traceledger.store.leader import LeaderTask
from traceledger.store.locks import Lock
from traceledger.trust.claims import index_key, lot_member_keys

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class IndexedEvent:
    row: tuple[object, ...]
    keys: list[tuple[str, int, str]]
    event_id: str
    declaration: bool

    def __reduce__(self) -> tuple[Any, ...]:
        # Thousands cross from the worker processes each chunk: a plain constructor call
        # pickles several times faster than a slotted dataclass's state.
        return (IndexedEvent, (self.row, self.keys, self.event_id, self.declaration))


@dataclass(frozen=True, slots=True)
class Submitter:
    """Who an envelope's events came from, and how (see traceledger/ingest/custody.py)."""

    enterprise_id: int | None
    is_authority: bool = False
    submitted_with: str = "dsse"
    # Entries whose ni: eventID is not their computed hash, as the capture receipt says.
    unverified: frozenset[int] = frozenset()


_NOBODY = Submitter(None)


def _place(event: Mapping[str, Any], field: str) -> str | None:
    place = event.get(field)
    if isinstance(place, Mapping) and isinstance(place.get("id"), str):
        return index_key(place["id"])
    return None


def lot_members(idx: int, event: Mapping[str, Any]) -> set[tuple[str, int, str]]:
    """(lot key, idx, "lotMember") for each lot whose serials the event creates (see
    traceledger/trust/claims.py `lot_member_keys`)."""
    return {(lot, idx, "lotMember") for lot in lot_member_keys(event)}


def index_event(
    idx: int, event: Mapping[str, Any], identity: bytes, submitter: Submitter
) -> IndexedEvent:
    keys = sorted(
        {
            (index_key(uri), idx, role)
            for uri, role, _ in raw_mentions(event)
            if isinstance(uri, str)
        }
        | lot_members(idx, event)
    )
    declaration = "errorDeclaration" in event
    event_id = str(event.get("eventID", ""))
    row = (
        idx,
        event_id,
        str(event["type"]),
        _utc(parse_time(event.get("eventTime"))),
        event.get("action"),
        cbv.normalized_or_raw("bizStep", event.get("bizStep")),
        cbv.normalized_or_raw("disposition", event.get("disposition")),
        _place(event, "readPoint"),
        _place(event, "bizLocation"),
        submitter.enterprise_id,
        declaration,
        submitter.submitted_with,
        _verified(idx, event_id, identity, declaration, submitter),
    )
    return IndexedEvent(row, keys, event_id, declaration)


def _utc(moment: datetime) -> datetime:
    """The same instant in UTC: every row then shares one time zone object, which pickles
    once per chunk instead of once per row (the database keeps UTC anyway)."""
    try:
        return moment.astimezone(UTC)
    except OverflowError:  # out of range once in UTC: as written
        return moment


def _verified(
    idx: int, event_id: str, identity: bytes, declaration: bool, submitter: Submitter
) -> bool | None:
    """Whether an ni: eventID is the event's computed hash (None: not a hash ID).

    A plain event's identity is its hash, so the log itself answers; a declaration's
    identity is not, so capture's receipt does (it hashed the event in its document).
    """
    verified = hash_id_verified(event_id, identity)
    if verified is None or not declaration:
        return verified
    return idx not in submitter.unverified


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
        chunk: int = 1000,
        cpu: CpuPool | None = None,
        slice_size: int = 500,
    ) -> None:
        self._pool = pool
        # What the event loop does per chunk (read the rows, write them with COPY) runs
        # without a pause: 5,000 entries held it for tens of milliseconds.
        self._chunk = chunk
        # Where payloads are parsed and their rows derived (inline without a pool).
        self._cpu = cpu or CpuPool(0)
        self._slice = slice_size
        self._others = tuple(others)
        self.task = LeaderTask(pool, "indexer", Lock.INDEXER, interval, self.index_once)

    async def index_once(self) -> bool:
        async with self._pool.acquire() as conn, conn.transaction():
            start = await conn.fetchval("SELECT next_idx FROM index_state FOR UPDATE")
            self.task.position = start
            rows = await conn.fetch(
                "SELECT idx, identity, payload, envelope_hash FROM entries"
                " WHERE idx >= $1 ORDER BY idx LIMIT $2",
                start,
                self._chunk,
            )
            if not rows:
                return False
            submitters = await _submitters(
                conn, {bytes(r["envelope_hash"]) for r in rows if r["envelope_hash"] is not None}
            )
            work = []
            for r in rows:
                env = r["envelope_hash"]
                submitter = submitters.get(bytes(env), _NOBODY) if env is not None else _NOBODY
                work.append((r["idx"], r["payload"], bytes(r["identity"]), submitter))
            indexed: list[IndexedEvent] = []
            for (idx, payload, _, submitter), outcome in zip(
                work, await self._indexed(work), strict=True
            ):
                if isinstance(outcome, IndexedEvent):
                    indexed.append(outcome)
                elif outcome is None:  # not an EPCIS event: maybe a risk catalog version
                    for index_other in self._others:
                        await index_other(conn, idx, payload, submitter.enterprise_id)
                else:
                    log.warning("entry %d is not an indexable event: %s", idx, outcome)
            await _store(conn, indexed, submitters)
            await conn.execute("UPDATE index_state SET next_idx = $1", rows[-1]["idx"] + 1)
            return len(rows) == self._chunk

    async def _indexed(self, work: list[ToIndex]) -> list[IndexedEvent | str | None]:
        """index_entries over `work`, in slices spread over the worker processes: parsing
        thousands of payloads on the event loop would hold up every request meanwhile."""
        step = self._slice
        slices = [work[i : i + step] for i in range(0, len(work), step)]
        done = await asyncio.gather(*(self._cpu.run(index_entries, part) for part in slices))
        return [outcome for part in done for outcome in part]


# (log index, payload, identity, who sent it): what index_entries reads of one entry.
ToIndex = tuple[int, bytes | None, bytes, Submitter]


def index_entries(work: list[ToIndex]) -> list[IndexedEvent | str | None]:
    """For each entry its index rows, None when it is no EPCIS event (a risk catalog
    version, a redacted payload), or why it cannot be indexed. Pure: runs in a worker."""
    out: list[IndexedEvent | str | None] = []
    for idx, payload, identity, submitter in work:
        event = _as_event(payload)
        if event is None:
            out.append(None)
            continue
        try:
            out.append(index_event(idx, event, identity, submitter))
        except (ValueError, KeyError, TypeError) as exc:
            out.append(str(exc))
    return out


def _as_event(payload: bytes | None) -> Mapping[str, Any] | None:
    if payload is None:
        return None  # redacted
    try:
        event = jsontext.loads(payload)
    except (ValueError, UnicodeDecodeError):
        return None
    if isinstance(event, dict) and event.get("type") in EVENT_TYPES:
        return event
    return None


async def _submitters(conn: Conn, envelope_hashes: set[bytes]) -> dict[bytes, Submitter]:
    """Who sent each envelope: the enterprise of the first registered key whose signature
    verifies, or, for a custody envelope, the one the ledger took the submission from."""
    if not envelope_hashes:
        return {}
    found: dict[bytes, tuple[int | None, str, frozenset[int]]] = {}
    rows = await conn.fetch(
        "SELECT hash, body, receipt FROM envelopes WHERE hash = ANY($1::bytea[])",
        list(envelope_hashes),
    )
    for row in rows:
        if row["body"] is None:
            continue
        try:
            envelope = stored_envelope(bytes(row["body"]))
        except (MalformedError, ValueError):
            log.warning("envelope %s is unreadable; its events get no signer", row["hash"].hex())
            continue
        custody = custody_facts(envelope)
        enterprise: int | None
        if custody is not None:
            enterprise, how = custody.enterprise_id, custody.submitted_with
        else:
            enterprise = await registry.signing_enterprise(conn, envelope)
            how = "dsse"
        found[bytes(row["hash"])] = (enterprise, how, _unverified(row["receipt"]))
    authorities = {
        r["id"]
        for r in await conn.fetch(
            "SELECT id FROM enterprises WHERE id = ANY($1::bigint[]) AND role = 'authority'",
            list({e for e, _, _ in found.values() if e is not None}),
        )
    }
    return {
        envelope: Submitter(enterprise, enterprise in authorities, how, unverified)
        for envelope, (enterprise, how, unverified) in found.items()
    }


def _unverified(receipt: bytes | None) -> frozenset[int]:
    """Indexes whose ni: eventID the capture receipt found not to be their hash."""
    if receipt is None:
        return frozenset()
    try:
        entries = json.loads(receipt)["entries"]
        return frozenset(
            e["index"] for e in entries if e.get("eventIDVerified") is False and "index" in e
        )
    except (ValueError, KeyError, TypeError):
        return frozenset()


async def _store(
    conn: Conn, indexed: list[IndexedEvent], submitters: Mapping[bytes, Submitter]
) -> None:
    if not indexed:
        return
    # An error declaration points at the original event with the same eventID, among the
    # events of the declaration's own signer (an authority's: anyone's). Several such
    # events: it points at none (capture refuses that case when it can see it; see
    # traceledger/ingest/declarations.py), since guessing would let one event's
    # declaration retract another.
    declared = {e.event_id for e in indexed if e.declaration}
    candidates: dict[str, list[tuple[int, int | None]]] = {}
    if declared:
        for r in await conn.fetch(
            "SELECT event_id, idx, enterprise_id FROM events"
            " WHERE event_id = ANY($1::text[]) AND corrects IS NULL AND NOT declaration"
            " ORDER BY idx",
            list(declared),
        ):
            candidates.setdefault(r["event_id"], []).append((r["idx"], r["enterprise_id"]))
    authorities = {s.enterprise_id for s in submitters.values() if s.is_authority}
    rows = []
    for e in indexed:
        idx, signer = e.row[0], e.row[9]
        corrects = None
        if e.declaration:
            mine = [
                i
                for i, owner in candidates.get(e.event_id, ())
                if signer in authorities or (owner == signer and signer is not None)
            ]
            corrects = mine[0] if len(mine) == 1 else None
        else:
            candidates.setdefault(e.event_id, []).append((idx, signer))  # type: ignore[arg-type]
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
            "declaration",
            "submitted_with",
            "event_id_verified",
            "corrects",
        ],
    )
    await conn.copy_records_to_table(
        "event_keys", records=[k for e in indexed for k in e.keys], columns=["key", "idx", "role"]
    )
