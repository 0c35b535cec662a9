"""C2SP transparency log checkpoints (c2sp.org/tlog-checkpoint) as signed notes.

The note text is at least three non-empty lines:

    <origin>
    <tree size, ASCII decimal, no leading zeroes>
    <base64 of the 32-byte RFC 6962 root hash>
    [extension lines, each non-empty]
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from traceledger.errors import NoteError
from traceledger.tlog.note import (
    Signer,
    Verifier,
    b64decode_strict,
    b64encode,
    check_text,
    open_note,
    sign_note,
)

__all__ = ["MAX_TREE_SIZE", "Checkpoint", "open_checkpoint", "sign_checkpoint"]

MAX_TREE_SIZE = (1 << 64) - 1
"""Largest tree size a checkpoint may state (uint64, as transparency-dev/formats reads it)."""

_HASH_SIZE = 32
_DECIMAL = re.compile(
    "0|[1-9][0-9]{0,19}"
)  # int() would also take "+1", "1_0", " 1", Arabic digits


def _check_line(line: object, what: str) -> None:
    if not isinstance(line, str):
        raise NoteError(f"checkpoint {what} must be a str")
    if line == "":
        raise NoteError(f"checkpoint {what} must not be empty")
    if "\n" in line:
        raise NoteError(f"checkpoint {what} must be a single line")
    check_text(line, f"checkpoint {what}")


@dataclass(frozen=True)
class Checkpoint:
    """A log's tree head: origin, tree size, root hash and optional extension lines."""

    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "origin")
        if not isinstance(self.size, int) or isinstance(self.size, bool):
            raise NoteError("checkpoint size must be an int")
        if not 0 <= self.size <= MAX_TREE_SIZE:
            raise NoteError(f"checkpoint size {self.size} is out of range 0..2**64-1")
        if not isinstance(self.root_hash, bytes) or len(self.root_hash) != _HASH_SIZE:
            raise NoteError("checkpoint root hash must be 32 bytes")
        if not isinstance(self.extensions, tuple):
            raise NoteError("checkpoint extensions must be a tuple of lines")
        for line in self.extensions:
            _check_line(line, "extension line")

    def body(self) -> str:
        """The note text: origin, size, base64 root hash, extension lines, each + "\\n"."""
        lines = [self.origin, str(self.size), b64encode(self.root_hash), *self.extensions]
        return "".join(line + "\n" for line in lines)

    @classmethod
    def parse(cls, body: str) -> Checkpoint:
        """Read a checkpoint note text strictly; raise NoteError on any deviation."""
        check_text(body, "checkpoint")
        if not body.endswith("\n"):
            raise NoteError("checkpoint must end with a newline")
        lines = body[:-1].split("\n")
        if len(lines) < 3:
            raise NoteError("checkpoint needs an origin, a size and a root hash line")
        origin, size, root, *extensions = lines
        if origin == "":
            raise NoteError("checkpoint origin must not be empty")
        if _DECIMAL.fullmatch(size) is None:
            raise NoteError(f"checkpoint size {size!r} is not a decimal without leading zeroes")
        try:
            root_hash = b64decode_strict(root)
        except NoteError:
            raise NoteError("checkpoint root hash is not base64") from None
        if len(root_hash) != _HASH_SIZE:
            raise NoteError(f"checkpoint root hash has {len(root_hash)} bytes, not 32")
        if "" in extensions:
            raise NoteError("checkpoint extension lines must not be empty")
        return cls(origin, int(size), root_hash, tuple(extensions))


def sign_checkpoint(cp: Checkpoint, signer: Signer) -> str:
    """The checkpoint as a signed note, signed by the log's key."""
    return sign_note(cp.body(), signer)


def open_checkpoint(note: str, verifier: Verifier, origin: str | None = None) -> Checkpoint:
    """Verify the log's signature on `note`, parse the checkpoint, check its origin.

    Other signatures (e.g. witness cosignatures) are ignored; the log's must verify.
    """
    opened, _ = open_note(note, [verifier])
    cp = Checkpoint.parse(opened.text)
    if origin is not None and cp.origin != origin:
        raise NoteError(f"checkpoint is for origin {cp.origin!r}, not {origin!r}")
    return cp
