"""RFC 9162 (Certificate Transparency v2) Merkle tree math: hashes, proofs, compact ranges.

Pure functions, no I/O. Hashes are SHA-256 with the RFC's domain separation: leaves are
hashed as ``0x00 || data`` and interior nodes as ``0x01 || left || right``, so a leaf can
never be passed off as a node.

Two kinds of subtree appear here:

* a *node* ``(level, index)`` is a perfect, aligned subtree covering leaves
  ``[index << level, (index + 1) << level)``; storage (tiles) holds exactly these;
* a *range* ``(start, end)`` is a subtree ``MTH(D[start:end])`` as the RFC's recursive
  definitions produce it; it is either a node or a left-full tree of several nodes.

Proof generation works in ranges and asks a ``node(level, index)`` callback for stored
hashes, so the caller decides where node hashes come from.

Errors: ``ProofError`` for anything wrong with a proof presented for verification (it
may come from an untrusted party), ``ValueError`` for calls that no correct caller makes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from hashlib import sha256

from traceledger.errors import ProofError

__all__ = [
    "EMPTY_ROOT",
    "HASH_SIZE",
    "CompactRange",
    "InclusionBatch",
    "Node",
    "Range",
    "consistency_proof",
    "consistency_ranges",
    "inclusion_proof",
    "inclusion_ranges",
    "leaf_hash",
    "node_hash",
    "perfect_nodes",
    "range_hash",
    "root_from_leaf_hashes",
    "verify_consistency",
    "verify_inclusion",
]

HASH_SIZE = 32
EMPTY_ROOT = sha256(b"").digest()

Node = tuple[int, int]
Range = tuple[int, int]

_LEAF_PREFIX = b"\x00"
_NODE_PREFIX = b"\x01"


def leaf_hash(data: bytes) -> bytes:
    """RFC 9162 leaf hash: SHA-256(0x00 || data)."""
    return sha256(_LEAF_PREFIX + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """RFC 9162 interior node hash: SHA-256(0x01 || left || right)."""
    return sha256(_NODE_PREFIX + left + right).digest()


def _split(n: int) -> int:
    """Largest power of two strictly below n (n >= 2): where the RFC splits D[n]."""
    return 1 << ((n - 1).bit_length() - 1)


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ValueError(f"{what} must be {HASH_SIZE} bytes, got {len(value)}")


def root_from_leaf_hashes(hashes: Sequence[bytes]) -> bytes:
    """MTH of a tree given its leaf hashes (not leaf data); EMPTY_ROOT for no leaves."""
    if not hashes:
        return EMPTY_ROOT
    for h in hashes:
        _check_hash(h, "leaf hash")
    return unchecked_root(hashes)


def unchecked_root(hashes: Sequence[bytes]) -> bytes:
    """root_from_leaf_hashes of hashes the caller computed itself (at least one): the
    verifier's, a tile at a time, where checking each again costs a third as much."""
    # Hashing adjacent pairs level by level, carrying an odd last hash up unchanged, gives
    # the same tree as the RFC's split at the largest power of two below n: the left part
    # is always perfect, so only the rightmost hash of a level can lack a sibling.
    level = list(hashes)
    while len(level) > 1:
        paired = [
            sha256(_NODE_PREFIX + level[i] + level[i + 1]).digest()
            for i in range(0, len(level) - 1, 2)
        ]
        if len(level) & 1:
            paired.append(level[-1])
        level = paired
    return bytes(level[0])


def perfect_nodes(start: int, end: int) -> list[Node]:
    """The perfect aligned nodes that make up range [start, end), left to right.

    Only ranges that are RFC 9162 subtrees are accepted: start is 0 or a multiple of the
    smallest power of two >= end - start. For those the nodes come largest first, and
    folding their hashes right to left gives MTH(D[start:end]) (see `range_hash`).
    """
    if not 0 <= start <= end:
        raise ValueError(f"invalid range [{start}, {end})")
    width = end - start
    if start and start & ((1 << (width - 1).bit_length()) - 1):
        raise ValueError(f"[{start}, {end}) is not a Merkle subtree (start is misaligned)")
    nodes: list[Node] = []
    pos = start
    # Peel off the set bits of the width from the highest: each is one perfect node, and
    # since start is aligned to the width's bit ceiling each node is aligned too.
    while width:
        level = width.bit_length() - 1
        nodes.append((level, pos >> level))
        pos += 1 << level
        width -= 1 << level
    return nodes


def range_hash(start: int, end: int, node: Callable[[int, int], bytes]) -> bytes:
    """MTH(D[start:end]) from the hashes of its perfect nodes, as supplied by `node`.

    A left-full tree's root is its nodes folded right to left: the smaller nodes on the
    right combine first, then each bigger node to their left becomes the left child.
    """
    nodes = perfect_nodes(start, end)
    if not nodes:
        return EMPTY_ROOT
    level, index = nodes[-1]
    h = node(level, index)
    _check_hash(h, f"node ({level}, {index})")
    for level, index in reversed(nodes[:-1]):
        left = node(level, index)
        _check_hash(left, f"node ({level}, {index})")
        h = node_hash(left, h)
    return h


def inclusion_ranges(index: int, size: int) -> list[Range]:
    """Subtrees whose hashes form the inclusion proof of leaf `index` (RFC 9162 2.1.3.1).

    PATH(m, D[n]) recurses into the half holding m and records the other half's MTH; the
    records are emitted innermost first, so the proof lists the leaf's sibling first.
    """
    if not 0 <= index < size:
        raise ValueError(f"index {index} is not in a tree of size {size}")
    ranges: list[Range] = []
    lo, hi = 0, size
    while hi - lo > 1:
        mid = lo + _split(hi - lo)
        if index < mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            lo = mid
    ranges.reverse()
    return ranges


def consistency_ranges(old_size: int, new_size: int) -> list[Range]:
    """Subtrees whose hashes form the consistency proof old -> new (RFC 9162 2.1.4.1).

    Empty when the sizes are equal or the old tree is empty: there is nothing to prove.
    """
    if not 0 <= old_size <= new_size:
        raise ValueError(f"no consistency proof from size {old_size} to {new_size}")
    if old_size in (0, new_size):
        return []
    ranges: list[Range] = []
    lo, hi = 0, new_size
    # SUBPROOF(m, D[lo:hi], b) with m = old_size - lo. `whole` is b: the old tree's root is
    # itself a range of this recursion, so the verifier already holds its hash.
    whole = True
    while hi != old_size:
        mid = lo + _split(hi - lo)
        if old_size <= mid:
            ranges.append((mid, hi))
            hi = mid
        else:
            ranges.append((lo, mid))
            lo = mid
            whole = False
    if not whole:
        # SUBPROOF(m, D[m], false): the old tree's last subtree is not known to the verifier.
        ranges.append((lo, hi))
    ranges.reverse()
    return ranges


def _inclusion_path(index: int, size: int) -> list[tuple[bool, int, int]]:
    """The inclusion proof of leaf `index` as `(True, level, i)` for a perfect node and
    `(False, start, end)` for the one subtree the tree's right edge may cut short.

    The same hashes as `inclusion_ranges` names, walked level by level (a lookup proves
    dozens of entries, and this runs several times faster): below level `inner`, where
    the paths to `index` and to the last leaf part, each sibling is a perfect node
    except, at most once, the right one cut off by the tree's edge; above it the path
    runs along the right border and only left siblings (set bits of the index) count.
    """
    if not 0 <= index < size:
        raise ValueError(f"index {index} is not in a tree of size {size}")
    inner = (index ^ (size - 1)).bit_length()
    path: list[tuple[bool, int, int]] = []
    for level in range(inner):
        sibling = (index >> level) ^ 1
        start = sibling << level
        if start + (1 << level) <= size:
            path.append((True, level, sibling))
        else:
            path.append((False, start, size))
    level, rest = inner, index >> inner
    while rest:
        if rest & 1:
            path.append((True, level, rest ^ 1))
        rest >>= 1
        level += 1
    return path


def inclusion_proof(index: int, size: int, node: Callable[[int, int], bytes]) -> list[bytes]:
    """Inclusion proof of leaf `index` in the tree of `size`, from stored node hashes."""
    return [
        node(a, b) if perfect else range_hash(a, b, node)
        for perfect, a, b in _inclusion_path(index, size)
    ]


class InclusionBatch:
    """Inclusion proofs of many leaves in the tree of `size`: the same as
    `inclusion_proof` for each, but each step of a path (a node, or the subtree the
    tree's edge cuts short) is read or hashed once, not once per proof: a history
    proves hundreds of entries, and their paths share most upper steps."""

    def __init__(self, indexes: Iterable[int], size: int) -> None:
        self.paths = {i: _inclusion_path(i, size) for i in indexes}
        self.steps = {step for path in self.paths.values() for step in path}

    def nodes(self) -> set[Node]:
        """The perfect nodes `proofs` reads."""
        nodes: set[Node] = set()
        for perfect, a, b in self.steps:
            if perfect:
                nodes.add((a, b))
            else:
                nodes.update(perfect_nodes(a, b))
        return nodes

    def proofs(self, node: Callable[[int, int], bytes]) -> dict[int, list[bytes]]:
        known = {
            (perfect, a, b): node(a, b) if perfect else range_hash(a, b, node)
            for perfect, a, b in self.steps
        }
        return {i: [known[step] for step in path] for i, path in self.paths.items()}


def consistency_proof(
    old_size: int, new_size: int, node: Callable[[int, int], bytes]
) -> list[bytes]:
    """Consistency proof between two tree sizes, from stored node hashes."""
    return [range_hash(a, b, node) for a, b in consistency_ranges(old_size, new_size)]


def _check_proof_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, not {HASH_SIZE}")


def verify_inclusion(
    leaf: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Check that leaf hash `leaf` is at `index` in the tree of `size` with `root`.

    RFC 9162 section 2.1.3.2. Raises ProofError if the proof is malformed or fails.
    """
    if not 0 <= index < size:
        raise ProofError(f"index {index} is not in a tree of size {size}")
    _check_proof_hash(leaf, "leaf hash")
    _check_proof_hash(root, "root hash")
    for i, p in enumerate(proof):
        _check_proof_hash(p, f"proof[{i}]")
    # fn walks the leaf's position up the tree, sn the last leaf's. Where fn is a right
    # child, or is the rightmost node of its level (fn == sn, so it has no right sibling
    # and is promoted), the proof hash goes on the left.
    fn, sn = index, size - 1
    r = leaf
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = node_hash(p, r)
            if not fn & 1:
                # Promoted without a sibling: skip the levels where fn has none.
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = node_hash(r, p)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    if r != root:
        raise ProofError("inclusion proof does not lead to the root")


def verify_consistency(
    old_size: int, new_size: int, old_root: bytes, new_root: bytes, proof: Sequence[bytes]
) -> None:
    """Check that the tree of `new_size` extends the tree of `old_size`.

    RFC 9162 section 2.1.4.2. An empty old tree is consistent with every tree (empty
    proof; its root must be EMPTY_ROOT); equal sizes need an empty proof and equal roots.
    Raises ProofError if the proof is malformed or fails.
    """
    if not 0 <= old_size <= new_size:
        raise ProofError(f"no consistency proof from size {old_size} to {new_size}")
    _check_proof_hash(old_root, "old root hash")
    _check_proof_hash(new_root, "new root hash")
    for i, p in enumerate(proof):
        _check_proof_hash(p, f"proof[{i}]")
    if old_size == 0 or old_size == new_size:
        if proof:
            raise ProofError(f"consistency proof from size {old_size} must be empty")
        if old_size == 0 and old_root != EMPTY_ROOT:
            raise ProofError("old root is not the root of the empty tree")
        if old_size == new_size and old_root != new_root:
            raise ProofError(f"roots differ for the same tree size {old_size}")
        return
    if not proof:
        raise ProofError("consistency proof is empty")
    path = list(proof)
    # If the old tree is perfect its root is a node of the new tree and the proof leaves
    # it out (SUBPROOF with b = true): the verifier starts from the old root it holds.
    if old_size & (old_size - 1) == 0:
        path.insert(0, old_root)
    fn, sn = old_size - 1, new_size - 1
    # Skip the levels where the old tree's last leaf is a right child: those hashes are
    # already folded into path[0], the largest subtree ending at the old tree's edge.
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            # c is left of both paths (or fn is promoted without a sibling).
            fr = node_hash(c, fr)
            sr = node_hash(c, sr)
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            # c is to the right of the old tree: it only belongs to the new one.
            sr = node_hash(sr, c)
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != old_root:
        raise ProofError("consistency proof does not lead to the old root")
    if sr != new_root:
        raise ProofError("consistency proof does not lead to the new root")


class CompactRange:
    """Streaming Merkle accumulator over leaf hashes [0, size): O(log n) memory.

    Holds the hashes of perfect_nodes(0, size), one per set bit of size, largest (left)
    first. Appending a leaf is a binary increment: each trailing 1 bit of size is a node
    that the new hash completes, so it merges with it and carries one level up.
    """

    __slots__ = ("_hashes", "_size")

    def __init__(self, size: int = 0, hashes: Sequence[bytes] = ()) -> None:
        if size < 0:
            raise ValueError(f"size must not be negative, got {size}")
        if len(hashes) != size.bit_count():
            raise ValueError(
                f"a compact range of size {size} has {size.bit_count()} hashes, got {len(hashes)}"
            )
        for h in hashes:
            _check_hash(h, "compact range hash")
        self._size = size
        self._hashes = [bytes(h) for h in hashes]

    @property
    def size(self) -> int:
        return self._size

    @property
    def hashes(self) -> list[bytes]:
        """The node hashes, left to right; a copy, so a snapshot stays valid."""
        return list(self._hashes)

    def append(self, leaf_hash: bytes) -> None:
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError(f"leaf hash must be {HASH_SIZE} bytes, got {len(leaf_hash)}")
        self.append_subtree(0, leaf_hash)

    def append_subtree(self, level: int, node: bytes) -> None:
        """Append a whole perfect subtree of 2**level leaves, given its hash; the range's
        size must be a multiple of its width (as for the nodes of perfect_nodes)."""
        if self._size & ((1 << level) - 1):
            raise ValueError(f"size {self._size} is not aligned to a subtree of level {level}")
        hashes = self._hashes
        h = node
        carry = self._size >> level
        while carry & 1:
            h = sha256(_NODE_PREFIX + hashes.pop() + h).digest()
            carry >>= 1
        hashes.append(h)
        self._size += 1 << level

    def root(self) -> bytes:
        """MTH of the leaves so far: the node hashes folded right to left."""
        hashes = self._hashes
        if not hashes:
            return EMPTY_ROOT
        h = hashes[-1]
        for left in reversed(hashes[:-1]):
            h = node_hash(left, h)
        return h
