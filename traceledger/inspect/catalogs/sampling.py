"""Auditable random sampling of arrivals (口岸验证抽查) from the log's own public randomness.

The seed is the root hash of the first signed checkpoint covering the arrival: nobody
knew it before the arrival was sequenced, and anyone holding the log can recompute the draw."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from traceledger.store.conn import Conn

DEFAULT_BASE_RATE = 0.02  # share of arrivals matching no entry that are still sampled


SAMPLING_METHOD = (
    "draw = int.from_bytes(SHA-256(seed || UTF-8(eventID) || UTF-8(identifier))[:8], 'big')"
    " / 2**64; selected when draw < rate; seed = root hash of the first signed checkpoint"
    " whose size exceeds the arrival's log index"
)


def sampling_draw(seed: bytes, event_id: str, identifier: str) -> tuple[int, float]:
    """The 64-bit draw for one identifier of one arrival, and its value in [0, 1)."""
    digest = hashlib.sha256(seed + event_id.encode() + identifier.encode()).digest()
    bits = int.from_bytes(digest[:8], "big")
    return bits, bits / 2**64


@dataclass(frozen=True, slots=True)
class Seed:
    size: int
    root_hash: bytes
    note: str


async def first_covering_checkpoint(conn: Conn, idx: int) -> Seed | None:
    """The first signed checkpoint covering index `idx` (smallest size > idx), if any yet."""
    row = await conn.fetchrow(
        "SELECT size, root_hash, note FROM checkpoints WHERE size > $1 ORDER BY size LIMIT 1", idx
    )
    return None if row is None else Seed(row["size"], bytes(row["root_hash"]), row["note"])
