"""A transparency log witness (c2sp.org/tlog-witness), without HTTP.

A witness is a party other than the log operator (a regulator, an industry body) that
remembers, for every log it watches, the last checkpoint it cosigned, and cosigns a new
one only if it is signed by the log and provably extends that one. A log that showed two
parties two different histories could then not get both cosigned by the same witness.

Why a state file and not PostgreSQL: the witness must not depend on the operator it
watches, so it keeps nothing in the ledger's database. Its home folder holds its key
(`witness-key.pem`), its state (`state.json`, replaced atomically with fsync + rename,
and written before any cosignature leaves the process), and a lock file that keeps a
second witness process off the same state. The state is tiny (one line per log), so
rewriting it per request is cheap next to the signature and the fsync.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import re
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from traceledger.errors import (
    ConfigError,
    NoteError,
    ProofError,
    WitnessBadProofError,
    WitnessConflictError,
    WitnessForbiddenError,
    WitnessMalformedError,
    WitnessUnknownLogError,
)
from traceledger.log.logkey import load_or_create_log_key
from traceledger.tlog import merkle
from traceledger.tlog.checkpoint import MAX_TREE_SIZE, Checkpoint
from traceledger.tlog.cosignature import Cosignature, CosignatureSigner
from traceledger.tlog.note import MAX_NOTE_SIZE, Verifier, b64decode_strict, b64encode, open_note
from traceledger.tlog.note import parse_note as parse_signed_note

__all__ = [
    "MAX_PROOF_LINES",
    "MAX_REQUEST_SIZE",
    "AddCheckpoint",
    "LogState",
    "StateFile",
    "Witness",
    "parse_add_checkpoint",
    "parse_log_spec",
]

log = logging.getLogger(__name__)

MAX_PROOF_LINES = 63
"""The spec's limit on consistency proof lines (a proof never needs more)."""

MAX_REQUEST_SIZE = MAX_NOTE_SIZE + 4096
"""Largest add-checkpoint body: a whole note plus the old size and 63 proof lines."""

_OLD_LINE = re.compile("old (0|[1-9][0-9]{0,19})")
_STATE_VERSION = 1


@dataclass(frozen=True)
class AddCheckpoint:
    """A parsed add-checkpoint request: old size, consistency proof, signed checkpoint."""

    old_size: int
    proof: tuple[bytes, ...]
    note: str


def parse_add_checkpoint(body: bytes) -> AddCheckpoint:
    """Read an add-checkpoint body strictly; raise WitnessMalformedError on any deviation.

    The body is "old <size>\\n", zero to 63 base64 hash lines, an empty line, then the
    signed checkpoint note. Proof lines are never empty, so the first blank line ends them.
    """
    if len(body) > MAX_REQUEST_SIZE:
        raise WitnessMalformedError(f"request body is over {MAX_REQUEST_SIZE} bytes")
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError:
        raise WitnessMalformedError("request body is not UTF-8") from None
    head, blank, note = text.partition("\n\n")
    if not blank:
        raise WitnessMalformedError("no empty line between the old size and the checkpoint")
    old_line, *proof_lines = head.split("\n")
    match = _OLD_LINE.fullmatch(old_line)
    if match is None:
        raise WitnessMalformedError("the first line must be 'old <size>' (decimal, no zeroes)")
    old_size = int(match.group(1))
    if old_size > MAX_TREE_SIZE:
        raise WitnessMalformedError("old size is out of range")
    if len(proof_lines) > MAX_PROOF_LINES:
        raise WitnessMalformedError(f"more than {MAX_PROOF_LINES} consistency proof lines")
    proof = []
    for number, line in enumerate(proof_lines, 1):
        try:
            digest = b64decode_strict(line)
        except NoteError:
            raise WitnessMalformedError(f"proof line {number} is not base64") from None
        if len(digest) != merkle.HASH_SIZE:
            raise WitnessMalformedError(f"proof line {number} is not a 32-byte hash")
        proof.append(digest)
    return AddCheckpoint(old_size, tuple(proof), note)


def parse_log_spec(spec: str) -> tuple[str, Verifier]:
    """Read "ORIGIN=VKEY" (the log's checkpoint origin and its verifier key)."""
    origin, eq, vkey = spec.strip().partition("=")
    if not eq or not origin or not vkey:
        raise ConfigError(f"log {spec!r}: want ORIGIN=VERIFIER_KEY")
    try:
        return origin, Verifier.parse(vkey)
    except NoteError as exc:
        raise ConfigError(f"log {origin!r}: {exc}") from exc


@dataclass(frozen=True)
class LogState:
    """What the witness last cosigned for one log."""

    size: int
    root_hash: bytes
    checkpoint: str  # the note text it cosigned, kept as evidence

    def to_json(self) -> dict[str, object]:
        return {"size": self.size, "root": b64encode(self.root_hash), "checkpoint": self.checkpoint}

    @classmethod
    def from_json(cls, data: Mapping[str, object]) -> LogState:
        size, root, checkpoint = data.get("size"), data.get("root"), data.get("checkpoint")
        if (
            not isinstance(size, int)
            or not isinstance(root, str)
            or not isinstance(checkpoint, str)
        ):
            raise ConfigError("witness state: each log needs size, root and checkpoint")
        return cls(size, b64decode_strict(root), checkpoint)


class StateFile:
    """The witness's per-log state as one JSON file, replaced atomically on every change."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def load(self) -> dict[str, LogState]:
        try:
            data = json.loads(self.path.read_text("utf-8"))
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as exc:
            raise ConfigError(f"witness state {self.path} is unreadable: {exc}") from exc
        if not isinstance(data, dict) or data.get("version") != _STATE_VERSION:
            raise ConfigError(f"witness state {self.path} is not a version 1 state file")
        logs = data.get("logs")
        if not isinstance(logs, dict):
            raise ConfigError(f"witness state {self.path} has no logs table")
        return {origin: LogState.from_json(entry) for origin, entry in logs.items()}

    def save(self, states: Mapping[str, LogState]) -> None:
        """Write to a temporary file, fsync it, rename it over the state, fsync the folder:
        after a crash the file holds either the old or the new state, never a mix."""
        data = {
            "version": _STATE_VERSION,
            "logs": {origin: s.to_json() for origin, s in sorted(states.items())},
        }
        tmp = self.path.with_name(self.path.name + ".tmp")
        with open(tmp, "w", encoding="utf-8") as out:
            json.dump(data, out, indent=1)
            out.write("\n")
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp, self.path)
        fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


@contextlib.contextmanager
def _exclusive(lock_path: Path) -> Iterator[None]:
    """Hold an exclusive lock on `lock_path` so one witness process owns the home folder."""
    fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise ConfigError(
                f"another witness process is using {lock_path.parent}; stop it first"
            ) from None
        yield
    finally:
        os.close(fd)  # closing releases the lock


class Witness:
    """Cosigns checkpoints of the logs it knows, never two that contradict each other.

    Checking a request against the stored state and persisting the new state happen
    under one lock, so two concurrent requests cannot roll the state back (the race the
    spec warns about).
    """

    def __init__(
        self,
        signer: CosignatureSigner,
        logs: Mapping[str, Sequence[Verifier]],
        state_file: StateFile,
        *,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.signer = signer
        self._logs = {origin: tuple(keys) for origin, keys in logs.items()}
        self._file = state_file
        self._states = state_file.load()
        self._clock = clock
        self._lock = asyncio.Lock()

    @classmethod
    @contextlib.contextmanager
    def open(
        cls, home: Path, name: str, logs: Mapping[str, Sequence[Verifier]]
    ) -> Iterator[Witness]:
        """The witness living in `home`: its key (created on first start) and its state."""
        home.mkdir(parents=True, exist_ok=True)
        with _exclusive(home / "witness.lock"):
            key = load_or_create_log_key(home / "witness-key.pem")
            try:
                signer = CosignatureSigner(name, key)
            except NoteError as exc:
                raise ConfigError(f"witness name {name!r}: {exc}") from exc
            yield cls(signer, logs, StateFile(home / "state.json"))

    @property
    def origins(self) -> list[str]:
        return sorted(self._logs)

    def state(self, origin: str) -> LogState | None:
        return self._states.get(origin)

    async def add_checkpoint(self, body: bytes) -> str:
        """Answer one add-checkpoint request with this witness's cosignature line."""
        request = parse_add_checkpoint(body)
        try:
            parsed = parse_signed_note(request.note)
            checkpoint = Checkpoint.parse(parsed.text)
        except NoteError as exc:
            raise WitnessMalformedError(f"checkpoint: {exc}") from exc
        keys = self._logs.get(checkpoint.origin)
        if keys is None:
            raise WitnessUnknownLogError(f"this witness does not witness {checkpoint.origin!r}")
        try:
            open_note(request.note, keys)
        except NoteError as exc:
            raise WitnessForbiddenError(f"checkpoint of {checkpoint.origin!r}: {exc}") from exc
        if request.old_size > checkpoint.size:
            raise WitnessMalformedError(
                f"old size {request.old_size} is larger than the checkpoint's {checkpoint.size}"
            )
        async with self._lock:
            cosignature = await self._check_and_record(request, checkpoint, parsed.text)
        return cosignature.line()

    async def _check_and_record(
        self, request: AddCheckpoint, checkpoint: Checkpoint, text: str
    ) -> Cosignature:
        origin = checkpoint.origin
        known = self._states.get(origin)
        size, root = (known.size, known.root_hash) if known else (0, merkle.EMPTY_ROOT)
        if request.old_size != size:
            raise WitnessConflictError(
                f"old size {request.old_size} is not the last cosigned size {size}", size
            )
        if checkpoint.size == size and checkpoint.root_hash != root:
            log.warning("fork of %r at size %d: refused %r", origin, size, text)
            raise WitnessConflictError(
                f"a checkpoint of size {size} with another root hash was cosigned", size
            )
        try:
            merkle.verify_consistency(
                size, checkpoint.size, root, checkpoint.root_hash, request.proof
            )
        except ProofError as exc:
            # A correctly signed checkpoint that does not extend what we cosigned may be
            # evidence of a misbehaving log: keep it in our log, never cosign it.
            log.warning("inconsistent checkpoint of %r: %s: %r", origin, exc, text)
            raise WitnessBadProofError(f"consistency proof from size {size}: {exc}") from exc
        new = {**self._states, origin: LogState(checkpoint.size, checkpoint.root_hash, text)}
        await asyncio.to_thread(self._file.save, new)
        self._states = new
        timestamp = min(max(int(self._clock()), 0), (1 << 63) - 1)
        return self.signer.cosign(text, timestamp)
