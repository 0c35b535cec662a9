"""Checking what the ledger pushed (a subscription's EPCISQueryDocument, a recall notice)
on the receiving side, trusting nothing but the log's verifier key.

A push carries `traceledger:log`: a signed checkpoint and, for each event in log order,
its index, leaf and inclusion proof. The checkpoint must carry the log's signature,
each leaf must be in its tree, and each event shown must hash to what its leaf commits
to (a version-2 leaf: its salted field digests, with the salts the entry carries), unless
the entry says fields were withheld from this receiver. Events are hashed as
the ledger stores them: compact JSON (no spaces, UTF-8, keys in the order received),
which a parse and re-serialization with Python's json module reproduces.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from traceledger.errors import IntegrityError, NoteError, ProofError
from traceledger.tlog import merkle
from traceledger.tlog.checkpoint import Checkpoint, open_checkpoint
from traceledger.tlog.disclosure import commitment, fields_of
from traceledger.tlog.leaf import DISCLOSURE_VERSION, Leaf
from traceledger.tlog.note import Verifier, b64decode_strict


@dataclass
class PushedReport:
    checkpoint: Checkpoint
    verified: list[int] = field(default_factory=list)  # indexes proven with their content
    withheld: list[int] = field(default_factory=list)  # included; content not all shown


def stored_bytes(event: Mapping[str, Any]) -> bytes:
    """An event as the ledger stores (and hashes) it."""
    return json.dumps(event, ensure_ascii=False, separators=(",", ":")).encode()


def verify_pushed(
    log: Mapping[str, Any], events: Sequence[Mapping[str, Any]], verifier: Verifier
) -> PushedReport:
    """Prove each of `events` (paired in order with `log["entries"]`) is in the log.
    Raises IntegrityError naming the first thing that does not hold."""
    try:
        checkpoint = open_checkpoint(str(log.get("checkpoint", "")), verifier, verifier.name)
    except NoteError as exc:
        raise IntegrityError(None, f"the checkpoint does not verify: {exc}") from exc
    entries = log.get("entries")
    if log.get("treeSize") != checkpoint.size or not isinstance(entries, list):
        raise IntegrityError(None, "treeSize or entries do not match the signed checkpoint")
    if len(entries) != len(events):
        raise IntegrityError(None, f"{len(events)} events but {len(entries)} proofs")
    report = PushedReport(checkpoint)
    for entry, event in zip(entries, events, strict=True):
        index = entry.get("index")
        try:
            leaf_bytes = b64decode_strict(str(entry.get("leaf")))
            leaf = Leaf.decode(leaf_bytes, index=index)
            proof = [b64decode_strict(str(h)) for h in entry.get("inclusionProof", [])]
            merkle.verify_inclusion(
                merkle.leaf_hash(leaf_bytes),
                leaf.index,
                checkpoint.size,
                proof,
                checkpoint.root_hash,
            )
        except (NoteError, ProofError) as exc:
            raise IntegrityError(index, f"not proven in the log: {exc}") from exc
        if leaf.index != index:
            raise IntegrityError(index, f"the leaf is for index {leaf.index}")
        if entry.get("withheld"):
            report.withheld.append(leaf.index)
        elif _committed(entry, event, leaf) == leaf.payload_hash:
            report.verified.append(leaf.index)
        else:
            raise IntegrityError(index, "the event is not what its leaf commits to")
    return report


def _committed(entry: Mapping[str, Any], event: Mapping[str, Any], leaf: Leaf) -> bytes | None:
    """What the leaf should hold for `event`: the stored bytes' hash (version 1), or the
    commitment to its salted field digests, with the salts the push carries (version 2)."""
    if leaf.version != DISCLOSURE_VERSION:
        return hashlib.sha256(stored_bytes(event)).digest()
    try:
        salts = b64decode_strict(str(entry.get("salts")))
        redacted = {
            str(name): b64decode_strict(str(digest))
            for name, digest in (entry.get("redacted") or {}).items()
        }
        return commitment(f.digest for f in fields_of(event, salts, redacted))
    except (NoteError, ValueError, TypeError, AttributeError):
        return None
