"""Integration: fold sequenced leaves into Merkle tiles and sign a checkpoint.

One integrator works at a time across all processes (a session advisory lock). Each
round reads the leaves past the last checkpoint, checks they continue the hash chain,
extends the tiles, proves the new tree consistent with the last signed checkpoint
and, in the same transaction, stores tiles and the new signed checkpoint. A checkpoint
that contradicts an earlier one is never signed.

Every committed checkpoint is also written to the published-checkpoint file outside the
database (traceledger/published.py); a tree that does not extend that file's checkpoint
(a restored old backup) is neither signed nor appended to.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from pathlib import Path

import asyncpg

from traceledger.errors import (
    ForkRefusedError,
    InconsistentLogError,
    IntegrityError,
    TraceledgerError,
)
from traceledger.log.checkpoints import SignedCheckpoint, fetch_tiles, latest_checkpoint
from traceledger.log.published import Published, PublishedCheckpoint
from traceledger.store.conn import Conn
from traceledger.store.leader import LeaderTask
from traceledger.store.locks import Lock
from traceledger.tlog import merkle
from traceledger.tlog.checkpoint import Checkpoint, sign_checkpoint
from traceledger.tlog.leaf import GENESIS_HASH, commitments_at
from traceledger.tlog.note import Signer
from traceledger.tlog.tiles import TileKey, extend, node_from_tiles, tiles_for_nodes

log = logging.getLogger(__name__)

_YIELD_EVERY = 512  # leaves checked between pauses for the event loop (~5 ms of work)


async def right_edge(conn: Conn) -> dict[TileKey, bytes]:
    rows = await conn.fetch(
        "SELECT DISTINCT ON (level) level, idx, hashes FROM tiles ORDER BY level, idx DESC"
    )
    return {(r["level"], r["idx"]): bytes(r["hashes"]) for r in rows}


class Integrator:
    def __init__(
        self,
        pool: asyncpg.Pool,
        signer: Signer,
        *,
        interval: float = 1.0,
        chunk: int = 65_536,
        published: Path | None = None,
    ) -> None:
        self._pool = pool
        self._signer = signer
        self._origin = signer.name
        self._chunk = chunk
        self.published = (
            None if published is None else PublishedCheckpoint(published, signer.verifier)
        )
        # Set while the tree contradicts the published checkpoint; appends are refused then.
        self.fork_refusal: ForkRefusedError | None = None
        self.task = LeaderTask(pool, "integrator", Lock.INTEGRATOR, interval, self.integrate_once)

    @property
    def last_error(self) -> Exception | None:
        return self.task.last_error

    def check_appendable(self) -> None:
        """Raise while the tree contradicts the published checkpoint (the sequencer's gate)."""
        if (refusal := self.fork_refusal) is not None:
            raise type(refusal)(
                str(refusal), published_size=refusal.published_size, tree_size=refusal.tree_size
            )

    async def check_published(self) -> None:
        """Compare the database with the published checkpoint without signing anything.

        Run at start, before the sequencer takes appends; sets `fork_refusal`. Other
        errors are left to the integration rounds, which report them.
        """
        with contextlib.suppress(TraceledgerError):
            async with self._pool.acquire() as conn, conn.transaction(readonly=True):
                await self._integrate(conn, sign=False)

    async def integrate_once(self) -> bool:
        """Integrate up to one chunk of new leaves; True if more may be waiting."""
        async with self._pool.acquire() as conn, conn.transaction():
            more, note = await self._integrate(conn, sign=True)
        if note is not None and self.published is not None:
            # Only now, after the commit: a checkpoint is published once committed (it can
            # be served from then on). A crash between the commit and this write leaves the
            # file one checkpoint behind a database that extends it, which passes the check,
            # and the next round catches the file up. Writing first instead could leave a
            # file naming a checkpoint the database never stored.
            self.published.write(note)
        return more

    async def _integrate(self, conn: Conn, *, sign: bool) -> tuple[bool, str | None]:
        """One round in the caller's transaction: whether more leaves may be waiting, and a
        checkpoint note to write to the published file (None: it is up to date)."""
        published = self.published.read() if self.published is not None else None
        last = await latest_checkpoint(conn)
        size = last.size if last else 0
        self.task.position = size  # the first entry this round folds in
        # A checkpoint below the published size could not be checked against it, so
        # fold at least that far in one round (only after a restore is this bigger).
        limit = max(self._chunk, published.size - size) if published else self._chunk
        rows = await conn.fetch(
            "SELECT idx, leaf FROM entries WHERE idx >= $1 ORDER BY idx LIMIT $2",
            size,
            limit,
        )
        if last is not None and not rows:
            if published is not None:
                await self._check_published(conn, published, last.size, last.root_hash, {})
            self.fork_refusal = None
            stale = published is None or published.size < last.size
            return False, last.note if stale else None
        prev = GENESIS_HASH
        if size and rows:
            prev_leaf = await conn.fetchval("SELECT leaf FROM entries WHERE idx = $1", size - 1)
            if prev_leaf is None:
                raise IntegrityError(size - 1, "entry is missing")
            prev = merkle.leaf_hash(prev_leaf)
        hashes = []
        for expected, row in enumerate(rows, start=size):
            if expected % _YIELD_EVERY == 0:
                await asyncio.sleep(0)  # thousands of leaves: let requests in between
            leaf_bytes = bytes(row["leaf"])
            if row["idx"] != expected:
                raise IntegrityError(expected, "entry is missing")
            # Read by slicing the one canonical layout, as the verifier does (any other
            # bytes go through Leaf.decode): decoding each leaf cost ~20 us of the loop.
            if commitments_at(leaf_bytes, expected)[0] != prev:
                raise IntegrityError(expected, "leaf does not continue the hash chain")
            prev = merkle.leaf_hash(leaf_bytes)
            hashes.append(prev)
        edge = await right_edge(conn)
        changed, new_size = extend(edge, size, hashes)
        tiles = {**edge, **changed}
        root = (
            merkle.range_hash(0, new_size, lambda lv, ix: node_from_tiles(tiles, lv, ix))
            if new_size
            else merkle.EMPTY_ROOT
        )
        if last is not None:
            await self._check_consistent(conn, last, new_size, root, tiles)
        if published is not None:
            await self._check_published(conn, published, new_size, root, tiles)
        self.fork_refusal = None
        if not sign:
            return False, None
        if changed:
            await conn.executemany(
                "INSERT INTO tiles (level, idx, hashes) VALUES ($1, $2, $3)"
                " ON CONFLICT (level, idx) DO UPDATE SET hashes = EXCLUDED.hashes",
                [(lv, ix, data) for (lv, ix), data in changed.items()],
            )
        note = sign_checkpoint(Checkpoint(self._origin, new_size, root), self._signer)
        await conn.execute(
            "INSERT INTO checkpoints (size, root_hash, note) VALUES ($1, $2, $3)",
            new_size,
            root,
            note,
        )
        log.debug("signed checkpoint %d", new_size)
        return len(rows) == limit, note

    async def _check_published(
        self,
        conn: Conn,
        published: Published,
        size: int,
        root: bytes,
        fresh: dict[TileKey, bytes],
    ) -> None:
        """Refuse (and fence appends) unless the tree extends the published checkpoint."""
        assert self.published is not None
        if size < published.size:
            self.fork_refusal = self.published.behind(published, size)
            raise self.fork_refusal
        try:
            as_signed = SignedCheckpoint(published.size, published.root_hash, published.note)
            await self._check_consistent(conn, as_signed, size, root, fresh)
        except InconsistentLogError as exc:
            self.fork_refusal = self.published.diverged(published, size, str(exc.__cause__))
            raise self.fork_refusal from exc

    async def _check_consistent(
        self,
        conn: Conn,
        last: SignedCheckpoint,
        new_size: int,
        new_root: bytes,
        fresh: dict[TileKey, bytes],
    ) -> None:
        nodes = [
            n
            for a, b in merkle.consistency_ranges(last.size, new_size)
            for n in merkle.perfect_nodes(a, b)
        ]
        stored = await fetch_tiles(conn, tiles_for_nodes(nodes) - fresh.keys())
        tiles = {**stored, **fresh}
        try:
            proof = merkle.consistency_proof(
                last.size, new_size, lambda lv, ix: node_from_tiles(tiles, lv, ix)
            )
            merkle.verify_consistency(last.size, new_size, last.root_hash, new_root, proof)
        except Exception as exc:
            raise InconsistentLogError(
                f"tree of size {new_size} is not consistent with the signed checkpoint "
                f"of size {last.size}: {exc}"
            ) from exc
