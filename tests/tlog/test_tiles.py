"""C2SP tlog-tiles arithmetic: paths, widths, and folding leaves into tiles."""

from __future__ import annotations

import hashlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from traceledger.errors import RangeError
from traceledger.tlog import merkle
from traceledger.tlog.tiles import (
    TILE_WIDTH,
    TileKey,
    encode_index,
    extend,
    node_from_tiles,
    parse_index_and_width,
    tile_path,
    tile_width,
)


def leaves(n: int) -> list[bytes]:
    return [merkle.leaf_hash(hashlib.sha256(i.to_bytes(8, "big")).digest()) for i in range(n)]


def test_index_path_matches_the_spec_example() -> None:
    # C2SP tlog-tiles: "index 1234067 will be encoded as x001/x234/067".
    assert encode_index(1234067) == "x001/x234/067"
    assert encode_index(0) == "000"
    assert tile_path(0, 5, 17) == "tile/0/005.p/17"
    assert tile_path("entries", 1000) == "tile/entries/x001/000"
    assert parse_index_and_width("x001/x234/067.p/12") == (1234067, 12)


@pytest.mark.parametrize(
    "bad",
    [
        "1",
        "x1/000",
        "x000/001",
        "000.p/0",
        "000.p/256",
        "000.p/07",
        "000/001",
        "abc",
        "000.p/",
        "x001",
    ],
)
def test_non_canonical_tile_paths_are_refused(bad: str) -> None:
    with pytest.raises(RangeError):
        parse_index_and_width(bad)


@given(st.integers(min_value=0, max_value=10**15))
def test_index_paths_round_trip(n: int) -> None:
    assert parse_index_and_width(encode_index(n)) == (n, TILE_WIDTH)


def test_tile_widths_match_the_spec_example_for_size_70000() -> None:
    # "a tree of size 70,000 will be represented by 273 full level 0 tiles, one partial
    # level 0 tile of width 112, one full level 1 tile, one partial level 1 tile of
    # width 17, and one partial level 2 tile of width 1."
    assert [tile_width(0, 70_000, n) for n in (0, 272, 273, 274)] == [256, 256, 112, 0]
    assert [tile_width(1, 70_000, n) for n in (0, 1, 2)] == [256, 17, 0]
    assert [tile_width(2, 70_000, n) for n in (0, 1)] == [1, 0]
    assert tile_width(1, 256, 0) == 1


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(min_value=1, max_value=700), min_size=1, max_size=6))
def test_extending_in_any_chunks_gives_the_tiles_the_spec_defines(chunks: list[int]) -> None:
    hashes = leaves(sum(chunks))
    stored: dict[TileKey, bytes] = {}
    size = 0
    for n in chunks:
        edge = {k: v for k, v in stored.items() if len(v) < TILE_WIDTH * 32}
        changed, size = extend(edge, size, hashes[size : size + n])
        stored.update(changed)
    # Tile (l, n) entry i is MTH(D[(n*256+i)*256**l : (n*256+i+1)*256**l]).
    for (level, index), data in stored.items():
        assert len(data) == tile_width(level, size, index) * 32
        span = TILE_WIDTH**level
        for i in range(len(data) // 32):
            first = (index * TILE_WIDTH + i) * span
            assert data[i * 32 : i * 32 + 32] == merkle.root_from_leaf_hashes(
                hashes[first : first + span]
            )
    root = merkle.range_hash(0, size, lambda lv, ix: node_from_tiles(stored, lv, ix))
    assert root == merkle.root_from_leaf_hashes(hashes)
