"""Leaves: one canonical encoding, read strictly, and the verifier's fast readers agree
with the strict one on every input."""

from __future__ import annotations

import dataclasses

import pytest
from hypothesis import given
from hypothesis import strategies as st

from traceledger.errors import IntegrityError
from traceledger.tlog import leaf as leaf_module
from traceledger.tlog.leaf import Commitments, Leaf, commitments_at, is_leaf_at

hashes = st.binary(min_size=32, max_size=32)
leaves = st.builds(
    Leaf,
    index=st.integers(0, 2**63 - 1),
    prev_hash=hashes,
    record_time_us=st.integers(0, 2**63 - 1),
    identity=hashes,
    payload_hash=hashes,
    envelope_hash=st.none() | hashes,
)


def commitments(leaf: Leaf) -> Commitments:
    return leaf.prev_hash, leaf.identity, leaf.payload_hash, leaf.envelope_hash


def strict(data: bytes, index: int) -> Commitments | str:
    try:
        leaf = Leaf.decode(data, index=index)
    except IntegrityError as exc:
        return exc.reason
    if leaf.index != index:
        return f"leaf says index {leaf.index}: rows were moved"
    return commitments(leaf)


def fast(data: bytes, index: int) -> Commitments | str:
    try:
        return commitments_at(data, index)
    except IntegrityError as exc:
        return exc.reason


@given(leaves)
def test_a_leaf_reads_back_as_itself_both_ways(leaf: Leaf) -> None:
    data = leaf.encode()
    assert Leaf.decode(data) == leaf
    assert commitments_at(data, leaf.index) == commitments(leaf)


@given(leaves, st.integers(0, 200), st.binary(min_size=1, max_size=3))
def test_the_fast_reader_agrees_with_the_strict_one_on_damaged_leaves(
    leaf: Leaf, at: int, junk: bytes
) -> None:
    data = leaf.encode()
    at %= len(data)
    for damaged in (data[:at] + junk + data[at + 1 :], data[:at], data + junk):
        assert fast(damaged, leaf.index) == strict(damaged, leaf.index)


def test_a_typical_leaf_takes_the_fast_path(monkeypatch: pytest.MonkeyPatch) -> None:
    leaf = Leaf(12345, b"p" * 32, 1_767_225_600_000_000, b"i" * 32, b"h" * 32, b"e" * 32)

    def refuse(*args: object, **kwargs: object) -> Leaf:
        raise AssertionError("the strict reader was used")

    monkeypatch.setattr(leaf_module.Leaf, "decode", refuse)
    assert commitments_at(leaf.encode(), 12345) == commitments(leaf)
    unsigned = dataclasses.replace(leaf, index=0, envelope_hash=None)
    assert commitments_at(unsigned.encode(), 0) == commitments(unsigned)


@given(leaves)
def test_a_canonical_leaf_is_itself_at_its_index(leaf: Leaf) -> None:
    assert is_leaf_at(leaf.encode(), leaf.index, *commitments(leaf)) == (
        # Only a time in the canonical uint 64 form, as every leaf we write has.
        leaf.record_time_us >= 2**32
    )


@given(leaves, st.integers(0, 200), st.binary(min_size=1, max_size=3), st.integers(-2, 2), hashes)
def test_the_whole_leaf_check_says_yes_only_where_the_strict_reader_agrees(
    leaf: Leaf, at: int, junk: bytes, shift: int, other: bytes
) -> None:
    data = leaf.encode()
    at %= len(data)
    index = max(leaf.index + shift, 0)
    own = commitments(leaf)
    # The leaf's own commitments, and each with one hash swapped for another.
    prev, identity, payload, envelope = own
    claims: list[Commitments] = [
        own,
        (other, identity, payload, envelope),
        (prev, other, payload, envelope),
        (prev, identity, other, envelope),
        (prev, identity, payload, other),
        (prev, identity, payload, None),
        (prev, identity + b"x", payload, envelope),  # hashes of any other length
        (prev, identity, payload[:31], envelope),
    ]
    for damaged in (data[:at] + junk + data[at + 1 :], data[:at], data + junk, data):
        for claim in claims:
            if is_leaf_at(damaged, index, *claim):
                assert strict(damaged, index) == claim
