"""Offline verification of a trace history answer (what `verify-history` runs).

Trusts nothing but the log's verifier key: the checkpoint must carry a valid signature,
every event's leaf must be included in that checkpoint's tree, and every event's stored
payload must hash to what its leaf commits to, and say what the answer shows.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from traceledger import merkle
from traceledger.checkpoint import open_checkpoint
from traceledger.errors import IntegrityError, NoteError, ProofError
from traceledger.leaf import Leaf
from traceledger.note import Verifier


@dataclass
class HistoryReport:
    tree_size: int
    verified: int = 0
    withheld: int = 0  # confidential events: inclusion proven, content not shown
    failures: list[str] = field(default_factory=list)


def _b64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise ValueError("not a base64 string")  # noqa: TRY004 - reported per event
    return base64.b64decode(value, validate=True)


def verify_history(answer: Mapping[str, Any], verifier: Verifier) -> HistoryReport:
    try:
        checkpoint = open_checkpoint(str(answer.get("checkpoint", "")), verifier)
    except NoteError as exc:
        raise IntegrityError(None, f"the checkpoint does not verify: {exc}") from exc
    if answer.get("treeSize") != checkpoint.size:
        raise IntegrityError(None, "treeSize differs from the signed checkpoint")
    report = HistoryReport(checkpoint.size)
    for event in answer.get("events", []):
        try:
            shown = _check_event(event, checkpoint.size, checkpoint.root_hash)
        except (ValueError, binascii.Error, ProofError, IntegrityError, TypeError) as exc:
            report.failures.append(f"event {event.get('index')}: {exc}")
            continue
        if shown:
            report.verified += 1
        else:
            report.withheld += 1
    return report


def _check_event(event: Mapping[str, Any], size: int, root: bytes) -> bool:
    """Check one event; True if its content was checked too, False if withheld."""
    leaf_bytes = _b64(event.get("leaf"))
    leaf = Leaf.decode(leaf_bytes)
    if leaf.index != event.get("index"):
        raise ValueError(f"the leaf is for index {leaf.index}")
    proof = [_b64(h) for h in event.get("inclusionProof", [])]
    merkle.verify_inclusion(merkle.leaf_hash(leaf_bytes), leaf.index, size, proof, root)
    if event.get("payload") is None:
        return False
    payload = _b64(event["payload"])
    if hashlib.sha256(payload).digest() != leaf.payload_hash:
        raise ValueError("the payload is not what the leaf commits to")
    stored = json.loads(payload)
    for name in ("eventID", "type"):
        if stored.get(name) != event.get(name):
            raise ValueError(f"{name} shown differs from the signed payload")
    return True
