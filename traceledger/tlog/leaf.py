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
        and head[:2] in (b"\x97\x01", b"\x97\x02")
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


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == 32
