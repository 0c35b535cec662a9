"""The last checkpoint the log published, kept in a file outside the database.

A database restored from a backup can be older than what the log already showed the
world: clients, auditors and witnesses may hold a checkpoint of size 1000 while the
restored tables end at 900. Signing a new checkpoint from there would fork the log (two
signed trees that no consistency proof joins), and appending would hand out indexes
900.. a second time. So the integrator writes every checkpoint it commits to this file
too, and before signing (and at start) checks that the database's tree extends it; if
not it refuses, and the sequencer refuses appends, until the operator recovers.

The file is the signed note itself, so it is self-describing and verified on read: a
file from another log or a hand-edited one is not trusted.
"""

from __future__ import annotations

import datetime
import getpass
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

from traceledger.errors import (
    ConfigError,
    DivergedFromPublishedError,
    LogBehindPublishedError,
    NoteError,
)
from traceledger.tlog.checkpoint import open_checkpoint
from traceledger.tlog.note import Verifier, b64encode

FORK_AUDIT_FILE = "accepted-forks.jsonl"


@dataclass(frozen=True, slots=True)
class Published:
    size: int
    root_hash: bytes
    note: str


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomically(path: Path, data: bytes) -> None:
    """Replace `path` with `data` so a crash leaves the old or the new content, never half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp")
    with tmp.open("wb") as out:
        out.write(data)
        out.flush()
        os.fsync(out.fileno())
    tmp.replace(path)
    _fsync_dir(path.parent)


class PublishedCheckpoint:
    """Reads and writes the published-checkpoint file; one per integrator."""

    def __init__(self, path: Path, verifier: Verifier) -> None:
        self.path = path
        self._verifier = verifier
        # (st_ino, st_mtime_ns, st_size) of the file last read, and what it held: the
        # integrator reads it every round, the file rarely changes under it.
        self._seen: tuple[tuple[int, int, int], Published] | None = None

    def read(self) -> Published | None:
        """The published checkpoint, or None if this log has published none yet."""
        try:
            st = self.path.stat()
        except FileNotFoundError:
            self._seen = None
            return None
        stamp = (st.st_ino, st.st_mtime_ns, st.st_size)
        if self._seen is not None and self._seen[0] == stamp:
            return self._seen[1]
        note = self.path.read_text(encoding="utf-8")
        try:
            cp = open_checkpoint(note, self._verifier, self._verifier.name)
        except NoteError as exc:
            raise ConfigError(
                f"{self.path} does not hold a checkpoint signed by this log's key "
                f"({exc}); if it belongs to another log, move it away"
            ) from exc
        published = Published(cp.size, cp.root_hash, note)
        self._seen = (stamp, published)
        return published

    def write(self, note: str) -> None:
        write_atomically(self.path, note.encode())

    def behind(self, published: Published, tree_size: int) -> LogBehindPublishedError:
        return LogBehindPublishedError(
            f"the log published a checkpoint of size {published.size} (kept in {self.path}) "
            f"but the database holds a tree of only {tree_size} entries: it was probably "
            f"restored from an older backup. {self._refusing()} {recovery_steps()}",
            published_size=published.size,
            tree_size=tree_size,
        )

    def diverged(
        self, published: Published, tree_size: int, why: str
    ) -> DivergedFromPublishedError:
        return DivergedFromPublishedError(
            f"the database's tree of size {tree_size} does not extend the checkpoint of "
            f"size {published.size} the log published (kept in {self.path}): {why}. "
            f"{self._refusing()} {recovery_steps()}",
            published_size=published.size,
            tree_size=tree_size,
        )

    @staticmethod
    def _refusing() -> str:
        return (
            "Refusing to sign checkpoints (that would fork the log) and to accept events "
            "(they would take indexes the published log already used, and be lost on "
            "recovery)."
        )


def recovery_steps() -> str:
    return (
        "To recover: (1) restore a newer backup that contains the published checkpoint "
        "(`traceledger restore --force-clean FILE`, service stopped), or (2) copy the "
        "missing entries back byte for byte from a streaming replica or a mirror of the "
        "log; the log then continues by itself. Re-sending the enterprises' signed "
        "envelopes recovers their events but not the published tree (record times "
        "differ), so it needs (3), the last resort: `traceledger accept-fork --reason "
        "'...'`, which archives the published checkpoint, records the reason, and lets "
        "the log sign a tree that everyone holding the old checkpoint will see as a fork."
    )


def accept_fork(
    published_file: PublishedCheckpoint,
    forks_dir: Path,
    published: Published,
    tree_size: int,
    tree_root: bytes | None,
    reason: str,
) -> Path:
    """Archive the published checkpoint and record why the operator gives it up.

    The record is appended (one JSON line, fsynced) before the published file is removed,
    so a crash leaves either the refusal in force or the fork recorded.
    """
    now = datetime.datetime.now(datetime.UTC)
    forks_dir.mkdir(parents=True, exist_ok=True)
    archived = forks_dir / f"{now:%Y%m%dT%H%M%S.%fZ}-size-{published.size}.checkpoint"
    write_atomically(archived, published.note.encode())
    try:
        user = getpass.getuser()
    except (KeyError, OSError):  # no login name (some containers)
        user = "unknown"
    record = {
        "accepted_at": now.isoformat(),
        "user": user,
        "host": socket.gethostname(),
        "reason": reason,
        "published_size": published.size,
        "published_root": b64encode(published.root_hash),
        "published_note": published.note,
        "archived_as": archived.name,
        "database_tree_size": tree_size,
        "database_tree_root": b64encode(tree_root) if tree_root is not None else None,
    }
    with (forks_dir / FORK_AUDIT_FILE).open("a", encoding="utf-8") as audit:
        audit.write(json.dumps(record, ensure_ascii=False) + "\n")
        audit.flush()
        os.fsync(audit.fileno())
    published_file.path.unlink()
    _fsync_dir(published_file.path.parent)
    return archived
