"""One item's trace history: every event that concerns it, with proofs, and its status.

An item's history gathers events recorded
- on the item itself, on its lot, and on its product class;
- on containers while the item was aggregated in them (AggregationEvent ADD to DELETE);
- upstream through transformations: the lots its lot was made from, recursively.
A serial's lot, when the QR code carries none, is read from the ILMD of the event that
commissioned it. Every event comes with an inclusion proof against one signed
checkpoint, so the whole answer can be verified offline.

With time-sharded logs (traceledger/shards.py) the walk runs over every shard, current
first: a key found in one shard (the lot a serial was made in, last year) keeps the walk
going in the others (this year's recall of that lot). An event is then identified by its
log's origin and its index there, and is proven against its own log's checkpoint.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Sequence
from typing import Any

import asyncpg

from traceledger.errors import NotFoundError
from traceledger.log.checkpoints import SignedCheckpoint
from traceledger.log.cosigned import witness_names
from traceledger.log.reader import LogReader
from traceledger.log.shards import Shard
from traceledger.lookup.answer import Judged, Signers
from traceledger.lookup.cache import CachedAnswer, HistoryCache
from traceledger.lookup.prebuilt import prebuildable, read_prebuilt
from traceledger.lookup.walk import MAX_EVENTS, EventId, EventRow, Walk, events_naming
from traceledger.standards.gs1 import GS1Key
from traceledger.tlog.note import Verifier

__all__ = ["MAX_EVENTS", "EventRow", "HistoryService", "events_naming"]


class HistoryService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        reader: LogReader,
        *,
        verifier_key: str | None = None,
        cache: HistoryCache | None = None,
        checkpoint_max_age: float = 0.0,
        origin: str | None = None,
        past: Sequence[Shard] = (),
        prebuilt: bool = False,
    ) -> None:
        self._pool = pool
        self._reader = reader
        self._verifier_key = verifier_key
        # The current log's origin tags its events; by default the verifier key's name.
        if origin is None:
            origin = Verifier.parse(verifier_key).name if verifier_key is not None else ""
        self.origin = origin
        self.past = tuple(past)
        self.cache = cache if cache is not None else HistoryCache(0, 0)
        # Whether to look for answers built ahead (traceledger/prebuilt.py) before
        # assembling one: the public view of serialized items and lots only.
        self._prebuilt = prebuilt
        self._checkpoint_max_age = checkpoint_max_age
        self._latest: tuple[float, SignedCheckpoint] | None = None

    async def history(
        self,
        key: GS1Key,
        *,
        inspector: bool = False,
        all_logs: bool = False,
        proofs: bool = True,
    ) -> dict[str, Any]:
        """The item's history (possibly shared with other callers: do not mutate it).

        Without `all_logs`, only the current log's events: callers that go on to read
        events by index from the current database (trace, export) must never be handed
        an index of another log. `pending` and `status` still speak for every log.
        Callers that read the events and hand none of them out (trace, export) ask
        without `proofs`: see `lookup`.
        """
        answer = (await self.lookup(key, inspector=inspector, proofs=proofs)).answer
        if all_logs or not self.past:
            return answer
        return {**answer, "events": [e for e in answer["events"] if e["log"] == self.origin]}

    async def lookup(
        self, key: GS1Key, *, inspector: bool = False, proofs: bool = True
    ) -> CachedAnswer:
        """The cached answer while it is current (see history_cache), else a prebuilt one
        while it is current (see prebuilt), else a fresh one. Without `proofs` a fresh
        answer skips the inclusion proofs (hundreds of entries' paths through the tree,
        most of an inspector's origin query otherwise): its events say
        `"inclusionProof": null`, and it is not cached, so no caller is handed it."""
        checkpoint = await self._checkpoint()
        slot = (key.canonical(), inspector)
        cached = self.cache.get(slot)
        if cached is not None and await self._still_current(cached, checkpoint.size):
            return cached
        found = None
        if self._prebuilt and not inspector and prebuildable(key):
            async with self._pool.acquire() as conn:
                found = await read_prebuilt(conn, slot[0], checkpoint.size, self.cache.now())
        if found is None:
            found = await self.assemble(key, checkpoint, inspector=inspector, proofs=proofs)
            if not proofs:
                return found
        self.cache.put(found)
        return found

    async def newest_checkpoint(self) -> SignedCheckpoint:
        """The newest checkpoint lookups may use (cosigned by the quorum, with witnesses)."""
        return await self._reader.checkpoint()

    async def _checkpoint(self) -> SignedCheckpoint:
        """The newest checkpoint, read at most once per `checkpoint_max_age` seconds. A
        new one is signed only once per checkpoint interval anyway, and so a cached
        answer to a popular item costs no database round trip at all."""
        now = self.cache.now()
        if self._latest is not None and now - self._latest[0] < self._checkpoint_max_age:
            return self._latest[1]
        checkpoint = await self._reader.checkpoint()
        self._latest = (now, checkpoint)
        return checkpoint

    async def _still_current(self, cached: CachedAnswer, size: int) -> bool:
        """Only the current log grows: past shards are frozen, so what the answer drew
        from them stays right, and only new current-log events can change it."""
        if size <= cached.current_at:
            return True
        if cached.pending:
            return False  # events it counted as pending are now covered by a checkpoint
        async with self._pool.acquire() as conn:
            changed = await conn.fetchval(
                "SELECT EXISTS (SELECT 1 FROM event_keys WHERE key = ANY($1::text[])"
                " AND idx >= $2 AND role <> 'lotMember')"
                # A field erased since the walk began (traceledger/ops/redaction.py).
                " OR EXISTS (SELECT 1 FROM redactions WHERE entry IS NULL OR entry >= $2)",
                cached.keys,
                cached.indexed_below,
            )
        if changed:
            return False
        cached.current_at = size
        return True

    async def assemble(
        self,
        key: GS1Key,
        checkpoint: SignedCheckpoint,
        *,
        inspector: bool = False,
        proofs: bool = True,
    ) -> CachedAnswer:
        """A fresh answer, its proofs (unless not wanted) against `checkpoint` (the
        current log's)."""
        async with contextlib.AsyncExitStack() as stack:
            conn = await stack.enter_async_context(self._pool.acquire())
            # Read before the walk: every event below it is indexed and so seen by the walk.
            indexed_below = await conn.fetchval("SELECT next_idx FROM index_state")
            sources: list[tuple[str, Any]] = [(self.origin, conn)]
            sources.extend(
                [(s.origin, await stack.enter_async_context(s.pool.acquire())) for s in self.past]
            )
            gathered = Walk(sources)
            await gathered.run(key)
            signers = await Signers.load(sources, gathered.events.values())
        if not gathered.events:
            raise NotFoundError(f"nothing is recorded about {key.canonical()}")
        # Judging and the second walk are pure CPU work, sized by the walk's budget: off
        # the event loop, so a large history never holds up other requests.
        judged = await asyncio.to_thread(Judged.of, key, gathered, signers)
        shown = judged.shown(inspector)
        checkpoints = {self.origin: checkpoint}
        for shard in self.past:
            if any(i[0] == shard.origin for i in shown):
                checkpoints[shard.origin] = await shard.reader.checkpoint()
        sizes = {origin: cp.size for origin, cp in checkpoints.items()}
        covered = [i for i in shown if i[1] < sizes[i[0]] and gathered.events[i].leaf]
        proven = await self._proofs(covered, sizes) if proofs else {}
        salted = {i: s for i in covered if (s := gathered.events[i].salted) is not None}
        answer = await asyncio.to_thread(
            judged.answer,
            key,
            covered,
            proven,
            inspector,
            [o for o, _ in self._readers()],
            salted,
        )
        answer |= {
            "pending": len(shown) - len(covered),
            "treeSize": checkpoint.size,
            "checkpoint": checkpoint.note,
            # Who besides the log vouches for that checkpoint (c2sp.org/tlog-cosignature).
            "witnesses": witness_names(checkpoint.note),
        }
        if self._verifier_key is not None:
            answer["verifierKey"] = self._verifier_key
        # One checkpoint per log the events come from, the current log's first (its
        # checkpoint is also the top-level one, as before logs were sharded).
        keys = {self.origin: self._verifier_key}
        keys.update((s.origin, s.verifier.encode()) for s in self.past)
        answer["logs"] = [
            {"origin": name, "checkpoint": cp.note, "treeSize": cp.size}
            | ({"verifierKey": keys[name]} if keys[name] is not None else {})
            for name, cp in checkpoints.items()
        ]
        return CachedAnswer(
            (key.canonical(), inspector),
            list(gathered.seen),
            indexed_below,
            checkpoint.size,
            answer["pending"],
            len(answer["events"]),
            self.cache.now(),
            answer,
        )

    async def _proofs(
        self, covered: list[EventId], sizes: dict[str, int]
    ) -> dict[EventId, list[bytes]]:
        """Each covered event's inclusion proof, against its log's checkpoint size."""
        proofs: dict[EventId, list[bytes]] = {}
        for origin, reader in self._readers():
            if origin in sizes:
                mine = sorted(i[1] for i in covered if i[0] == origin)
                found = await reader.inclusion_proofs(mine, sizes[origin])
                proofs.update(((origin, i), p) for i, p in found.items())
        return proofs

    def _readers(self) -> list[tuple[str, LogReader]]:
        """Every log's reader, current first."""
        return [(self.origin, self._reader)] + [(s.origin, s.reader) for s in self.past]
