"""C2SP tlog-tiles: tile coordinates, paths, and folding new leaves into stored tiles.

A tile at level L holds up to 256 hashes of perfect subtrees of height 8L. Any perfect
node of height k lives inside one tile of level k // 8 as 2**(k % 8) consecutive hashes,
so a node hash is the Merkle root of that slice.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass

from traceledger.errors import InconsistentLogError, RangeError
from traceledger.tlog.merkle import HASH_SIZE, Node, node_hash, root_from_leaf_hashes

TILE_HEIGHT = 8
TILE_WIDTH = 1 << TILE_HEIGHT
FULL_TILE_BYTES = TILE_WIDTH * HASH_SIZE
MAX_LEVEL = 63

TileKey = tuple[int, int]  # (level, index)


@dataclass(frozen=True, slots=True)
class NodeSlot:
    """Where a perfect node's hash is derived from: a slice of one tile."""

    tile: TileKey
    offset: int
    count: int


def node_slot(level: int, index: int) -> NodeSlot:
    tile_level, sub = divmod(level, TILE_HEIGHT)
    first = index << sub
    return NodeSlot((tile_level, first >> TILE_HEIGHT), first % TILE_WIDTH, 1 << sub)


def tiles_for_nodes(nodes: Iterable[Node]) -> set[TileKey]:
    # node_slot(level, index).tile, inlined: proofs ask this for thousands of nodes.
    return {(lv // TILE_HEIGHT, ix >> (TILE_HEIGHT - lv % TILE_HEIGHT)) for lv, ix in nodes}


def node_from_tiles(tiles: Mapping[TileKey, bytes], level: int, index: int) -> bytes:
    slot = node_slot(level, index)
    data = tiles.get(slot.tile)
    end = (slot.offset + slot.count) * HASH_SIZE
    if data is None or len(data) < end:
        raise RangeError(f"node ({level}, {index}) is not in the integrated tree")
    chunk = data[slot.offset * HASH_SIZE : end]
    if slot.count == 1:
        return bytes(chunk)
    return root_from_leaf_hashes(
        [chunk[i : i + HASH_SIZE] for i in range(0, len(chunk), HASH_SIZE)]
    )


class NodeCache:
    """Every node hash inside a tile, computed once per tile and remembered.

    A C2SP tile stores only the bottom row of its 8 levels; a proof needs nodes from the
    rows in between (a leaf's sibling subtree of height 7 is the root of 128 hashes).
    Computing all 255 inner nodes of a full tile costs about as much as one proof needs
    anyway, and a full tile never changes, so the cache keeps whole tiles (16 KiB each)
    and later proofs through the same tile cost no hashing. Partial tiles at the right
    edge are kept too, and recomputed when they have grown.
    """

    def __init__(self, capacity: int = 4096) -> None:
        self._capacity = capacity
        self._tiles: OrderedDict[TileKey, list[bytes]] = OrderedDict()

    def cached(self, tile: TileKey, width: int = TILE_WIDTH) -> list[bytes] | None:
        """The tile's rows if remembered with at least `width` hashes (a partial tile is
        a prefix of every later version, so a wider one serves a smaller tree too)."""
        found = self._tiles.get(tile)
        if found is None or len(found[0]) < width * HASH_SIZE:
            return None
        self._tiles.move_to_end(tile)
        return found

    def layers(self, tile: TileKey, data: bytes) -> list[bytes]:
        """The tile's rows of node hashes, bottom (the stored hashes) first."""
        found = self._tiles.get(tile)
        # Recompute a partial tile only when it has grown.
        if found is None or len(found[0]) != len(data):
            found = tile_layers(data)
            self._tiles[tile] = found
            if len(self._tiles) > self._capacity:
                self._tiles.popitem(last=False)
        self._tiles.move_to_end(tile)
        return found


def tile_layers(data: bytes) -> list[bytes]:
    """Rows 0..8 of the perfect nodes inside one tile's hashes (complete pairs only)."""
    rows = [bytes(data)]
    for _ in range(TILE_HEIGHT):
        below = rows[-1]
        pairs = len(below) // (2 * HASH_SIZE)
        rows.append(
            b"".join(
                node_hash(below[i : i + HASH_SIZE], below[i + HASH_SIZE : i + 2 * HASH_SIZE])
                for i in range(0, pairs * 2 * HASH_SIZE, 2 * HASH_SIZE)
            )
        )
    return rows


def tile_width(level: int, tree_size: int, index: int) -> int:
    """Hashes tile (level, index) holds in a tree of `tree_size`: 256, partial, or 0."""
    complete = tree_size >> (TILE_HEIGHT * level)  # perfect nodes of height 8*level
    return max(0, min(TILE_WIDTH, complete - index * TILE_WIDTH))


def extend(
    right_edge: Mapping[TileKey, bytes],
    size: int,
    leaf_hashes: Sequence[bytes],
    tile_roots: Iterable[bytes] | None = None,
) -> tuple[dict[TileKey, bytes], int]:
    """Fold new leaf hashes into the rightmost tiles of a tree of `size`.

    `tile_roots`, when the caller has them already, are the roots of the level-0 tiles
    these leaves complete, in order (verify's workers compute them beside the leaves).

    `right_edge` must hold the current rightmost (partial) tile of every level that has
    one. Returns every tile that changed (full or partial) and the new size.
    """
    changed: dict[TileKey, bytes] = {}
    carry = list(leaf_hashes)
    roots = iter(tile_roots) if tile_roots is not None else None
    level = 0
    while carry:
        count_here = size >> (TILE_HEIGHT * level)  # hashes this level already holds
        index, width = divmod(count_here, TILE_WIDTH)
        current = bytearray(right_edge.get((level, index), b"")) if width else bytearray()
        if len(current) != width * HASH_SIZE:
            raise InconsistentLogError(
                f"stored tile ({level}, {index}) holds {len(current) // HASH_SIZE} hashes, "
                f"the tree of size {size} needs {width}"
            )
        promoted: list[bytes] = []
        for h in carry:
            current += h
            if len(current) == FULL_TILE_BYTES:
                changed[(level, index)] = bytes(current)
                known = next(roots, None) if roots is not None and level == 0 else None
                promoted.append(known or root_from_leaf_hashes(_split(current)))
                index += 1
                current = bytearray()
        if current:
            changed[(level, index)] = bytes(current)
        carry = promoted
        level += 1
    return changed, size + len(leaf_hashes)


def _split(data: bytes | bytearray) -> list[bytes]:
    return [bytes(data[i : i + HASH_SIZE]) for i in range(0, len(data), HASH_SIZE)]


# --- paths -------------------------------------------------------------------------

_INDEX_PART = re.compile(r"^(x\d{3}/)*\d{3}$")


def encode_index(n: int) -> str:
    """1234067 -> 'x001/x234/067' (C2SP tlog-tiles)."""
    parts = [f"{n % 1000:03d}"]
    n //= 1000
    while n:
        parts.append(f"x{n % 1000:03d}")
        n //= 1000
    return "/".join(reversed(parts))


def tile_path(level: int | str, index: int, width: int = TILE_WIDTH) -> str:
    suffix = "" if width == TILE_WIDTH else f".p/{width}"
    return f"tile/{level}/{encode_index(index)}{suffix}"


def parse_index_and_width(path: str) -> tuple[int, int]:
    """Parse '<N>[.p/<W>]' after 'tile/<L>/'; RangeError if not the canonical form."""
    width = TILE_WIDTH
    if ".p/" in path:
        path, _, w = path.partition(".p/")
        if not w.isdigit() or w != str(int(w)) or not 1 <= int(w) < TILE_WIDTH:
            raise RangeError(f"partial tile width {w!r} must be 1..255 without leading zeros")
        width = int(w)
    if not _INDEX_PART.match(path):
        raise RangeError(f"tile index {path!r} is not in x001/x234/067 form")
    parts = path.split("/")
    if len(parts) > 1 and parts[0] == "x000":
        raise RangeError(f"tile index {path!r} has a leading zero group")
    index = int("".join(p.lstrip("x") for p in parts))
    if encode_index(index) != path:
        raise RangeError(f"tile index {path!r} is not canonical")
    return index, width
