"""The log side of witnessing: collect cosignatures on new checkpoints, serve cosigned ones.

Each round the leader (one process at a time, like the integrator) takes the newest
signed checkpoint and sends it to every configured witness that has not cosigned it
(c2sp.org/tlog-witness add-checkpoint), with a consistency proof from the size that
witness last cosigned. A 409 tells us the witness's real size (after a crash between its
answer and our commit, say): we retry once from there. Every returned cosignature is
verified against the witness's configured key before it is stored.

Readers then serve the newest checkpoint that a quorum of witnesses cosigned, with their
signature lines appended (traceledger.cosigned).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass
from typing import Protocol

import asyncpg

from traceledger.errors import NoteError, TraceledgerError
from traceledger.log.checkpoints import SignedCheckpoint, latest_checkpoint
from traceledger.log.reader import LogReader
from traceledger.store.leader import LeaderTask
from traceledger.store.locks import Lock
from traceledger.tlog.cosignature import Cosignature
from traceledger.tlog.note import b64encode, parse_note
from traceledger.tlog.witness_policy import WitnessEndpoint, WitnessPolicy

__all__ = ["Cosigner", "WitnessReply", "WitnessTransport"]

log = logging.getLogger(__name__)

TLOG_SIZE = "text/x.tlog.size"
_MAX_BACKOFF = 60.0


@dataclass(frozen=True, slots=True)
class WitnessReply:
    """A witness's answer to add-checkpoint: status, media type and (bounded) text."""

    status: int
    content_type: str
    text: str


class WitnessTransport(Protocol):
    """How add-checkpoint requests reach witnesses (HTTP in gateway.clients.witness).

    Raises WitnessUnreachableError when the witness cannot be reached or times out."""

    async def add_checkpoint(self, url: str, body: bytes) -> WitnessReply: ...


@dataclass
class _Standing:
    """What the cosigner knows of one witness: its last cosigned size, when to retry."""

    size: int | None = None  # None: not read from the database yet
    failures: int = 0
    retry_at: float = 0.0


class Cosigner:
    """Background task: ask witnesses to cosign each new checkpoint, store what they say."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        policy: WitnessPolicy,
        reader: LogReader,
        transport: WitnessTransport,
        *,
        interval: float = 1.0,
    ) -> None:
        # `reader` must see every signed checkpoint, not only cosigned ones: it proves
        # the new checkpoint consistent with what each witness saw.
        self._pool = pool
        self._policy = policy
        self._reader = reader
        self._transport = transport
        self._interval = interval
        self._standing = {w.key: _Standing() for w in policy.witnesses}
        self.task = LeaderTask(pool, "cosigner", Lock.COSIGNER, interval, self.cosign_once)

    async def cosign_once(self) -> bool:
        """One round: the newest checkpoint to every witness that has not cosigned it."""
        async with self._pool.acquire() as conn:
            latest = await latest_checkpoint(conn)
            if latest is None:
                return False
            self.task.position = latest.size
            have = {
                r["witness_key"]
                for r in await conn.fetch(
                    "SELECT witness_key FROM cosignatures WHERE size = $1", latest.size
                )
            }
            now = time.monotonic()
            due = [
                w
                for w in self._policy.witnesses
                if w.key not in have and self._standing[w.key].retry_at <= now
            ]
            for w in due:
                standing = self._standing[w.key]
                if standing.size is None:
                    last = await conn.fetchval(
                        "SELECT max(size) FROM cosignatures WHERE witness_key = $1", w.key
                    )
                    standing.size = last or 0
        results = await asyncio.gather(*(self._ask(w, latest) for w in due))
        rows = [
            (latest.size, w.key, w.name, c.line().removesuffix("\n"), c.timestamp)
            for w, c in zip(due, results, strict=True)
            if c is not None
        ]
        if rows:
            async with self._pool.acquire() as conn:
                await conn.executemany(
                    "INSERT INTO cosignatures (size, witness_key, witness_name, line, cosigned_at)"
                    " VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING",
                    rows,
                )
        return False

    async def _ask(self, witness: WitnessEndpoint, cp: SignedCheckpoint) -> Cosignature | None:
        """The witness's verified cosignature of `cp`, or None (logged, retried later)."""
        standing = self._standing[witness.key]
        try:
            cosignature = await self._request(witness, cp, standing)
        except TraceledgerError as exc:
            log.warning("witness %s (%s): %s", witness.name, witness.url, exc)
            cosignature = None
        if cosignature is None:
            standing.failures += 1
            delay = min(_MAX_BACKOFF, self._interval * 2**standing.failures)
            standing.retry_at = time.monotonic() + delay
        else:
            standing.failures, standing.retry_at, standing.size = 0, 0.0, cp.size
        return cosignature

    async def _request(
        self, witness: WitnessEndpoint, cp: SignedCheckpoint, standing: _Standing
    ) -> Cosignature | None:
        old = standing.size or 0
        for _ in range(2):  # a 409 corrects our idea of the witness's size once per round
            if old > cp.size:
                log.error(
                    "witness %s has cosigned size %d, beyond this log's checkpoint %d: "
                    "was the log restored from an old backup?",
                    witness.name,
                    old,
                    cp.size,
                )
                return None
            proof = await self._reader.consistency_proof(old, cp.size) if old else []
            body = f"old {old}\n" + "".join(b64encode(h) + "\n" for h in proof) + "\n" + cp.note
            reply = await self._transport.add_checkpoint(witness.url, body.encode("utf-8"))
            if reply.status == 200:
                return self._verify(witness, cp, reply.text)
            if reply.status == 409 and reply.content_type == TLOG_SIZE:
                reported = reply.text.strip()
                if not reported.isdigit() or int(reported) == old:
                    log.error("witness %s refuses a fork at size %s", witness.name, old)
                    return None
                old = standing.size = int(reported)
                continue
            log.warning("witness %s answered %d: %s", witness.name, reply.status, reply.text[:500])
            return None
        return None

    @staticmethod
    def _verify(witness: WitnessEndpoint, cp: SignedCheckpoint, text: str) -> Cosignature | None:
        """The response line from this witness's key that verifies, as the spec asks:
        lines from other keys are ignored, a bad line from its key is an error."""
        body = parse_note(cp.note).text
        for line in text.splitlines():
            try:
                cosignature = Cosignature.parse(line)
            except NoteError:
                continue
            if not witness.verifier.matches(cosignature.name, cosignature.key_hash):
                continue
            if witness.verifier.verify(body, cosignature):
                return cosignature
            log.error("witness %s returned a cosignature that does not verify", witness.name)
            return None
        log.warning("witness %s returned no cosignature from its key", witness.name)
        return None
