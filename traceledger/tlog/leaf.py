"""The leaf: the exact bytes the Merkle tree commits to for one log entry.

A leaf is the MessagePack array

    [version, index, prev_leaf_hash, record_time_us, identity, payload_hash, envelope_hash]

`prev_leaf_hash` is the RFC 9162 leaf hash of the previous leaf (zeros for index 0), so
the rows form a hash chain as well as a Merkle tree. The payload and envelope are stored
beside the leaf and only their SHA-256 is committed, so either can be redacted later
without breaking the tree.

Version 2 has the same layout; its `payload_hash` slot commits to the event as sorted
salted field digests instead (traceledger/tlog/disclosure.py), so an answer can disclose
some fields and withhold others, and a field can be redacted, with every proof intact.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import msgpack

from traceledger.errors import IntegrityError

LEAF_VERSION = 1
DISCLOSURE_VERSION = 2  # the payload slot commits to salted field digests
VERSIONS = (LEAF_VERSION, DISCLOSURE_VERSION)
GENESIS_HASH = bytes(32)


def sha256(data: bytes) -> bytes:
    return hashlib.sha256(data).digest()


@dataclass(frozen=True, slots=True)
class Leaf:
    index: int
    prev_hash: bytes
    record_time_us: int
    identity: bytes
    payload_hash: bytes
    envelope_hash: bytes | None
    version: int = LEAF_VERSION

    def encode(self) -> bytes:
        packed: bytes = msgpack.packb(
            [
                self.version,
                self.index,
                self.prev_hash,
                self.record_time_us,
                self.identity,
                self.payload_hash,
                self.envelope_hash,
            ],
            use_bin_type=True,
        )
        return packed

    @classmethod
    def decode(cls, data: bytes, *, index: int | None = None) -> Leaf:
        """Strict decode: the bytes must be exactly the canonical encoding of the fields."""
        where = index
        try:
            fields = msgpack.unpackb(data, raw=False, use_list=True, strict_map_key=True)
        except (ValueError, msgpack.ExtraData, msgpack.FormatError, msgpack.StackError) as exc:
            raise IntegrityError(where, f"leaf is not MessagePack: {exc}") from exc
        if not isinstance(fields, list) or len(fields) != 7 or fields[0] not in VERSIONS:
            raise IntegrityError(where, "leaf is not a version-1 or version-2 leaf array")
        version, idx, prev, rtime, identity, payload_hash, envelope_hash = fields
        if not (
            isinstance(idx, int)
            and isinstance(rtime, int)
            and _is_hash(prev)
            and _is_hash(identity)
            and _is_hash(payload_hash)
            and (envelope_hash is None or _is_hash(envelope_hash))
        ):
            raise IntegrityError(where, "leaf fields have the wrong types")
        # The fields in order are exactly what encode() packs: one C call checks the form.
        if msgpack.packb(fields, use_bin_type=True) != data:
            raise IntegrityError(where, "leaf is not canonically encoded")
        return cls(idx, prev, rtime, identity, payload_hash, envelope_hash, version)


_BIN32 = b"\xc4\x20"  # MessagePack bin 8 of 32 bytes: how every hash field is packed


# What the verifier compares of a leaf: (prev_hash, identity, payload_hash, envelope_hash).
Commitments = tuple[bytes, bytes, bytes, bytes | None]


def commitments_at(data: bytes, index: int) -> Commitments:
    """The hashes a leaf expected at `index` commits to, read by slicing its one canonical
    layout (the verifier reads millions of leaves); any other bytes go through
    Leaf.decode, which names the problem."""
    head = data[:2] + msgpack.packb(index) + _BIN32
    at = len(head) + 32
    size = len(data)
    if (
        (size == at + 78 or size == at + 111)
        and head[:2] in _HEADS
        and data.startswith(head)
        and data[at] == 0xCF  # uint 64: record times are microseconds since 1970
        and data[at + 1 : at + 5] != b"\0\0\0\0"  # else a shorter form is canonical
        and data[at + 9 : at + 11] == _BIN32
        and data[at + 43 : at + 45] == _BIN32
    ):
        if size == at + 78 and data[at + 77] == 0xC0:
            return data[len(head) : at], data[at + 11 : at + 43], data[at + 45 : at + 77], None
        if size == at + 111 and data[at + 77 : at + 79] == _BIN32:
            return (
                data[len(head) : at],
                data[at + 11 : at + 43],
                data[at + 45 : at + 77],
                data[at + 79 :],
            )
    leaf = Leaf.decode(data, index=index)
    if leaf.index != index:
        raise IntegrityError(index, f"leaf says index {leaf.index}: rows were moved")
    return leaf.prev_hash, leaf.identity, leaf.payload_hash, leaf.envelope_hash


def is_leaf_at(
    data: bytes,
    index: int,
    prev: bytes,
    identity: bytes,
    payload_hash: bytes,
    envelope_hash: bytes | None,
) -> bool:
    """Whether `data` is the canonical leaf at `index` committing to exactly these hashes
    (with any record time): the verifier's fast path, one comparison of the whole leaf.
    True only where commitments_at would find the same commitments; False says nothing
    more (commitments_at then names the problem)."""
    if not (
        len(prev) == len(identity) == len(payload_hash) == 32
        and (envelope_hash is None or len(envelope_hash) == 32)
    ):
        return False  # the layout below is that of 32-byte hashes only
    at = len(data) - (78 if envelope_hash is None else 111)  # where the record time is
    expected = b"".join(
        (
            data[:2],
            _packed_index(index),
            _BIN32,
            prev,
            data[at : at + 9],
            _BIN32,
            identity,
            _BIN32,
            payload_hash,
            _NIL if envelope_hash is None else _BIN32 + envelope_hash,
        )
    )
    return (
        data == expected
        and data[:2] in _HEADS
        and data[at] == 0xCF  # the canonical form of a time in microseconds since 1970
        and data[at + 1 : at + 5] != b"\0\0\0\0"
    )


def _packed_index(index: int) -> bytes:
    """msgpack.packb(index) for an index >= 0, without the call."""
    if index < 0x80:
        return bytes((index,))
    for marker, width, limit in _UINTS:
        if index < limit:
            return marker + index.to_bytes(width, "big")
    raise ValueError(f"index {index} does not fit in 64 bits")


_HEADS = (b"\x97\x01", b"\x97\x02")  # an array of 7, version 1 or 2
_NIL = b"\xc0"
_UINTS = ((b"\xcc", 1, 1 << 8), (b"\xcd", 2, 1 << 16), (b"\xce", 4, 1 << 32), (b"\xcf", 8, 1 << 64))


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == 32
