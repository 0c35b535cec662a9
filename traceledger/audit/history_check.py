"""Offline verification of a trace history answer (what `verify-history` runs).

Trusts nothing but the logs' verifier keys: each checkpoint must carry a valid signature
by its log's key, every event's leaf must be included in its log's checkpoint tree, and
every event's stored payload must hash to what its leaf commits to, and say what the
answer shows. An answer spanning time shards (traceledger/shards.py) names each event's
log (`log`) and holds one checkpoint per log (`logs`); an event of a log the caller has
no key for fails: it is never taken on the answer's word.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from traceledger.audit.status_check import check_status
from traceledger.errors import IntegrityError, NoteError, ProofError
from traceledger.standards import cbv
from traceledger.tlog import merkle
from traceledger.tlog.checkpoint import Checkpoint, open_checkpoint
from traceledger.tlog.leaf import Leaf
from traceledger.tlog.note import Verifier, parse_note


@dataclass
class HistoryReport:
    tree_size: int  # of the top-level (current log's) checkpoint
    verified: int = 0
    withheld: int = 0  # confidential events: inclusion proven, content not shown
    failures: list[str] = field(default_factory=list)
    # Every log whose checkpoint verified, with its tree size.
    logs: dict[str, int] = field(default_factory=dict)


def _b64(value: Any) -> bytes:
    if not isinstance(value, str):
        raise ValueError("not a base64 string")  # noqa: TRY004 - reported per event
    return base64.b64decode(value, validate=True)


def note_origin(note: str) -> str:
    """The origin a checkpoint note claims (its first line), before any check."""
    try:
        return parse_note(note).text.split("\n", 1)[0]
    except NoteError as exc:
        raise IntegrityError(None, f"the checkpoint is not a signed note: {exc}") from exc


def verify_history(
    answer: Mapping[str, Any], verifier: Verifier | Mapping[str, Verifier]
) -> HistoryReport:
    """Check `answer` against one log's key, or against a key per log (origin -> key)."""
    keys = {verifier.name: verifier} if isinstance(verifier, Verifier) else dict(verifier)
    note = str(answer.get("checkpoint", ""))
    top = note_origin(note)
    if top not in keys:
        raise IntegrityError(None, f"no trusted key for the log {top!r} of the checkpoint")
    try:
        checkpoint = open_checkpoint(note, keys[top], top)
    except NoteError as exc:
        raise IntegrityError(None, f"the checkpoint does not verify: {exc}") from exc
    if answer.get("treeSize") != checkpoint.size:
        raise IntegrityError(None, "treeSize differs from the signed checkpoint")
    report = HistoryReport(checkpoint.size, logs={top: checkpoint.size})
    # Each other log's checkpoint, or why it is not trusted (then its events fail).
    trees: dict[str, Checkpoint | str] = {top: checkpoint}
    for entry in answer.get("logs") or ():
        origin = str(entry.get("origin"))
        if origin == top:
            if entry.get("checkpoint") != note:
                raise IntegrityError(None, f"two checkpoints for the log {origin!r}")
            continue
        trees[origin] = _open_log(entry, keys.get(origin))
        if isinstance(trees[origin], Checkpoint):
            report.logs[origin] = entry["treeSize"]
    proven: dict[tuple[str, int], Mapping[str, Any]] = {}
    for event in answer.get("events", []):
        log = event.get("log", top)
        tree = trees.get(log, f"the answer holds no checkpoint for the log {log!r}")
        if isinstance(tree, str):
            report.failures.append(f"event {log} {event.get('index')}: {tree}")
            continue
        try:
            shown = _check_event(event, tree.size, tree.root_hash)
        except (ValueError, binascii.Error, ProofError, IntegrityError, TypeError) as exc:
            report.failures.append(f"event {log} {event.get('index')}: {exc}")
            continue
        if shown is not None:
            report.verified += 1
            proven[(str(log), int(event["index"]))] = shown
        else:
            report.withheld += 1
    if not report.failures:  # conclusions are only checked from events all proven
        report.failures += check_status(answer, proven, top)
    return report


def _open_log(entry: Mapping[str, Any], verifier: Verifier | None) -> Checkpoint | str:
    """A past log's checkpoint from the answer's `logs`, verified; else why not."""
    origin = entry.get("origin")
    if verifier is None:
        return f"no trusted key for the log {origin!r}"
    try:
        cp = open_checkpoint(str(entry.get("checkpoint", "")), verifier, str(origin))
    except NoteError as exc:
        return f"the checkpoint of the log {origin!r} does not verify: {exc}"
    if entry.get("treeSize") != cp.size:
        return f"treeSize of the log {origin!r} differs from its signed checkpoint"
    return cp


def _check_event(event: Mapping[str, Any], size: int, root: bytes) -> Mapping[str, Any] | None:
    """Check one event; the proven payload if its content was checked too, None if withheld."""
    leaf_bytes = _b64(event.get("leaf"))
    leaf = Leaf.decode(leaf_bytes)
    if leaf.index != event.get("index"):
        raise ValueError(f"the leaf is for index {leaf.index}")
    proof = [_b64(h) for h in event.get("inclusionProof", [])]
    merkle.verify_inclusion(merkle.leaf_hash(leaf_bytes), leaf.index, size, proof, root)
    if event.get("payload") is None:
        return None
    payload = _b64(event["payload"])
    if hashlib.sha256(payload).digest() != leaf.payload_hash:
        raise ValueError("the payload is not what the leaf commits to")
    stored = json.loads(payload)
    for name in ("eventID", "type", "action"):
        if stored.get(name) != event.get(name):
            raise ValueError(f"{name} shown differs from the signed payload")
    # What status is computed from must be what was signed.
    for name in ("bizStep", "disposition"):
        if cbv.normalized_or_raw(name, stored.get(name)) != event.get(name):
            raise ValueError(f"{name} shown differs from the signed payload")
    if not isinstance(stored, dict):
        raise ValueError("the payload is not an event")  # noqa: TRY004 - reported per event
    return stored
