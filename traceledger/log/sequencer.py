"""Sequencing: give entries durable, contiguous indexes, many appenders per transaction.

Appenders hand their entries to one sequencer task per process. It gathers everything
waiting (group commit), then runs a single short transaction: lock the head row (the
single-writer lock across processes), drop entries whose identity is already logged,
COPY the new rows, move the head, commit. Only after the commit is durable does any
appender learn its indexes, so an acknowledged entry is never lost.

An appender may name the envelope its entries came in and a receipt builder: the
receipt is stored with the envelope in the same transaction, and a later append of the
identical envelope gets that stored receipt back instead of appending anything.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import asyncpg

from traceledger.errors import BusyError, StoreError, TraceledgerError
from traceledger.store.conn import Conn
from traceledger.tlog.leaf import DISCLOSURE_VERSION, Leaf, sha256
from traceledger.tlog.merkle import leaf_hash

log = logging.getLogger(__name__)

_YIELD_EVERY = 512  # entries planned between pauses for the event loop


@dataclass(frozen=True, slots=True)
class Entry:
    """What an appender logs: a 32-byte identity (for dedup), the payload, its envelope."""

    identity: bytes
    payload: bytes
    envelope: bytes | None = None
    # Selective disclosure: the fields' salts and the commitment to them make a version-2
    # leaf (traceledger/tlog/disclosure.py); without them the leaf commits to the payload.
    salts: bytes | None = None
    commitment: bytes | None = None

    def __post_init__(self) -> None:
        if len(self.identity) != 32:
            raise ValueError("identity must be 32 bytes (a SHA-256 digest)")


@dataclass(frozen=True, slots=True)
class Appended:
    index: int
    duplicate: bool


# Builds the stored receipt from the outcome and the tree size after the commit.
ReceiptBuilder = Callable[[list[Appended], int], bytes]


@dataclass(frozen=True, slots=True)
class Receipt:
    body: bytes
    replayed: bool  # True: this envelope was accepted before; body is the original receipt


@dataclass(frozen=True, slots=True)
class Head:
    size: int
    last_hash: bytes
    last_time_us: int


@dataclass(slots=True)
class _Outcome:
    appended: list[Appended] = field(default_factory=list)
    receipt: Receipt | None = None


@dataclass(slots=True)
class _Request:
    entries: Sequence[Entry]
    done: asyncio.Future[_Outcome]
    envelope: bytes | None = None
    build_receipt: ReceiptBuilder | None = None
    # Hashed once at submission: an envelope may be megabytes.
    envelope_hash: bytes | None = None


def _now_us() -> int:
    return time.time_ns() // 1000


class Sequencer:
    def __init__(
        self,
        pool: asyncpg.Pool,
        *,
        max_batch_entries: int = 10_000,
        max_pending_entries: int = 100_000,
        clock: Callable[[], int] = _now_us,
    ) -> None:
        self._pool = pool
        self._max_batch = max_batch_entries
        self._max_pending = max_pending_entries
        self._clock = clock
        self._queue: list[_Request] = []
        self._pending_entries = 0
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._closing = False
        # Called before an append is queued; raises to refuse it. The ledger sets it to the
        # integrator's check that the tree extends the published checkpoint.
        self.gate: Callable[[], None] | None = None
        # Plain counters for monitoring (read at scrape time; no metrics library here).
        self.entries_appended = 0  # new entries committed (duplicates excluded)
        self.batches_committed = 0  # group-commit transactions
        self.batch_entries_total = 0  # entries submitted in those transactions
        # Committed transactions by size class: key k counts batches of 2**(k-1) < n <= 2**k
        # entries (key 0: one entry).
        self.batch_size_log2: Counter[int] = Counter()

    @property
    def pending_entries(self) -> int:
        return self._pending_entries

    async def __aenter__(self) -> Sequencer:
        self._task = asyncio.create_task(self._run(), name="sequencer")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.close()

    async def close(self) -> None:
        """Finish what is queued, then stop; later appends are refused."""
        self._closing = True
        self._wakeup.set()
        if self._task is not None:
            await self._task
            self._task = None

    async def append(self, entries: Sequence[Entry]) -> list[Appended]:
        """Append atomically: all entries get indexes in one committed transaction, or none."""
        if not entries:
            return []
        return (await self._submit(_Request(entries, self._future()))).appended

    async def append_envelope(
        self, envelope: bytes, entries: Sequence[Entry], build_receipt: ReceiptBuilder
    ) -> Receipt:
        """Append an envelope's entries atomically and store its receipt, or replay it."""
        request = _Request(entries, self._future(), envelope, build_receipt, sha256(envelope))
        outcome = await self._submit(request)
        assert outcome.receipt is not None
        return outcome.receipt

    def _future(self) -> asyncio.Future[_Outcome]:
        future: asyncio.Future[_Outcome] = asyncio.get_running_loop().create_future()
        # If the appender is cancelled (client gone), nobody awaits the outcome: mark it seen.
        future.add_done_callback(lambda f: f.cancelled() or f.exception())
        return future

    async def _submit(self, request: _Request) -> _Outcome:
        count = len(request.entries)
        if self._closing or self._task is None:
            raise BusyError("the log is shutting down", retry_after=5)
        if self.gate is not None:
            self.gate()
        if count > self._max_batch:
            raise BusyError(
                f"{count} entries exceed the per-transaction limit of {self._max_batch}"
            )
        if self._pending_entries + count > self._max_pending:
            raise BusyError(f"the sequencer already holds {self._pending_entries} entries")
        self._queue.append(request)
        self._pending_entries += count
        self._wakeup.set()
        return await asyncio.shield(request.done)

    async def _run(self) -> None:
        while True:
            await self._wakeup.wait()
            self._wakeup.clear()
            while self._queue:
                group = self._take_group()
                try:
                    await self._settle(group)
                finally:
                    self._pending_entries -= sum(len(r.entries) for r in group)
            if self._closing:
                return

    async def _settle(self, group: list[_Request]) -> None:
        try:
            outcomes, appended = await self._commit(group)
        except Exception as exc:
            if len(group) > 1:
                # One request must not sink the others that shared its transaction.
                for req in group:
                    await self._settle([req])
                return
            log.exception("sequencing failed")
            err = exc if isinstance(exc, TraceledgerError) else StoreError(str(exc))
            if not group[0].done.done():
                group[0].done.set_exception(err)
            return
        submitted = sum(len(r.entries) for r in group)
        self.entries_appended += appended
        self.batches_committed += 1
        self.batch_entries_total += submitted
        self.batch_size_log2[max(submitted - 1, 0).bit_length()] += 1
        for req, outcome in zip(group, outcomes, strict=True):
            if not req.done.done():
                req.done.set_result(outcome)

    def _take_group(self) -> list[_Request]:
        group: list[_Request] = []
        total = 0
        while self._queue and (not group or total + len(self._queue[0].entries) <= self._max_batch):
            req = self._queue.pop(0)
            group.append(req)
            total += len(req.entries)
        return group

    async def _commit(self, group: list[_Request]) -> tuple[list[_Outcome], int]:
        """Commit one group; the outcomes and how many new entries were appended."""
        identities = list({e.identity for req in group for e in req.entries})
        envelope_hashes = list({r.envelope_hash for r in group if r.envelope_hash is not None})
        async with self._pool.acquire() as conn, conn.transaction():
            row = await conn.fetchrow("SELECT size, last_hash, last_time FROM log_head FOR UPDATE")
            if row is None:
                raise StoreError("log_head row is missing; the schema is damaged")
            head = Head(row["size"], bytes(row["last_hash"]), row["last_time"])
            receipts: dict[bytes, bytes] = {}
            if envelope_hashes:
                receipts = {
                    bytes(r["hash"]): bytes(r["receipt"])
                    for r in await conn.fetch(
                        "SELECT hash, receipt FROM envelopes"
                        " WHERE hash = ANY($1::bytea[]) AND receipt IS NOT NULL",
                        envelope_hashes,
                    )
                }
            known: dict[bytes, int] = {
                bytes(r["identity"]): r["idx"]
                for r in await conn.fetch(
                    "SELECT identity, idx FROM entries WHERE identity = ANY($1::bytea[])",
                    identities,
                )
            }
            rows, envelopes, outcomes, head = await self._plan(group, head, known, receipts)
            if envelopes:
                await conn.execute(
                    "INSERT INTO envelopes (hash, body, receipt)"
                    " SELECT * FROM unnest($1::bytea[], $2::bytea[], $3::bytea[])"
                    " ON CONFLICT (hash) DO UPDATE"
                    " SET receipt = coalesce(envelopes.receipt, EXCLUDED.receipt)",
                    list(envelopes),
                    [body for body, _ in envelopes.values()],
                    [receipt for _, receipt in envelopes.values()],
                )
            if rows:
                await conn.copy_records_to_table(
                    "entries",
                    records=rows,
                    columns=["idx", "identity", "leaf", "payload", "envelope_hash", "salts"],
                )
                await conn.execute(
                    "UPDATE log_head SET size = $1, last_hash = $2, last_time = $3",
                    head.size,
                    head.last_hash,
                    head.last_time_us,
                )
        return outcomes, len(rows)

    async def _plan(
        self,
        group: list[_Request],
        head: Head,
        known: dict[bytes, int],
        receipts: dict[bytes, bytes],
    ) -> tuple[
        list[tuple[object, ...]], dict[bytes, tuple[bytes, bytes | None]], list[_Outcome], Head
    ]:
        """Assign indexes, build leaves and receipts; pure apart from reading the clock, and
        pausing for other requests every _YIELD_EVERY entries (a group of 10,000 takes
        the event loop about 100 ms)."""
        # Record times never go backwards along the chain, even if the wall clock does.
        now = max(self._clock(), head.last_time_us)
        size, prev = head.size, head.last_hash
        rows: list[tuple[object, ...]] = []
        envelopes: dict[bytes, tuple[bytes, bytes | None]] = {}
        outcomes: list[_Outcome] = []
        # Entries of one envelope share its bytes object: hash each object once, not per entry.
        hashed: dict[int, bytes] = {
            id(r.envelope): r.envelope_hash
            for r in group
            if r.envelope is not None and r.envelope_hash is not None
        }

        def envelope_hash(body: bytes) -> bytes:
            if id(body) not in hashed:
                hashed[id(body)] = sha256(body)
            return hashed[id(body)]

        for req in group:
            req_hash = envelope_hash(req.envelope) if req.envelope is not None else None
            if req_hash is not None and req_hash in receipts:
                outcomes.append(_Outcome(receipt=Receipt(receipts[req_hash], replayed=True)))
                continue
            out = _Outcome()
            for planned, entry in enumerate(req.entries, start=1):
                if planned % _YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # the log head stays locked: nothing else appends
                if entry.identity in known:
                    out.appended.append(Appended(known[entry.identity], duplicate=True))
                    continue
                env_hash = None
                if entry.envelope is not None:
                    env_hash = envelope_hash(entry.envelope)
                    envelopes.setdefault(env_hash, (entry.envelope, None))
                leaf = _leaf(size, prev, now, entry, env_hash)
                encoded = leaf.encode()
                rows.append((size, entry.identity, encoded, entry.payload, env_hash, entry.salts))
                known[entry.identity] = size
                out.appended.append(Appended(size, duplicate=False))
                prev = leaf_hash(encoded)
                size += 1
            if req_hash is not None and req.envelope is not None and req.build_receipt:
                # The receipt names the tree size right after this envelope's entries.
                body = req.build_receipt(out.appended, size)
                envelopes[req_hash] = (req.envelope, body)
                receipts[req_hash] = body  # the same envelope again in this group replays
                out.receipt = Receipt(body, replayed=False)
            outcomes.append(out)
        return rows, envelopes, outcomes, Head(size, prev, now)


def _leaf(size: int, prev: bytes, now: int, entry: Entry, env_hash: bytes | None) -> Leaf:
    if entry.commitment is None:
        return Leaf(size, prev, now, entry.identity, sha256(entry.payload), env_hash)
    return Leaf(size, prev, now, entry.identity, entry.commitment, env_hash, DISCLOSURE_VERSION)


async def stored_receipt(conn: Conn, envelope_hash: bytes) -> bytes | None:
    """The receipt stored for an envelope accepted before (what a replay gets back)."""
    found = await conn.fetchval(
        "SELECT receipt FROM envelopes WHERE hash = $1 AND receipt IS NOT NULL", envelope_hash
    )
    return None if found is None else bytes(found)
