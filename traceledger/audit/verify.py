"""Audit the whole stored log: chain, payloads, tiles and every archived checkpoint (the
event-key index, rebuilt from the log, is audit/index_check.py).

Nothing derived is trusted: leaf hashes, the hash chain, tiles and roots are recomputed
from the stored leaf bytes, and each archived checkpoint must carry a valid signature
and match the recomputed root at its size (which also makes them mutually consistent).
The first discrepancy is reported with the index it concerns.
"""

from __future__ import annotations

import hashlib
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from traceledger.audit.pages import Pages, workers_for
from traceledger.errors import IntegrityError, NoteError
from traceledger.log.checkpoints import fetch_tiles
from traceledger.log.reader import redacted_digests, redacted_sql
from traceledger.standards.jsontext import loads
from traceledger.store.conn import Conn
from traceledger.tlog import merkle
from traceledger.tlog.checkpoint import open_checkpoint
from traceledger.tlog.disclosure import event_commitment
from traceledger.tlog.leaf import (
    DISCLOSURE_VERSION,
    GENESIS_HASH,
    commitments_at,
    is_leaf_at,
    sha256,
)
from traceledger.tlog.note import Verifier, key_hash
from traceledger.tlog.tiles import (
    FULL_TILE_BYTES,
    TILE_HEIGHT,
    TILE_WIDTH,
    TileKey,
    extend,
    node_from_tiles,
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
    workers: int | None = None,
    page: int = PAGE,
) -> VerifyReport:
    """Raise IntegrityError naming the first bad index; return counts when all is well.

    Each page of entries is read and checked against its leaves by a worker process on
    its own connection (`workers`, one per core by default; 0, or a pool whose DSN is
    unknown, checks them here) while this process folds the leaf hashes into tiles and
    roots. `page` (a power of two, at least a tile wide) is for tests."""
    if page < TILE_WIDTH or page & (page - 1):
        raise ValueError(f"page must be a power of two of at least {TILE_WIDTH}")
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
        cpu = workers_for(pool, total, page, workers, __name__)
        async with pool.acquire() as reader, cpu:
            pages = Pages(reader, pool, cpu, page, checked_page)
            await _walk_pages(walker, pages, total, progress)
        await walker.finish()
        stored = await conn.fetchval("SELECT count(*) FROM entries")
        if walker.size != total or stored != total:
            raise IntegrityError(
                min(walker.size, total), f"the head says {total} entries but {stored} are stored"
            )
        if walker.prev != bytes(head["last_hash"]):
            raise IntegrityError(
                total - 1 if total else None, "head hash does not match the last leaf"
            )
    return VerifyReport(
        walker.size, len(checkpoints), envelopes, walker.redacted, time.perf_counter() - started
    )


async def _walk_pages(
    walker: _Walker, pages: Pages[CheckedPage], total: int, progress: Progress | None
) -> None:
    try:
        for _ in range(0, total, pages.size):
            await walker.page(await pages.next())
            if progress is not None:
                progress(walker.size, total)
        await walker.page(await pages.next())  # entries past the head, if any
    finally:
        await pages.close()


@dataclass(frozen=True, slots=True)
class CheckedPage:
    """A page of entries checked against their leaves and the chain within it: their
    leaf hashes, how many are redacted, or the first discrepancy (index, what) and the
    hashes before. Whether the page links to the one before is for the walk to check
    (`first_link`: what its first entry names as the leaf before)."""

    start: int
    hashes: list[bytes]
    redacted: int
    first_link: bytes | None = None
    problem: tuple[int | None, str] | None = None
    # The root of each whole tile of the hashes (pages start at a tile boundary).
    tile_roots: list[bytes] | None = None


def check_entries(
    rows: list[Sequence[Any]], start: int, disclosed: Mapping[int, bytes]
) -> CheckedPage:
    """Check each stored entry from `start` (_page_rows' columns) against its leaf and the
    chain; `disclosed`: the commitment of each version-2 entry, by index. In a worker
    process: a pure function of its arguments. (The verifier's cost is this times the
    log's size: a page of canonical leaves is checked a whole leaf at a time, and only
    a page with something else is read field by field, to name what.)"""
    canonical = _canonical_page(rows, start, disclosed)
    if canonical is None:
        return _check_fields(rows, start, disclosed)
    first_link, hashes = canonical
    return CheckedPage(start, hashes, 0, first_link, tile_roots=_tile_roots(hashes))


def _canonical_page(
    rows: list[Sequence[Any]], start: int, disclosed: Mapping[int, bytes]
) -> tuple[bytes, list[bytes]] | None:
    """(the first entry's link, every leaf hash) when each entry is in its place, not
    redacted, and its leaf is exactly the canonical one for its columns and the chain;
    None otherwise."""
    if not rows or rows[0][0] != start:
        return None
    first_link = prev = commitments_at(rows[0][2], start)[0]
    hashes: list[bytes] = []
    hash_of = hashlib.sha256  # (the hot loop: no call of our own around it)
    for i, (idx, identity, leaf_bytes, payload, env, _, _) in enumerate(rows, start):
        if idx != i or payload is None:
            return None
        v1 = leaf_bytes[1:2] != _V2
        committed = hash_of(payload).digest() if v1 else disclosed.get(idx)
        if committed is None or not is_leaf_at(leaf_bytes, i, prev, identity, committed, env):
            return None
        prev = hash_of(b"\x00" + leaf_bytes).digest()  # RFC 9162 leaf hash
        hashes.append(prev)
    return first_link, hashes


def _check_fields(
    rows: list[Sequence[Any]], start: int, disclosed: Mapping[int, bytes]
) -> CheckedPage:
    """check_entries field by field: the first entry that is wrong, and what is."""
    hashes: list[bytes] = []
    redacted, i = 0, start
    first_link = prev = None
    for idx, identity, leaf_bytes, payload, env, _, _ in rows:
        if idx != i:
            missing = f"entry is missing (the next stored index is {idx})"
            return CheckedPage(start, hashes, redacted, first_link, (i, missing))
        linked, committed_identity, committed_payload, committed_env = commitments_at(leaf_bytes, i)
        payload_hash = _payload_commitment(idx, leaf_bytes, payload, disclosed)
        if prev is None:
            first_link = linked
        problem: tuple[int | None, str] | None = None
        if prev is not None and linked != prev:
            problem = (i - 1, "the next leaf's chain link does not match this leaf")
        elif identity != committed_identity:
            problem = (i, "identity column differs from the leaf")
        elif payload_hash is not None and payload_hash != committed_payload:
            problem = (i, "payload was altered")
        elif env != committed_env:
            problem = (i, "envelope reference differs from the leaf")
        if problem is not None:
            return CheckedPage(start, hashes, redacted, first_link, problem)
        redacted += payload_hash is None
        prev = sha256(b"\x00" + leaf_bytes)  # RFC 9162 leaf hash
        hashes.append(prev)
        i += 1
    return CheckedPage(start, hashes, redacted, first_link, tile_roots=_tile_roots(hashes))


def _payload_commitment(
    idx: int, leaf_bytes: bytes, payload: bytes | None, disclosed: Mapping[int, bytes]
) -> bytes | None:
    """What the entry's leaf should commit to for its stored payload; None if redacted."""
    if payload is None:
        return None
    if leaf_bytes[1:2] == _V2:
        return disclosed.get(idx)  # none if redacted after the page was read
    return sha256(payload)


_V2 = bytes((DISCLOSURE_VERSION,))  # a leaf's second byte (after the array's)


def _tile_roots(hashes: list[bytes]) -> list[bytes]:
    return [
        merkle.unchecked_root(hashes[i : i + TILE_WIDTH])
        for i in range(0, len(hashes) - TILE_WIDTH + 1, TILE_WIDTH)
    ]


async def checked_page(conn: Conn, start: int, size: int) -> CheckedPage:
    """The page [start, start + size) read and checked (a page's work, see Pages)."""
    rows, disclosed = await _page_rows(conn, start, size)
    return check_entries(rows, start, disclosed)


async def _page_rows(
    conn: Conn, start: int, size: int
) -> tuple[list[Sequence[Any]], dict[int, bytes]]:
    """Entries [start, start + size) as (idx, identity, leaf, payload, envelope_hash,
    salts, redacted fields), and each version-2 entry's commitment to salted field
    digests, recomputed from the stored event, its salts and its redacted fields'
    digests. A version-1 payload is hashed by the checker: cheaper there than
    pg_catalog.sha256 on the server (measured: a fifth less CPU in all); the records
    are used as fetched (building a tuple a row cost a tenth of the time)."""
    rows: list[Any] = await conn.fetch(  # Records: sequences of the columns
        "SELECT idx, identity, leaf, payload, envelope_hash, salts,"  # noqa: S608 - ours
        f" CASE WHEN salts IS NOT NULL THEN {redacted_sql('e')} END"
        " FROM entries e WHERE idx >= $1 AND idx < $2 ORDER BY idx",
        start,
        start + size,
    )
    disclosed = {
        r[0]: _commitment(r[3], r[5], r[6]) for r in rows if r[3] is not None and r[2][1:2] == _V2
    }
    return rows, disclosed


def _commitment(payload: bytes, salts: bytes | None, redacted: Any) -> bytes:
    """A version-2 entry's commitment as stored; garbage (never a match) when the stored
    event is no object or the salts do not fit it, so the walk reports the index."""
    unfit = b"salts do not fit the stored event"
    try:
        event = loads(payload)  # json.loads, faster for ordinary events
    except ValueError:
        return unfit
    if not isinstance(event, dict):
        return unfit
    try:
        return event_commitment(event, salts or b"", redacted_digests(redacted))
    except ValueError:
        return unfit


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

    async def page(self, checked: CheckedPage) -> None:
        start, hashes = self.size, checked.hashes
        if checked.start != start and (hashes or checked.problem):
            # The pages before ended short: entries are missing from `start` on.
            raise IntegrityError(start, "entry is missing (a later page has entries)")
        if checked.first_link not in (None, self.prev):
            raise IntegrityError(
                max(start - 1, 0), "the next leaf's chain link does not match this leaf"
            )
        if checked.problem is not None:
            raise IntegrityError(*checked.problem)
        if not hashes:
            return
        self.size += len(hashes)
        self.prev = hashes[-1]
        self.redacted += checked.redacted
        changed, _ = extend(self.edge, start, hashes, checked.tile_roots)
        self._check_checkpoints(start, hashes, changed)
        full = {k: v for k, v in changed.items() if len(v) == FULL_TILE_BYTES}
        await self._compare_tiles(full)
        self.edge = {**self.edge, **changed}
        self.edge = {k: v for k, v in self.edge.items() if len(v) < FULL_TILE_BYTES}

    def _check_checkpoints(
        self, start: int, hashes: list[bytes], tiles: dict[TileKey, bytes]
    ) -> None:
        """Every checkpoint whose size falls in this page must have the page's root there.

        Pages start at multiples of PAGE (a power of two), so [start, size) is a Merkle
        subtree: the compact range of [0, start) plus the perfect nodes of [start, size)
        give the root. Those nodes come from the page's just-computed tiles (a few
        hundred hashes a checkpoint), or, when checkpoints are dense, from every level of
        the page computed once; then the page joins the compact range as whole subtrees."""
        end = start + len(hashes)
        sizes = sorted(s for s in self.checkpoints if start < s <= end)
        node = _node_source(start, hashes, tiles, dense=len(sizes) * TILE_WIDTH > len(hashes))
        for size in sizes:
            root = merkle.CompactRange(start, self.compact.hashes)
            for level, index in merkle.perfect_nodes(start, size):
                root.append_subtree(level, node(level, index))
            if root.root() != self.checkpoints[size]:
                raise IntegrityError(
                    size - 1, f"checkpoint of size {size} does not match the entries"
                )
        for level, index in merkle.perfect_nodes(start, end):
            self.compact.append_subtree(level, node(level, index))

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


def _node_source(
    start: int, hashes: list[bytes], tiles: dict[TileKey, bytes], *, dense: bool
) -> Callable[[int, int], bytes]:
    """Hashes of perfect nodes inside the page starting at `start`, by (level, index)."""
    if not dense:
        return lambda level, index: node_from_tiles(tiles, level, index)
    levels = [hashes]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append(
            [merkle.node_hash(below[j], below[j + 1]) for j in range(0, len(below) - 1, 2)]
        )
    return lambda level, index: levels[level][index - (start >> level)]
