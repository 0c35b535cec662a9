"""Which checkpoint a log with witnesses serves: the newest one a quorum cosigned.

A stale but witnessed checkpoint is better than a fresh one only the operator vouches
for: a client that trusts the witnesses then knows no one was shown another history.
The cosigner (traceledger.cosigner) stores verified cosignature lines; this module reads
them back, for the reader and for lookups that report who vouches for their checkpoint.
"""

from __future__ import annotations

import asyncpg

from traceledger.errors import NoteError, NotFoundError
from traceledger.log.checkpoints import SignedCheckpoint
from traceledger.log.reader import LogReader
from traceledger.store.conn import Conn
from traceledger.tlog.note import parse_note
from traceledger.tlog.witness_policy import WitnessPolicy

__all__ = ["WitnessedReader", "cosigned_checkpoint", "witness_names"]


async def cosigned_checkpoint(conn: Conn, policy: WitnessPolicy) -> SignedCheckpoint | None:
    """The newest checkpoint `policy.quorum` configured witnesses cosigned, their lines
    appended to the log's note (ordered by witness name, so the text is stable)."""
    row = await conn.fetchrow(
        # The inner query walks the primary key backwards and stops at the first size
        # with enough cosignatures: cost grows with the witnesses, not with history.
        "WITH best AS (SELECT size FROM cosignatures WHERE witness_key = ANY($1::text[])"
        "              GROUP BY size HAVING count(*) >= $2 ORDER BY size DESC LIMIT 1)"
        " SELECT c.size, c.root_hash, c.note,"
        "        array_agg(w.line ORDER BY w.witness_name) AS lines"
        " FROM best JOIN checkpoints c ON c.size = best.size"
        " JOIN cosignatures w ON w.size = c.size AND w.witness_key = ANY($1::text[])"
        " GROUP BY c.size, c.root_hash, c.note",
        policy.keys,
        policy.quorum,
    )
    if row is None:
        return None
    note = row["note"] + "".join(line + "\n" for line in row["lines"])
    return SignedCheckpoint(row["size"], bytes(row["root_hash"]), note)


def witness_names(note: str) -> list[str]:
    """Names on a served checkpoint's signature lines other than the log's own key.

    Only cosigned_checkpoint adds lines to the log's note, and only verified ones from
    configured witnesses, so these are the witnesses vouching for the checkpoint.
    """
    try:
        parsed = parse_note(note)
    except NoteError:
        return []
    origin = parsed.text.split("\n", 1)[0]
    return sorted({s.name for s in parsed.signatures if s.name != origin})


class WitnessedReader(LogReader):
    """A LogReader whose checkpoint is the newest one the witness quorum cosigned.

    Every proof, tile and lookup goes through `checkpoint()`, so all of them are served
    against a checkpoint the witnesses vouch for, and no bigger tree is exposed.
    """

    def __init__(self, pool: asyncpg.Pool, policy: WitnessPolicy, **options: int) -> None:
        super().__init__(pool, **options)
        self.policy = policy

    async def checkpoint(self) -> SignedCheckpoint:
        async with self._pool.acquire() as conn:
            cp = await cosigned_checkpoint(conn, self.policy)
        if cp is None:
            raise NotFoundError(
                f"no checkpoint is cosigned by {self.policy.quorum} of the "
                f"{len(self.policy.witnesses)} witnesses yet"
            )
        return cp


def log_reader(pool: asyncpg.Pool, policy: WitnessPolicy | None) -> LogReader:
    """The reader the service should use: witnessed when witnesses are configured."""
    return LogReader(pool) if policy is None else WitnessedReader(pool, policy)
