"""EPCIS query results as an EPCISQueryDocument, optionally with proof of inclusion.

Events go into the document as the exact bytes the log stores (or, for a viewer from
whom confidential fields are withheld, as shown), so a receiver can hash each one and
compare it with its leaf. Pushed results (webhooks, WebSockets) carry the extension
member `traceledger:log`: the signed checkpoint they are proven against and, per event,
its log index, leaf and RFC 9162 inclusion proof. With the log's verifier key the
receiver proves every event is in the log, without trusting the channel or this server.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from traceledger.inspect.query_sql import Found
from traceledger.log.checkpoints import SignedCheckpoint
from traceledger.log.reader import LogReader, redacted_digests, redacted_sql
from traceledger.standards.epcis import utc_iso
from traceledger.store.conn import Conn
from traceledger.tlog.note import b64encode

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
LOG_MEMBER = "traceledger:log"


def _dumps(value: object) -> bytes:
    return json.dumps(value, ensure_ascii=False, separators=(",", ":")).encode()


def query_document(
    name: str,
    events: Sequence[bytes],
    *,
    subscription_id: str | None = None,
    log_proof: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> bytes:
    """The EPCISQueryDocument of `events` (each a JSON object's bytes), as bytes."""
    results: dict[str, object] = {"queryName": name}
    if subscription_id is not None:
        results["subscriptionID"] = subscription_id
    head = {
        "@context": [EPCIS_CONTEXT],
        "type": "EPCISQueryDocument",
        "schemaVersion": "2.0",
        "creationDate": utc_iso(now or datetime.now(UTC)),
    }
    body = (
        _dumps(head)[:-1]
        + b',"epcisBody":{"queryResults":'
        + _dumps(results)[:-1]
        + b',"resultsBody":{"eventList":['
        + b",".join(events)
        + b"]}}}"
    )
    if log_proof is not None:
        body += b',"' + LOG_MEMBER.encode() + b'":' + _dumps(log_proof)
    return body + b"}"


async def log_proof(
    conn: Conn, reader: LogReader, found: Sequence[Found], checkpoint: SignedCheckpoint
) -> dict[str, Any]:
    """`traceledger:log`: the checkpoint, and each event's index, leaf and inclusion proof
    against it (every event must lie below the checkpoint's size)."""
    indexes = sorted({f.idx for f in found})
    withheld = {f.idx for f in found if f.withheld}
    rows = await conn.fetch(
        f"SELECT e.idx, e.leaf, e.salts, {redacted_sql('e')} AS redacted"  # noqa: S608
        " FROM entries e WHERE e.idx = ANY($1::bigint[])",
        indexes,
    )
    leaves = {r["idx"]: bytes(r["leaf"]) for r in rows}
    # Version-2 leaves: the salts prove the whole event shown. Never for an event shown
    # with fields withheld: a withheld field's salt would let its value be guessed.
    salted = {
        r["idx"]: {
            "salts": b64encode(bytes(r["salts"])),
            "redacted": {
                name: b64encode(digest) for name, digest in redacted_digests(r["redacted"]).items()
            },
        }
        for r in rows
        if r["salts"] is not None and r["idx"] not in withheld
    }
    proofs = await reader.inclusion_proofs(indexes, checkpoint.size) if indexes else {}
    return {
        "checkpoint": checkpoint.note,
        "treeSize": checkpoint.size,
        "entries": [
            {
                "index": i,
                "leaf": b64encode(leaves[i]),
                "inclusionProof": [b64encode(h) for h in proofs[i]],
                # Fields its sender marked confidential were withheld from this receiver:
                # the leaf is proven, the shown event no longer hashes to it.
                **({"withheld": True} if i in withheld else {}),
                **salted.get(i, {}),
            }
            for i in indexes
        ],
    }
