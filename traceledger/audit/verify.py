"""Audit the whole stored log: chain, payloads, tiles and every archived checkpoint.

Nothing derived is trusted: leaf hashes, the hash chain, tiles and roots are recomputed
from the stored leaf bytes, and each archived checkpoint must carry a valid signature
and match the recomputed root at its size (which also makes them mutually consistent).
The first discrepancy is reported with the index it concerns.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from traceledger.errors import IntegrityError, NoteError
from traceledger.log.checkpoints import fetch_tiles
from traceledger.store.conn import Conn
from traceledger.tlog import merkle
from traceledger.tlog.checkpoint import open_checkpoint
from traceledger.tlog.leaf import GENESIS_HASH, Leaf, sha256
from traceledger.tlog.note import Verifier, key_hash
from traceledger.tlog.tiles import (
    FULL_TILE_BYTES,
    TILE_HEIGHT,
    TILE_WIDTH,
    TileKey,
    extend,
    tile_width,
)

PAGE = 64 * TILE_WIDTH

Progress = Callable[[int, int], None]


@dataclass(frozen=True)
class VerifyReport:
    entries: int
    checkpoints: int
    envelopes: int
    redacted: int
    seconds: float


async def stored_verifier(conn: Conn) -> Verifier:
    row = await conn.fetchrow("SELECT origin, public_key FROM log_meta")
    if row is None:
        raise IntegrityError(None, "log_meta is missing: this database holds no log")
    public = bytes(row["public_key"])
    return Verifier(
        row["origin"], key_hash(row["origin"], public), Ed25519PublicKey.from_public_bytes(public)
    )


async def verify_log(
    pool: asyncpg.Pool,
    *,
    trusted: Verifier | None = None,
    progress: Progress | None = None,
) -> VerifyReport:
    """Raise IntegrityError naming the first bad index; return counts when all is well."""
    started = time.perf_counter()
    async with pool.acquire() as conn:
        verifier = await stored_verifier(conn)
        if trusted is not None and trusted.encode() != verifier.encode():
            raise IntegrityError(
                None, f"the log's stored key {verifier.encode()} is not the trusted key"
            )
        checkpoints = await _verify_checkpoints(conn, verifier)
        envelopes = await _verify_envelopes(conn)
        head = await conn.fetchrow("SELECT size, last_hash FROM log_head")
        if head is None:
            raise IntegrityError(None, "log_head is missing")
        total = int(head["size"])
        max_tiled = await conn.fetchval("SELECT coalesce(max(size), 0) FROM checkpoints")
        walker = _Walker(conn, checkpoints, max_tiled)
        while True:
            rows = await conn.fetch(
                "SELECT idx, identity, leaf, payload, envelope_hash FROM entries"
                " WHERE idx >= $1 ORDER BY idx LIMIT $2",
                walker.size,
                PAGE,
            )
            if not rows:
                break
            await walker.page(rows)
            if progress is not None:
                progress(walker.size, total)
        await walker.finish()
        if walker.size != total:
            missing = min(walker.size, total)
            raise IntegrityError(
                missing, f"the head says {total} entries but {walker.size} are stored"
            )
        if walker.prev != bytes(head["last_hash"]):
            raise IntegrityError(
                total - 1 if total else None, "head hash does not match the last leaf"
            )
    return VerifyReport(
        walker.size, len(checkpoints), envelopes, walker.redacted, time.perf_counter() - started
    )


async def _verify_checkpoints(conn: Conn, verifier: Verifier) -> dict[int, bytes]:
    roots: dict[int, bytes] = {}
    for row in await conn.fetch("SELECT size, root_hash, note FROM checkpoints ORDER BY size"):
        size = row["size"]
        try:
            cp = open_checkpoint(row["note"], verifier, verifier.name)
        except NoteError as exc:
            raise IntegrityError(None, f"checkpoint of size {size}: {exc}") from exc
        if cp.size != size or cp.root_hash != bytes(row["root_hash"]):
            raise IntegrityError(None, f"checkpoint of size {size}: columns differ from the note")
        roots[size] = cp.root_hash
    if 0 in roots and roots[0] != merkle.EMPTY_ROOT:
        raise IntegrityError(None, "checkpoint of size 0 has a non-empty root")
    return roots


async def _verify_envelopes(conn: Conn) -> int:
    count = 0
    async with conn.transaction():
        async for row in conn.cursor("SELECT hash, body FROM envelopes"):
            if row["body"] is not None and sha256(row["body"]) != bytes(row["hash"]):
                raise IntegrityError(None, f"envelope {bytes(row['hash']).hex()} was altered")
            count += 1
    return count


class _Walker:
    """Streams entries in index order, re-deriving everything the log committed to."""

    def __init__(self, conn: Conn, checkpoints: dict[int, bytes], max_tiled: int) -> None:
        self.conn = conn
        self.checkpoints = checkpoints
        self.max_tiled = max_tiled
        self.size = 0
        self.prev = GENESIS_HASH
        self.redacted = 0
        self.compact = merkle.CompactRange()
        self.edge: dict[TileKey, bytes] = {}
        if 0 in checkpoints and checkpoints[0] != merkle.EMPTY_ROOT:
            raise IntegrityError(None, "checkpoint of size 0 is wrong")

    async def page(self, rows: list[asyncpg.Record]) -> None:
        hashes: list[bytes] = []
        for row in rows:
            i = self.size
            if row["idx"] != i:
                raise IntegrityError(i, f"entry is missing (the next stored index is {row['idx']})")
            leaf_bytes = bytes(row["leaf"])
            leaf = Leaf.decode(leaf_bytes, index=i)
            if leaf.index != i:
                raise IntegrityError(i, f"leaf says index {leaf.index}: rows were moved")
            if leaf.prev_hash != self.prev:
                raise IntegrityError(
                    i - 1 if i else i, "the next leaf's chain link does not match this leaf"
                )
            if bytes(row["identity"]) != leaf.identity:
                raise IntegrityError(i, "identity column differs from the leaf")
            payload = row["payload"]
            if payload is None:
                self.redacted += 1
            elif sha256(payload) != leaf.payload_hash:
                raise IntegrityError(i, "payload was altered")
            env = row["envelope_hash"]
            if (None if env is None else bytes(env)) != leaf.envelope_hash:
                raise IntegrityError(i, "envelope reference differs from the leaf")
            h = merkle.leaf_hash(leaf_bytes)
            self.prev = h
            hashes.append(h)
            self.compact.append(h)
            self.size += 1
            root = self.checkpoints.get(self.size)
            if root is not None and root != self.compact.root():
                raise IntegrityError(
                    i, f"checkpoint of size {self.size} does not match the entries"
                )
        start = self.size - len(hashes)
        changed, _ = extend(self.edge, start, hashes)
        full = {k: v for k, v in changed.items() if len(v) == FULL_TILE_BYTES}
        await self._compare_tiles(full)
        self.edge = {**self.edge, **changed}
        self.edge = {k: v for k, v in self.edge.items() if len(v) < FULL_TILE_BYTES}

    async def finish(self) -> None:
        """Compare the right-edge tiles, and make sure no checkpoint outruns the entries."""
        await self._compare_tiles(self.edge)
        beyond = [s for s in self.checkpoints if s > self.size]
        if beyond:
            raise IntegrityError(
                self.size, f"checkpoint of size {max(beyond)} covers entries that are missing"
            )

    async def _compare_tiles(self, expected: dict[TileKey, bytes]) -> None:
        # Tiles exist only up to the last signed checkpoint; compare that much.
        stored = await fetch_tiles(self.conn, set(expected))
        for key in sorted(expected):
            level, index = key
            want = expected[key]
            have = stored.get(key, b"")
            width = tile_width(level, self.max_tiled, index)
            if len(have) != width * 32 or have != want[: width * 32]:
                offset = next(
                    (
                        o
                        for o in range(0, max(len(have), width * 32), 32)
                        if have[o : o + 32] != want[o : o + 32]
                    ),
                    0,
                )
                first_leaf = (index * TILE_WIDTH + offset // 32) << (TILE_HEIGHT * level)
                raise IntegrityError(
                    first_leaf, f"stored tile {level}/{index} differs from the entries"
                )
