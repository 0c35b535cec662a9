"""RFC 9162 Merkle math: known-answer vectors from the reference implementation, then
properties over random trees, then malformed input.

Every expected hash below is literal hex copied from github.com/transparency-dev/merkle
(the Go reference behind Certificate Transparency, Trillian and tlog-tiles), never
computed by the code under test:

* testonly/constants.go      LeafInputs, NodeHashes, RootHashes, CompactTrees
* testonly/reference_test.go TestRefInclusionProof, TestRefConsistencyProof
* proof/verify_test.go       inclusionProofs, consistencyProofs (+ the corruption probes)
* proof/proof_test.go        TestInclusion, TestConsistency (which node ids form a proof)
* rfc6962/rfc6962_test.go    TestRFC6962Hasher
* testonly/vectors_test.go   rolling digests over every subtree of a 130-leaf tree, from
                             the "Subtree Test Vectors" appendix of
                             draft-ietf-plants-merkle-tree-certs
"""

from __future__ import annotations

import contextlib
import itertools
import math
from collections.abc import Callable, Sequence
from functools import cache
from hashlib import sha256

import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from traceledger.errors import ProofError
from traceledger.tlog import merkle
from traceledger.tlog.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    CompactRange,
    Node,
    Range,
    consistency_proof,
    consistency_ranges,
    inclusion_proof,
    inclusion_ranges,
    leaf_hash,
    node_hash,
    perfect_nodes,
    range_hash,
    root_from_leaf_hashes,
    verify_consistency,
    verify_inclusion,
)

NodeFn = Callable[[int, int], bytes]


def h(hexstr: str) -> bytes:
    b = bytes.fromhex(hexstr)
    assert len(b) == HASH_SIZE
    return b


# --- Reference vectors (transparency-dev/merkle testonly/constants.go) ---------------------

LEAF_INPUTS = [
    bytes.fromhex(x)
    for x in (
        "",
        "00",
        "10",
        "2021",
        "3031",
        "40414243",
        "5051525354555657",
        "606162636465666768696a6b6c6d6e6f",
    )
]

# NodeHashes(): [level][index] of every perfect node of the 8-leaf tree.
NODE_HASHES = [
    [
        h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
        h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
        h("0298d122906dcfc10892cb53a73992fc5b9f493ea4c9badb27b791b4127a7fe7"),
        h("07506a85fd9dd2f120eb694f86011e5bb4662e5c415a62917033d4a9624487e7"),
        h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        h("4271a26be0d8a84f0bd54c8c302e7cb3a3b5d1fa6780a40bcce2873477dab658"),
        h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
        h("46f6ffadd3d06a09ff3c5860d2755c8b9819db7df44251788c7d8e3180de8eb1"),
    ],
    [
        h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
        h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
        h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
        h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
    ],
    [
        h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
    ],
    [
        h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
    ],
]

# RootHashes(): indexed by tree size 0..8.
ROOT_HASHES = [
    h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"),
    h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
    h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"),
    h("aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77"),
    h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
    h("4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4"),
    h("76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef"),
    h("ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c"),
    h("5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328"),
]

# CompactTrees(): the compact range of each size 0..8, as (level, index) into NodeHashes().
COMPACT_TREES: list[list[Node]] = [
    [],
    [(0, 0)],
    [(1, 0)],
    [(1, 0), (0, 2)],
    [(2, 0)],
    [(2, 0), (0, 4)],
    [(2, 0), (1, 2)],
    [(2, 0), (1, 2), (0, 6)],
    [(3, 0)],
]

# (index, size, proof): TestRefInclusionProof (0-based) plus proof/verify_test.go
# inclusionProofs (1-based there, converted here: {1, 8} -> 0, {6, 8} -> 5, {3, 3} -> 2,
# {2, 5} -> 1).
INCLUSION_VECTORS: list[tuple[int, int, list[bytes]]] = [
    (0, 1, []),
    (0, 2, [h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7")]),
    (1, 2, [h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")]),
    (2, 3, [h("fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125")]),
    (
        1,
        5,
        [
            h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        0,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        5,
        8,
        [
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

# (old_size, new_size, proof): TestRefConsistencyProof plus verify_test.go consistencyProofs.
CONSISTENCY_VECTORS: list[tuple[int, int, list[bytes]]] = [
    (1, 1, []),
    (
        1,
        8,
        [
            h("96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7"),
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"),
        ],
    ),
    (
        6,
        8,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
    (
        2,
        5,
        [
            h("5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e"),
            h("bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"),
        ],
    ),
    (
        6,
        7,
        [
            h("0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a"),
            h("b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f"),
            h("d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"),
        ],
    ),
]

# proof/verify_test.go sha256SomeHash: a valid-length hash that is in no tree.
SOME_HASH = h("abacaba000000000000000000000000000000000000000000060061e00123456")


def table_node(table: Sequence[Sequence[bytes]]) -> NodeFn:
    def node(level: int, index: int) -> bytes:
        return table[level][index]

    return node


REF_NODE = table_node(NODE_HASHES)


# --- Known answers: hashing ---------------------------------------------------------------


def test_empty_root_is_sha256_of_nothing() -> None:
    assert h("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855") == EMPTY_ROOT
    assert root_from_leaf_hashes([]) == EMPTY_ROOT
    assert CompactRange().root() == EMPTY_ROOT
    assert range_hash(0, 0, REF_NODE) == EMPTY_ROOT


def test_leaf_and_node_hashes_match_rfc6962_hasher_vectors() -> None:
    # rfc6962/rfc6962_test.go TestRFC6962Hasher.
    assert leaf_hash(b"") == h("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d")
    assert leaf_hash(b"L123456") == h(
        "395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56"
    )
    assert node_hash(b"N123", b"N456") == h(
        "aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb"
    )


def test_leaf_hashes_of_reference_inputs_match_level_zero() -> None:
    assert [leaf_hash(d) for d in LEAF_INPUTS] == NODE_HASHES[0]


def test_every_reference_node_is_the_hash_of_its_children() -> None:
    for level in range(1, len(NODE_HASHES)):
        for index, want in enumerate(NODE_HASHES[level]):
            below = NODE_HASHES[level - 1]
            assert node_hash(below[2 * index], below[2 * index + 1]) == want


@pytest.mark.parametrize("size", range(9))
def test_roots_of_reference_leaves_match_reference_roots(size: int) -> None:
    leaves = [leaf_hash(d) for d in LEAF_INPUTS[:size]]
    assert root_from_leaf_hashes(leaves) == ROOT_HASHES[size]
    assert range_hash(0, size, REF_NODE) == ROOT_HASHES[size]


def test_compact_range_matches_reference_compact_trees_at_every_size() -> None:
    cr = CompactRange()
    for size, data in enumerate([*LEAF_INPUTS, None]):
        assert cr.size == size
        assert cr.hashes == [REF_NODE(lv, ix) for lv, ix in COMPACT_TREES[size]]
        assert cr.root() == ROOT_HASHES[size]
        assert perfect_nodes(0, size) == COMPACT_TREES[size]
        if data is not None:
            cr.append(leaf_hash(data))


# --- Known answers: proofs ----------------------------------------------------------------


@pytest.mark.parametrize(("index", "size", "want"), INCLUSION_VECTORS)
def test_inclusion_proof_matches_reference_vector(index: int, size: int, want: list[bytes]) -> None:
    assert inclusion_proof(index, size, REF_NODE) == want
    verify_inclusion(NODE_HASHES[0][index], index, size, want, ROOT_HASHES[size])


@pytest.mark.parametrize(("old", "new", "want"), CONSISTENCY_VECTORS)
def test_consistency_proof_matches_reference_vector(old: int, new: int, want: list[bytes]) -> None:
    assert consistency_proof(old, new, REF_NODE) == want
    verify_consistency(old, new, ROOT_HASHES[old], ROOT_HASHES[new], want)


def test_every_inclusion_proof_of_the_reference_tree_verifies() -> None:
    for size in range(1, 9):
        for index in range(size):
            proof = inclusion_proof(index, size, REF_NODE)
            verify_inclusion(NODE_HASHES[0][index], index, size, proof, ROOT_HASHES[size])


def test_every_consistency_proof_of_the_reference_tree_verifies() -> None:
    for new in range(9):
        for old in range(new + 1):
            proof = consistency_proof(old, new, REF_NODE)
            verify_consistency(old, new, ROOT_HASHES[old], ROOT_HASHES[new], proof)


def corrupt_inclusion_probes(
    index: int, size: int, proof: list[bytes], root: bytes, leaf: bytes
) -> list[tuple[bytes, int, int, list[bytes], bytes, str]]:
    """proof/verify_test.go corruptInclusionProof, minus probes that are not well-formed
    integers here (index - 1 for index 0); those are covered by the malformed tests."""
    probes = [
        (leaf, index + 1, size, proof, root, "index + 1"),
        (leaf, index ^ 2, size, proof, root, "index ^ 2"),
        (leaf, index, size * 2, proof, root, "size * 2"),
        (leaf, index, size // 2, proof, root, "size / 2"),
        (b"WrongLeaf", index, size, proof, root, "wrong leaf"),
        (leaf, index, size, proof, EMPTY_ROOT, "empty root"),
        (leaf, index, size, proof, SOME_HASH, "random root"),
        (leaf, index, size, [*proof, b""], root, "trailing garbage"),
        (leaf, index, size, [*proof, root], root, "trailing root"),
        (leaf, index, size, [b"", *proof], root, "preceding garbage"),
        (leaf, index, size, [root, *proof], root, "preceding root"),
    ]
    if index > 0:
        probes.append((leaf, index - 1, size, proof, root, "index - 1"))
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 8]) + bad[i][1:]
        probes.append((leaf, index, size, bad, root, f"modified proof[{i}] bit 3"))
    if proof:
        probes.append((leaf, index, size, proof[:-1], root, "removed component"))
    if len(proof) > 1:
        probes.append((leaf, index, size, [proof[0], SOME_HASH, *proof[1:]], root, "inserted"))
    return probes


@pytest.mark.parametrize(("index", "size", "proof"), INCLUSION_VECTORS)
def test_reference_inclusion_corruption_probes_all_fail(
    index: int, size: int, proof: list[bytes]
) -> None:
    leaf, root = NODE_HASHES[0][index], ROOT_HASHES[size]
    accepted = []
    for lf, ix, sz, pr, rt, desc in corrupt_inclusion_probes(index, size, proof, root, leaf):
        try:
            verify_inclusion(lf, ix, sz, pr, rt)
        except ProofError:
            continue
        accepted.append(desc)
    assert accepted == []


def corrupt_consistency_probes(
    old: int, new: int, r1: bytes, r2: bytes, proof: list[bytes]
) -> list[tuple[int, int, bytes, bytes, list[bytes], str]]:
    """proof/verify_test.go corruptConsistencyProof."""
    probes = [
        (old - 1, new, r1, r2, proof, "old - 1"),
        (old + 1, new, r1, r2, proof, "old + 1"),
        (old ^ 2, new, r1, r2, proof, "old ^ 2"),
        (old, new * 2, r1, r2, proof, "new * 2"),
        (old, new // 2, r1, r2, proof, "new / 2"),
        (old, new, b"WrongRoot", r2, proof, "wrong root1"),
        (old, new, r1, b"WrongRoot", proof, "wrong root2"),
        (old, new, r2, r1, proof, "swapped roots"),
        (old, new, r1, r2, [], "empty proof"),
        (old, new, r1, r2, [*proof, b""], "trailing garbage"),
        (old, new, r1, r2, [*proof, r1], "trailing root1"),
        (old, new, r1, r2, [*proof, r2], "trailing root2"),
        (old, new, r1, r2, [b"", *proof], "preceding garbage"),
        (old, new, r1, r2, [r1, *proof], "preceding root1"),
        (old, new, r1, r2, [r2, *proof], "preceding root2"),
        (old, new, r1, r2, [proof[0], *proof], "preceding proof[0]"),
        (old, new, r1, r2, proof[:-1], "truncated proof"),
    ]
    for i in range(len(proof)):
        bad = list(proof)
        bad[i] = bytes([bad[i][0] ^ 16]) + bad[i][1:]
        probes.append((old, new, r1, r2, bad, f"modified proof[{i}] bit 4"))
    return probes


@pytest.mark.parametrize(("old", "new", "proof"), [v for v in CONSISTENCY_VECTORS if v[2]])
def test_reference_consistency_corruption_probes_all_fail(
    old: int, new: int, proof: list[bytes]
) -> None:
    r1, r2 = ROOT_HASHES[old], ROOT_HASHES[new]
    accepted = []
    for o, n, a, b, pr, desc in corrupt_consistency_probes(old, new, r1, r2, proof):
        try:
            verify_consistency(o, n, a, b, pr)
        except ProofError:
            continue
        accepted.append(desc)
    assert accepted == []


# --- Known answers: which subtrees form a proof (proof/proof_test.go) -------------------------
#
# The reference lists node ids; a run it marks rehash(begin, end) is one proof element, the
# MTH of a range that is not a perfect node, its nodes listed right to left (smallest first).
# Here each proof element is the list of its nodes in that order.

INCLUSION_NODE_VECTORS: list[tuple[int, int, list[list[Node]]]] = [
    (0, 1, []),
    (0, 2, [[(0, 1)]]),
    (1, 2, [[(0, 0)]]),
    (1, 3, [[(0, 0)], [(0, 2)]]),
    (0, 7, [[(0, 1)], [(1, 1)], [(0, 6), (1, 2)]]),
    (1, 7, [[(0, 0)], [(1, 1)], [(0, 6), (1, 2)]]),
    (2, 7, [[(0, 3)], [(1, 0)], [(0, 6), (1, 2)]]),
    (3, 7, [[(0, 2)], [(1, 0)], [(0, 6), (1, 2)]]),
    (4, 7, [[(0, 5)], [(0, 6)], [(2, 0)]]),
    (5, 7, [[(0, 4)], [(0, 6)], [(2, 0)]]),
    (6, 7, [[(1, 2)], [(2, 0)]]),
    (2, 4, [[(0, 3)], [(1, 0)]]),
    (3, 5, [[(0, 2)], [(1, 0)], [(0, 4)]]),
    (3, 6, [[(0, 2)], [(1, 0)], [(1, 2)]]),
    (4, 6, [[(0, 5)], [(2, 0)]]),
    (10, 15, [[(0, 11)], [(1, 4)], [(0, 14), (1, 6)], [(3, 0)]]),
    (24, 31, [[(0, 25)], [(1, 13)], [(0, 30), (1, 14)], [(3, 2)], [(4, 0)]]),
    (81, 95, [[(0, 80)], [(1, 41)], [(2, 21)], [(0, 94), (1, 46), (2, 22)], [(4, 4)], [(6, 0)]]),
]

CONSISTENCY_NODE_VECTORS: list[tuple[int, int, list[list[Node]]]] = [
    (1, 2, [[(0, 1)]]),
    (1, 4, [[(0, 1)], [(1, 1)]]),
    (1, 6, [[(0, 1)], [(1, 1)], [(1, 2)]]),
    (2, 3, [[(0, 2)]]),
    (2, 8, [[(1, 1)], [(2, 1)]]),
    (3, 7, [[(0, 2)], [(0, 3)], [(1, 0)], [(0, 6), (1, 2)]]),
    (4, 7, [[(0, 6), (1, 2)]]),
    (5, 7, [[(0, 4)], [(0, 5)], [(0, 6)], [(2, 0)]]),
    (6, 7, [[(1, 2)], [(0, 6)], [(2, 0)]]),
    (7, 8, [[(0, 6)], [(0, 7)], [(1, 2)], [(2, 0)]]),
    *[(n, n, []) for n in (1, 2, 3, 4, 5, 7, 8)],
    (2, 4, [[(1, 1)]]),
    (3, 5, [[(0, 2)], [(0, 3)], [(1, 0)], [(0, 4)]]),
    (3, 6, [[(0, 2)], [(0, 3)], [(1, 0)], [(1, 2)]]),
    (4, 6, [[(1, 2)]]),
    (1, 7, [[(0, 1)], [(1, 1)], [(0, 6), (1, 2)]]),
    (10, 15, [[(1, 4)], [(1, 5)], [(0, 14), (1, 6)], [(3, 0)]]),
    (24, 31, [[(3, 2)], [(0, 30), (1, 14), (2, 6)], [(4, 0)]]),
    (
        81,
        95,
        [
            [(0, 80)],
            [(0, 81)],
            [(1, 41)],
            [(2, 21)],
            [(0, 94), (1, 46), (2, 22)],
            [(4, 4)],
            [(6, 0)],
        ],
    ),
]


def proof_nodes(ranges: list[Range]) -> list[list[Node]]:
    return [perfect_nodes(a, b)[::-1] for a, b in ranges]


@pytest.mark.parametrize(("index", "size", "want"), INCLUSION_NODE_VECTORS)
def test_inclusion_ranges_pick_the_reference_nodes(
    index: int, size: int, want: list[list[Node]]
) -> None:
    assert proof_nodes(inclusion_ranges(index, size)) == want


@pytest.mark.parametrize(("old", "new", "want"), CONSISTENCY_NODE_VECTORS)
def test_consistency_ranges_pick_the_reference_nodes(
    old: int, new: int, want: list[list[Node]]
) -> None:
    assert proof_nodes(consistency_ranges(old, new)) == want


# --- Known answers: every subtree of a 130-leaf tree (testonly/vectors_test.go) -------------

SUBTREE_VECTOR_MAX = 130


def is_subtree(start: int, end: int) -> bool:
    """testonly/tree.go isSubtreeValid: start is 0 or a multiple of bit_ceil(end - start)."""
    return start < end and (start == 0 or start % (1 << (end - start - 1).bit_length()) == 0)


@cache
def subtree_vector_table() -> list[list[bytes]]:
    """Every perfect node hash of the tree with leaves d[i] = bytes([i]), i < 130."""
    table = [[leaf_hash(bytes([i])) for i in range(SUBTREE_VECTOR_MAX)]]
    while len(table[-1]) > 1:
        below = table[-1]
        table.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)])
    return table


def shifted(node: NodeFn, start: int) -> NodeFn:
    """`node` for the subtree that starts at leaf `start`, addressed as if it began at 0."""
    return lambda level, index: node(level, index + (start >> level))


def proof_line(prefix: str, proof: list[bytes]) -> bytes:
    return (prefix + "".join(" " + p.hex() for p in proof) + "\n").encode()


def test_subtree_hashes_match_merkle_tree_certs_vector() -> None:
    node = table_node(subtree_vector_table())
    digest = sha256()
    for end in range(1, SUBTREE_VECTOR_MAX + 1):
        for start in range(end):
            if is_subtree(start, end):
                digest.update(f"[{start}, {end}) {range_hash(start, end, node).hex()}\n".encode())
    assert digest.hexdigest() == "94a95384a8c69acea9b50d035a58285b3a777cb7a724005faa5e1f1e1190007f"


def test_subtree_inclusion_proofs_match_merkle_tree_certs_vector() -> None:
    # A subtree inclusion proof is the plain inclusion proof within the subtree, which is
    # the tree of size end - start moved right by an aligned offset.
    node = table_node(subtree_vector_table())
    digest = sha256()
    for end in range(1, SUBTREE_VECTOR_MAX + 1):
        for start in range(end):
            if not is_subtree(start, end):
                continue
            sub = shifted(node, start)
            for index in range(start, end):
                proof = inclusion_proof(index - start, end - start, sub)
                digest.update(proof_line(f"{index} [{start}, {end})", proof))
    assert digest.hexdigest() == "ac2a8f989e44d99e399db448050ff5f19757df53cfb716aa81015d3955d8163f"


def subtree_consistency_ranges(start: int, end: int, size: int) -> list[Range]:
    """Subtree consistency proof of draft-ietf-plants-merkle-tree-certs for start > 0.

    Same recursion as RFC 9162 SUBPROOF, but the old "tree" [start, end) need not begin at
    leaf 0. Only needed so the rolling vector below can be reproduced; the start == 0
    lines, which are ordinary consistency proofs, come from the code under test.
    """
    out: list[Range] = []

    def sub(lo: int, hi: int, start: int, have_root: bool) -> None:
        if start == lo and end == hi:
            if not have_root:
                out.append((lo, hi))
            return
        mid = lo + (1 << ((hi - lo - 1).bit_length() - 1))
        if end <= mid:
            sub(lo, mid, start, have_root)
            out.append((mid, hi))
        elif mid <= start:
            sub(mid, hi, start, have_root)
            out.append((lo, mid))
        else:
            sub(mid, hi, mid, False)
            out.append((lo, mid))

    sub(0, size, start, True)
    return out


def test_consistency_proofs_match_merkle_tree_certs_vector() -> None:
    node = table_node(subtree_vector_table())
    digest = sha256()
    for size in range(SUBTREE_VECTOR_MAX + 1):
        for end in range(1, size + 1):
            for start in range(end):
                if not is_subtree(start, end):
                    continue
                if start == 0:
                    proof = consistency_proof(end, size, node)
                else:
                    ranges = subtree_consistency_ranges(start, end, size)
                    proof = [range_hash(a, b, node) for a, b in ranges]
                digest.update(proof_line(f"[{start}, {end}) {size}", proof))
    assert digest.hexdigest() == "c586ebbb73a5621baf2140095d87dde934e3b6503a562a1a5215b8209edd083d"


# --- Properties over random trees ---------------------------------------------------------

MAX_SIZE = 3000


@cache
def big_table() -> list[list[bytes]]:
    """Perfect node hashes of a 4096-leaf tree; any smaller tree is a prefix of it."""
    table = [[leaf_hash(i.to_bytes(4, "big")) for i in range(4096)]]
    while len(table[-1]) > 1:
        below = table[-1]
        table.append([node_hash(below[i], below[i + 1]) for i in range(0, len(below), 2)])
    return table


def big_leaves(start: int, end: int) -> list[bytes]:
    return big_table()[0][start:end]


def big_node(level: int, index: int) -> bytes:
    return big_table()[level][index]


@cache
def big_root(size: int) -> bytes:
    return root_from_leaf_hashes(big_leaves(0, size))


sizes = st.integers(min_value=1, max_value=MAX_SIZE)


@st.composite
def leaf_in_tree(draw: st.DrawFn) -> tuple[int, int]:
    size = draw(sizes)
    return draw(st.integers(0, size - 1)), size


@st.composite
def size_pairs(draw: st.DrawFn) -> tuple[int, int]:
    new = draw(st.integers(0, MAX_SIZE))
    return draw(st.integers(0, new)), new


@st.composite
def proper_size_pairs(draw: st.DrawFn) -> tuple[int, int]:
    """0 < old < new: the pairs whose consistency proof is not empty."""
    new = draw(st.integers(2, MAX_SIZE))
    return draw(st.integers(1, new - 1)), new


def flip(proof: list[bytes], element: int, byte: int, mask: int) -> list[bytes]:
    bad = list(proof)
    p = bytearray(bad[element])
    p[byte] ^= mask
    bad[element] = bytes(p)
    return bad


@given(leaf_in_tree())
def test_inclusion_proofs_verify_against_root_of_leaf_hashes(case: tuple[int, int]) -> None:
    index, size = case
    proof = inclusion_proof(index, size, big_node)
    verify_inclusion(big_node(0, index), index, size, proof, big_root(size))


@given(size_pairs())
def test_consistency_proofs_verify_against_roots_of_leaf_hashes(case: tuple[int, int]) -> None:
    old, new = case
    proof = consistency_proof(old, new, big_node)
    verify_consistency(old, new, big_root(old), big_root(new), proof)


@given(leaf_in_tree(), st.data())
def test_flipping_any_inclusion_proof_byte_fails(
    case: tuple[int, int], data: st.DataObject
) -> None:
    index, size = case
    proof = inclusion_proof(index, size, big_node)
    assume(proof)
    element = data.draw(st.integers(0, len(proof) - 1))
    byte = data.draw(st.integers(0, HASH_SIZE - 1))
    mask = data.draw(st.integers(1, 255))
    with pytest.raises(ProofError):
        verify_inclusion(
            big_node(0, index), index, size, flip(proof, element, byte, mask), big_root(size)
        )


@given(proper_size_pairs(), st.data())
def test_flipping_any_consistency_proof_byte_fails(
    case: tuple[int, int], data: st.DataObject
) -> None:
    old, new = case
    proof = consistency_proof(old, new, big_node)
    element = data.draw(st.integers(0, len(proof) - 1))
    byte = data.draw(st.integers(0, HASH_SIZE - 1))
    mask = data.draw(st.integers(1, 255))
    with pytest.raises(ProofError):
        verify_consistency(old, new, big_root(old), big_root(new), flip(proof, element, byte, mask))


@given(leaf_in_tree(), st.data())
def test_inclusion_proof_fails_for_wrong_index(case: tuple[int, int], data: st.DataObject) -> None:
    index, size = case
    assume(size > 1)
    other = data.draw(st.integers(0, size - 1).filter(lambda i: i != index))
    proof = inclusion_proof(index, size, big_node)
    with pytest.raises(ProofError):
        verify_inclusion(big_node(0, index), other, size, proof, big_root(size))


@given(leaf_in_tree(), st.data())
def test_inclusion_proof_fails_for_wrong_size(case: tuple[int, int], data: st.DataObject) -> None:
    # The size is bound only through the root: against the root the verifier is given
    # for the size it is told, a proof for another size must fail.
    index, size = case
    other = data.draw(st.integers(index + 1, MAX_SIZE).filter(lambda s: s != size))
    proof = inclusion_proof(index, size, big_node)
    with pytest.raises(ProofError):
        verify_inclusion(big_node(0, index), index, other, proof, big_root(other))


@given(leaf_in_tree(), st.data())
def test_inclusion_proof_fails_for_wrong_root_or_leaf(
    case: tuple[int, int], data: st.DataObject
) -> None:
    index, size = case
    proof = inclusion_proof(index, size, big_node)
    other_root = data.draw(st.sampled_from([big_root(size - 1), big_root(size + 1), SOME_HASH]))
    with pytest.raises(ProofError):
        verify_inclusion(big_node(0, index), index, size, proof, other_root)
    other_leaf = big_node(0, (index + 1) % (size + 1))
    with pytest.raises(ProofError):
        verify_inclusion(other_leaf, index, size, proof, big_root(size))


@given(proper_size_pairs(), st.data())
def test_consistency_proof_fails_for_wrong_sizes_or_roots(
    case: tuple[int, int], data: st.DataObject
) -> None:
    old, new = case
    proof = consistency_proof(old, new, big_node)
    old2 = data.draw(st.integers(0, new).filter(lambda s: s != old))
    new2 = data.draw(st.integers(old, MAX_SIZE).filter(lambda s: s != new))
    # Wrong sizes, each with the true root of the size claimed.
    with pytest.raises(ProofError):
        verify_consistency(old2, new, big_root(old2), big_root(new), proof)
    with pytest.raises(ProofError):
        verify_consistency(old, new2, big_root(old), big_root(new2), proof)
    # Right sizes, wrong roots.
    with pytest.raises(ProofError):
        verify_consistency(old, new, big_root(new), big_root(old), proof)
    with pytest.raises(ProofError):
        verify_consistency(old, new, big_root(old2), big_root(new), proof)
    with pytest.raises(ProofError):
        verify_consistency(old, new, big_root(old), big_root(new2), proof)


@given(st.integers(1, 1 << 40), st.data())
def test_inclusion_proof_is_never_longer_than_tree_height(size: int, data: st.DataObject) -> None:
    index = data.draw(st.integers(0, size - 1))
    ranges = inclusion_ranges(index, size)
    assert len(ranges) <= math.ceil(math.log2(size)) if size > 1 else not ranges
    assert len(ranges) <= (size - 1).bit_length()


@given(st.integers(1, 1 << 40), st.data())
def test_consistency_proof_is_at_most_one_longer_than_tree_height(
    new: int, data: st.DataObject
) -> None:
    old = data.draw(st.integers(0, new))
    assert len(consistency_ranges(old, new)) <= (new - 1).bit_length() + 1


@given(leaf_in_tree())
def test_proof_ranges_are_disjoint_and_with_the_leaf_cover_the_tree(case: tuple[int, int]) -> None:
    index, size = case
    covered = sorted([(index, index + 1), *inclusion_ranges(index, size)])
    assert covered[0][0] == 0
    assert covered[-1][1] == size
    assert all(a[1] == b[0] for a, b in itertools.pairwise(covered))


@st.composite
def aligned_ranges(draw: st.DrawFn) -> tuple[int, int]:
    """[start, end) that are RFC subtrees: start a multiple of bit_ceil(end - start)."""
    width = draw(st.integers(1, 2048))
    ceil = 1 << (width - 1).bit_length()
    start = ceil * draw(st.integers(0, (4096 - width) // ceil))
    return start, start + width


@given(aligned_ranges())
def test_range_hash_of_perfect_nodes_equals_direct_mth(rng: tuple[int, int]) -> None:
    start, end = rng
    assert range_hash(start, end, big_node) == root_from_leaf_hashes(big_leaves(start, end))


@given(aligned_ranges())
def test_perfect_nodes_tile_the_range_largest_first(rng: tuple[int, int]) -> None:
    start, end = rng
    pos = start
    levels = []
    for level, index in perfect_nodes(start, end):
        assert index << level == pos
        pos += 1 << level
        levels.append(level)
    assert pos == end
    assert levels == sorted(set(levels), reverse=True)


@given(st.lists(st.binary(max_size=40), max_size=200))
def test_compact_range_root_equals_root_from_leaf_hashes_at_every_size(
    leaves: list[bytes],
) -> None:
    hashes = [leaf_hash(d) for d in leaves]
    cr = CompactRange()
    assert cr.root() == root_from_leaf_hashes([])
    for n, lh in enumerate(hashes, start=1):
        cr.append(lh)
        assert cr.size == n
        assert cr.root() == root_from_leaf_hashes(hashes[:n])


def test_compact_range_root_equals_root_from_leaf_hashes_past_1024() -> None:
    cr = CompactRange()
    for n in range(1, 1100):
        cr.append(big_node(0, n - 1))
        assert cr.root() == big_root(n)
        assert cr.hashes == [big_node(lv, ix) for lv, ix in perfect_nodes(0, n)]


@given(st.integers(0, MAX_SIZE), st.integers(0, 300))
def test_compact_range_restored_from_snapshot_continues_identically(size: int, more: int) -> None:
    live = CompactRange()
    for i in range(size):
        live.append(big_node(0, i))
    snapshot = live.hashes
    restored = CompactRange(live.size, snapshot)
    assert restored.root() == live.root() == big_root(size)
    for i in range(size, size + more):
        live.append(big_node(0, i))
        restored.append(big_node(0, i))
        assert restored.size == live.size
        assert restored.hashes == live.hashes
    assert restored.root() == big_root(size + more)
    # The snapshot is a copy: appending did not change it.
    assert snapshot == [big_node(lv, ix) for lv, ix in perfect_nodes(0, size)]


def aligned_nodes(start: int, end: int) -> list[tuple[int, int]]:
    """[start, end) as aligned perfect subtrees, greedily largest first at each position."""
    nodes, pos = [], start
    while pos < end:
        level = 0
        while pos % (2 << level) == 0 and pos + (2 << level) <= end:
            level += 1
        nodes.append((level, pos >> level))
        pos += 1 << level
    return nodes


@given(st.integers(0, MAX_SIZE), st.integers(0, MAX_SIZE))
def test_appending_whole_subtrees_equals_appending_their_leaves(start: int, end: int) -> None:
    start, end = sorted((start, end))
    cr = CompactRange(start, [big_node(lv, ix) for lv, ix in perfect_nodes(0, start)])
    for level, index in aligned_nodes(start, end):
        cr.append_subtree(level, big_node(level, index))
    assert cr.size == end
    assert cr.root() == big_root(end)
    assert cr.hashes == [big_node(lv, ix) for lv, ix in perfect_nodes(0, end)]


def test_a_misaligned_subtree_is_refused() -> None:
    cr = CompactRange()
    cr.append(big_node(0, 0))
    with pytest.raises(ValueError, match="aligned"):
        cr.append_subtree(1, big_node(1, 0))


# --- Malformed input ----------------------------------------------------------------------

GOOD_LEAF = NODE_HASHES[0][5]
GOOD_PROOF = INCLUSION_VECTORS[-1][2]  # index 5, size 8
BAD_LENGTHS = [b"", b"\x00" * 31, b"\x00" * 33, b"WrongRoot"]


@pytest.mark.parametrize("bad", BAD_LENGTHS)
def test_inclusion_hash_of_wrong_length_is_a_proof_error(bad: bytes) -> None:
    root = ROOT_HASHES[8]
    with pytest.raises(ProofError):
        verify_inclusion(bad, 5, 8, GOOD_PROOF, root)
    with pytest.raises(ProofError):
        verify_inclusion(GOOD_LEAF, 5, 8, GOOD_PROOF, bad)
    for i in range(len(GOOD_PROOF)):
        proof = list(GOOD_PROOF)
        proof[i] = bad
        with pytest.raises(ProofError, match=rf"proof\[{i}\] is {len(bad)} bytes"):
            verify_inclusion(GOOD_LEAF, 5, 8, proof, root)


@pytest.mark.parametrize("bad", BAD_LENGTHS)
def test_consistency_hash_of_wrong_length_is_a_proof_error(bad: bytes) -> None:
    old, new, proof = CONSISTENCY_VECTORS[2]  # 6 -> 8
    r1, r2 = ROOT_HASHES[old], ROOT_HASHES[new]
    with pytest.raises(ProofError):
        verify_consistency(old, new, bad, r2, proof)
    with pytest.raises(ProofError):
        verify_consistency(old, new, r1, bad, proof)
    for i in range(len(proof)):
        wrong = list(proof)
        wrong[i] = bad
        with pytest.raises(ProofError, match=rf"proof\[{i}\] is {len(bad)} bytes"):
            verify_consistency(old, new, r1, r2, wrong)
    # Trivial cases check root lengths too.
    with pytest.raises(ProofError):
        verify_consistency(3, 3, bad, bad, [])
    with pytest.raises(ProofError):
        verify_consistency(0, 3, bad, ROOT_HASHES[3], [])


def test_inclusion_proof_too_long_or_too_short_is_a_proof_error() -> None:
    root = ROOT_HASHES[8]
    with pytest.raises(ProofError, match="too long"):
        verify_inclusion(GOOD_LEAF, 5, 8, [*GOOD_PROOF, SOME_HASH], root)
    with pytest.raises(ProofError, match="too short"):
        verify_inclusion(GOOD_LEAF, 5, 8, GOOD_PROOF[:-1], root)
    with pytest.raises(ProofError, match="too short"):
        verify_inclusion(GOOD_LEAF, 5, 8, [], root)
    with pytest.raises(ProofError, match="too long"):
        verify_inclusion(ROOT_HASHES[1], 0, 1, [SOME_HASH], ROOT_HASHES[1])


def test_consistency_proof_too_long_or_too_short_is_a_proof_error() -> None:
    old, new, proof = CONSISTENCY_VECTORS[2]  # 6 -> 8
    r1, r2 = ROOT_HASHES[old], ROOT_HASHES[new]
    with pytest.raises(ProofError, match="too long"):
        verify_consistency(old, new, r1, r2, [*proof, SOME_HASH])
    with pytest.raises(ProofError, match="too short"):
        verify_consistency(old, new, r1, r2, proof[:-1])
    with pytest.raises(ProofError, match="empty"):
        verify_consistency(old, new, r1, r2, [])


@pytest.mark.parametrize(("index", "size"), [(0, 0), (1, 0), (2, 1), (1, 1), (-1, 5), (8, 8)])
def test_inclusion_index_outside_tree_is_a_proof_error(index: int, size: int) -> None:
    # Includes proof/verify_test.go TestVerifyInclusion's probes.
    for leaf, root in [(SOME_HASH, b""), (b"", EMPTY_ROOT), (SOME_HASH, EMPTY_ROOT)]:
        with pytest.raises(ProofError):
            verify_inclusion(leaf, index, size, [], root)


def test_single_entry_tree_root_is_its_leaf_hash() -> None:
    # proof/verify_test.go TestVerifyInclusionSingleEntry.
    leaf = leaf_hash(b"data")
    verify_inclusion(leaf, 0, 1, [], leaf)
    for lf, root in [(b"", leaf), (leaf, b""), (b"", b"")]:
        with pytest.raises(ProofError):
            verify_inclusion(lf, 0, 1, [], root)


@pytest.mark.parametrize(
    ("old", "new", "r1", "r2", "proof", "ok"),
    [
        # proof/verify_test.go TestVerifyConsistency, with the "don't care" roots replaced
        # by real ones: here a root of the wrong length is always malformed, and an empty
        # tree's root must be EMPTY_ROOT.
        (0, 0, EMPTY_ROOT, SOME_HASH, [], False),
        (1, 1, ROOT_HASHES[1], SOME_HASH, [], False),
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [], True),
        (0, 1, EMPTY_ROOT, ROOT_HASHES[1], [], True),
        (1, 1, SOME_HASH, SOME_HASH, [], True),
        (1, 0, ROOT_HASHES[1], EMPTY_ROOT, [], False),
        (2, 1, ROOT_HASHES[2], ROOT_HASHES[1], [], False),
        (1, 2, ROOT_HASHES[1], ROOT_HASHES[2], [], False),
        (1, 1, EMPTY_ROOT, SOME_HASH, [], False),
        (0, 0, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (0, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        (1, 1, EMPTY_ROOT, EMPTY_ROOT, [EMPTY_ROOT], False),
        # Ours: an empty tree whose root is not the empty root.
        (0, 1, SOME_HASH, ROOT_HASHES[1], [], False),
        (0, 0, SOME_HASH, SOME_HASH, [], False),
        (-1, 1, EMPTY_ROOT, ROOT_HASHES[1], [], False),
    ],
)
def test_trivial_consistency_cases(
    old: int, new: int, r1: bytes, r2: bytes, proof: list[bytes], ok: bool
) -> None:
    if ok:
        verify_consistency(old, new, r1, r2, proof)
    else:
        with pytest.raises(ProofError):
            verify_consistency(old, new, r1, r2, proof)


@settings(max_examples=300)
@given(
    st.integers(-3, 5000),
    st.integers(-3, 5000),
    st.lists(st.binary(min_size=0, max_size=40), max_size=16),
    st.binary(max_size=40),
    st.binary(max_size=40),
)
def test_garbage_never_raises_anything_but_proof_error(
    a: int, b: int, proof: list[bytes], x: bytes, y: bytes
) -> None:
    # Any other exception escapes and fails the test.
    with contextlib.suppress(ProofError):
        verify_inclusion(x, a, b, proof, y)
    with contextlib.suppress(ProofError):
        verify_consistency(a, b, x, y, proof)


def test_programming_errors_are_value_errors() -> None:
    with pytest.raises(ValueError, match="not in a tree"):
        inclusion_ranges(5, 5)
    with pytest.raises(ValueError, match="not in a tree"):
        inclusion_proof(-1, 5, REF_NODE)
    with pytest.raises(ValueError, match="consistency"):
        consistency_ranges(6, 5)
    with pytest.raises(ValueError, match="consistency"):
        consistency_proof(-1, 5, REF_NODE)
    with pytest.raises(ValueError, match="misaligned"):
        perfect_nodes(1, 3)
    with pytest.raises(ValueError, match="invalid range"):
        perfect_nodes(3, 1)
    with pytest.raises(ValueError, match="node"):
        range_hash(0, 2, lambda lv, ix: b"short")
    with pytest.raises(ValueError, match="leaf hash"):
        root_from_leaf_hashes([b"short"])
    with pytest.raises(ValueError, match="hashes"):
        CompactRange(3, [SOME_HASH])
    with pytest.raises(ValueError, match="bytes"):
        CompactRange(1, [b"short"])
    with pytest.raises(ValueError, match="negative"):
        CompactRange(-1)
    cr = CompactRange()
    with pytest.raises(ValueError, match="bytes"):
        cr.append(b"short")
    assert cr.size == 0


def test_module_exports_the_documented_api() -> None:
    assert set(merkle.__all__) == {
        "EMPTY_ROOT",
        "HASH_SIZE",
        "CompactRange",
        "Node",
        "Range",
        "consistency_proof",
        "consistency_ranges",
        "InclusionBatch",
        "inclusion_proof",
        "inclusion_ranges",
        "leaf_hash",
        "node_hash",
        "perfect_nodes",
        "range_hash",
        "root_from_leaf_hashes",
        "verify_consistency",
        "verify_inclusion",
    }


def recording_node() -> tuple[Callable[[int, int], bytes], list[Node]]:
    """A node source of made-up hashes, and the list of the nodes it was asked for."""
    read: list[Node] = []

    def node(level: int, idx: int) -> bytes:
        read.append((level, idx))
        return sha256(f"{level}/{idx}".encode()).digest()

    return node, read


@given(st.integers(1, 5000).flatmap(lambda n: st.tuples(st.integers(0, n - 1), st.just(n))))
def test_level_walk_proof_equals_the_rfc_recursion_and_reads_only_the_named_nodes(
    case: tuple[int, int],
) -> None:
    index, size = case
    node, read = recording_node()

    by_ranges = [range_hash(a, b, node) for a, b in inclusion_ranges(index, size)]
    read.clear()
    assert inclusion_proof(index, size, node) == by_ranges
    assert set(read) == merkle.InclusionBatch([index], size).nodes()


@given(
    st.integers(1, 5000).flatmap(lambda n: st.tuples(st.lists(st.integers(0, n - 1)), st.just(n)))
)
def test_batch_proofs_equal_one_by_one_and_read_only_the_named_nodes(
    case: tuple[list[int], int],
) -> None:
    indexes, size = case
    node, reads = recording_node()
    batch = merkle.InclusionBatch(indexes, size)
    proofs = batch.proofs(node)
    assert set(reads) == batch.nodes()
    assert proofs == {i: inclusion_proof(i, size, node) for i in indexes}
