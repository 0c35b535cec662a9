"""Reading signed checkpoints and stored tiles: what every reader of the log needs.

The integrator writes both; readers (lookups, proofs, witnessing, audits, backups) only
read them, so they import this module and never the integrator.
"""

from __future__ import annotations

from dataclasses import dataclass

from traceledger.store.conn import Conn
from traceledger.tlog.tiles import TileKey


@dataclass(frozen=True, slots=True)
class SignedCheckpoint:
    size: int
    root_hash: bytes
    note: str


async def latest_checkpoint(conn: Conn) -> SignedCheckpoint | None:
    row = await conn.fetchrow(
        "SELECT size, root_hash, note FROM checkpoints ORDER BY size DESC LIMIT 1"
    )
    if row is None:
        return None
    return SignedCheckpoint(row["size"], bytes(row["root_hash"]), row["note"])


async def fetch_tiles(conn: Conn, keys: set[TileKey]) -> dict[TileKey, bytes]:
    if not keys:
        return {}
    levels, idxs = zip(*sorted(keys), strict=True)
    rows = await conn.fetch(
        "SELECT t.level, t.idx, t.hashes FROM tiles t"
        " JOIN unnest($1::smallint[], $2::bigint[]) AS k(level, idx)"
        " ON t.level = k.level AND t.idx = k.idx",
        list(levels),
        list(idxs),
    )
    return {(r["level"], r["idx"]): bytes(r["hashes"]) for r in rows}
