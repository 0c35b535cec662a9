"""The leaf: the exact bytes the Merkle tree commits to for one log entry.

A leaf is the MessagePack array

    [version, index, prev_leaf_hash, record_time_us, identity, payload_hash, envelope_hash]

`prev_leaf_hash` is the RFC 9162 leaf hash of the previous leaf (zeros for index 0), so
the rows form a hash chain as well as a Merkle tree. The payload and envelope are stored
beside the leaf and only their SHA-256 is committed, so either can be redacted later
without breaking the tree.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

import msgpack

from traceledger.errors import IntegrityError

LEAF_VERSION = 1
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

    def encode(self) -> bytes:
        packed: bytes = msgpack.packb(
            [
                LEAF_VERSION,
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
        if not isinstance(fields, list) or len(fields) != 7 or fields[0] != LEAF_VERSION:
            raise IntegrityError(where, "leaf is not a version-1 leaf array")
        _, idx, prev, rtime, identity, payload_hash, envelope_hash = fields
        if not (
            isinstance(idx, int)
            and isinstance(rtime, int)
            and _is_hash(prev)
            and _is_hash(identity)
            and _is_hash(payload_hash)
            and (envelope_hash is None or _is_hash(envelope_hash))
        ):
            raise IntegrityError(where, "leaf fields have the wrong types")
        leaf = cls(idx, prev, rtime, identity, payload_hash, envelope_hash)
        if leaf.encode() != data:
            raise IntegrityError(where, "leaf is not canonically encoded")
        return leaf


def _is_hash(value: object) -> bool:
    return isinstance(value, bytes) and len(value) == 32
