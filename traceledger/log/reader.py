"""Read side of the log: checkpoints, entries, tiles, entry bundles and proofs."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import asyncpg

from traceledger.errors import NotFoundError, RangeError
from traceledger.log.checkpoints import SignedCheckpoint, fetch_tiles, latest_checkpoint
from traceledger.tlog import merkle
from traceledger.tlog.leaf import Leaf
from traceledger.tlog.merkle import HASH_SIZE, Node
from traceledger.tlog.tiles import (
    MAX_LEVEL,
    TILE_HEIGHT,
    TILE_WIDTH,
    NodeCache,
    tile_width,
    tiles_for_nodes,
)


def redacted_sql(entry: str) -> str:
    """A select-list expression: the redacted fields of the entry whose index is
    `entry`.idx, as (field name bytes, digest) pairs (traceledger/ops/redaction.py).
    `entry` is a table alias our own code writes, never input."""
    return (
        "(SELECT array_agg(ARRAY[convert_to(r.field, 'UTF8'), r.digest])"  # noqa: S608
        f" FROM redactions r WHERE r.idx = {entry}.idx)"
    )


def redacted_digests(pairs: list[list[bytes]] | None) -> dict[str, bytes]:
    """What `redacted_sql` selected: field name -> the digest the log keeps of it."""
    return {bytes(name).decode(): bytes(digest) for name, digest in pairs or ()}


@dataclass(frozen=True, slots=True)
class StoredEntry:
    index: int
    leaf: bytes
    decoded: Leaf
    payload: bytes | None
    envelope: bytes | None
    salts: bytes | None = None  # version-2 leaves: the fields' salts (tlog/disclosure.py)
    redacted: dict[str, bytes] = field(default_factory=dict)  # field -> its kept digest


class LogReader:
    def __init__(self, pool: asyncpg.Pool, *, node_cache: int = 4096) -> None:
        self._pool = pool
        self._nodes = NodeCache(node_cache)

    async def checkpoint(self) -> SignedCheckpoint:
        async with self._pool.acquire() as conn:
            cp = await latest_checkpoint(conn)
        if cp is None:
            raise NotFoundError("the log has not signed its first checkpoint yet")
        return cp

    async def entry(self, index: int) -> StoredEntry:
        if index < 0:
            raise RangeError("index must not be negative")
        async with self._pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT e.leaf, e.payload, v.body AS envelope, e.salts,"  # noqa: S608
                f" {redacted_sql('e')} AS redacted FROM entries e"
                " LEFT JOIN envelopes v ON v.hash = e.envelope_hash WHERE e.idx = $1",
                index,
            )
        if row is None:
            raise NotFoundError(f"no entry at index {index}")
        leaf = bytes(row["leaf"])
        payload = None if row["payload"] is None else bytes(row["payload"])
        envelope = None if row["envelope"] is None else bytes(row["envelope"])
        salts = None if row["salts"] is None else bytes(row["salts"])
        redacted = redacted_digests(row["redacted"])
        decoded = Leaf.decode(leaf, index=index)
        return StoredEntry(index, leaf, decoded, payload, envelope, salts, redacted)

    async def inclusion_proof(self, index: int, size: int) -> list[bytes]:
        await self._check_size(size)
        if not 0 <= index < size:
            raise RangeError(f"index {index} is not in a tree of size {size}")
        return await self._proof(merkle.inclusion_ranges(index, size), size)

    async def inclusion_proofs(self, indexes: list[int], size: int) -> dict[int, list[bytes]]:
        """Proofs for many entries against one tree size, from one tile fetch."""
        if any(not 0 <= i < size for i in indexes):
            raise RangeError(f"an index is not in a tree of size {size}")
        batch = merkle.InclusionBatch(indexes, size)
        return batch.proofs(await self._node_source(batch.nodes(), size))

    async def consistency_proof(self, first: int, second: int) -> list[bytes]:
        await self._check_size(second)
        if not 0 <= first <= second:
            raise RangeError(f"first ({first}) must be between 0 and second ({second})")
        return await self._proof(merkle.consistency_ranges(first, second), second)

    async def root_at(self, size: int) -> bytes:
        """Root hash of the tree of any integrated size (proofs are against such roots)."""
        await self._check_size(size)
        if size == 0:
            return merkle.EMPTY_ROOT
        (root,) = await self._proof([(0, size)], size)
        return root

    async def tile(self, level: int, index: int, width: int) -> bytes:
        if not 0 <= level <= MAX_LEVEL:
            raise RangeError(f"tile level {level} must be 0..{MAX_LEVEL}")
        cp = await self.checkpoint()
        if tile_width(level, cp.size, index) < width:
            raise NotFoundError(f"tile {level}/{index} of width {width} is not in the tree yet")
        async with self._pool.acquire() as conn:
            data = await conn.fetchval(
                "SELECT hashes FROM tiles WHERE level = $1 AND idx = $2", level, index
            )
        if data is None or len(data) < width * merkle.HASH_SIZE:
            raise NotFoundError(f"tile {level}/{index} is not stored")
        return bytes(data[: width * merkle.HASH_SIZE])

    async def entry_bundle(self, index: int, width: int) -> bytes:
        cp = await self.checkpoint()
        if tile_width(0, cp.size, index) < width:
            raise NotFoundError(f"entry bundle {index} of width {width} is not in the tree yet")
        start = index * TILE_WIDTH
        async with self._pool.acquire() as conn:
            rows = await conn.fetch(
                "SELECT leaf FROM entries WHERE idx >= $1 AND idx < $2 ORDER BY idx",
                start,
                start + width,
            )
        if len(rows) != width:
            raise NotFoundError(f"entry bundle {index} is incomplete in the store")
        out = bytearray()
        for row in rows:
            leaf = bytes(row["leaf"])
            out += len(leaf).to_bytes(2, "big") + leaf
        return bytes(out)

    async def _check_size(self, size: int) -> None:
        cp = await self.checkpoint()
        if not 0 <= size <= cp.size:
            raise RangeError(f"tree size {size} is beyond the latest checkpoint ({cp.size})")

    async def _node_source(self, nodes: Iterable[Node], size: int) -> Callable[[int, int], bytes]:
        """node(level, index) for each of `nodes` of the tree of `size`, fetching only
        the tiles the cache does not hold wide enough for that size."""
        wanted = tiles_for_nodes(nodes)
        # Hold the cached tiles first: computing the others may evict some of them.
        held = {
            t: rows
            for t in wanted
            if (rows := self._nodes.cached(t, tile_width(t[0], size, t[1]))) is not None
        }
        missing = wanted - held.keys()
        if missing:
            async with self._pool.acquire() as conn:
                fetched = await fetch_tiles(conn, missing)
            held.update({t: self._nodes.layers(t, data) for t, data in fetched.items()})

        def node(level: int, index: int) -> bytes:
            sub = level % TILE_HEIGHT
            rows = held.get((level // TILE_HEIGHT, index >> (TILE_HEIGHT - sub)))
            pos = (index % (TILE_WIDTH >> sub)) * HASH_SIZE
            if rows is None or len(rows[sub]) < pos + HASH_SIZE:
                raise RangeError(f"node ({level}, {index}) is not in the integrated tree")
            return rows[sub][pos : pos + HASH_SIZE]

        return node

    async def _proof(self, ranges: list[tuple[int, int]], size: int) -> list[bytes]:
        node = await self._node_source(
            [n for a, b in ranges for n in merkle.perfect_nodes(a, b)], size
        )
        return [merkle.range_hash(a, b, node) for a, b in ranges]
