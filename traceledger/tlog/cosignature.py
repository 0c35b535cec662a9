"""Witness cosignatures on checkpoints (c2sp.org/tlog-cosignature, cosignature/v1, Ed25519).

A cosignature is a signed-note signature line whose key ID uses signature type 0x04

    key ID = SHA-256(name || 0x0A || 0x04 || 32-byte Ed25519 public key)[:4]

and whose signature bytes are a `timestamped_signature`: an 8-byte big-endian POSIX
timestamp followed by the 64-byte Ed25519 signature of

    "cosignature/v1\\n" "time <timestamp>\\n" <checkpoint note text>

The timestamp is signed, so a cosignature says "as of this time, this is the largest
consistent tree I have seen for this log". The name is not signed: one key must never
serve two witness names. The verifier key of a witness is written like a log's,
"<name>+<key ID hex>+<base64(0x04 || public key)>".
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from traceledger.errors import NoteError
from traceledger.tlog.note import (
    Signature,
    b64decode_strict,
    b64encode,
    check_key_name,
    check_text,
    parse_note,
)

__all__ = [
    "COSIGNATURE_TYPE",
    "MAX_TIMESTAMP",
    "Cosignature",
    "CosignatureSigner",
    "CosignatureVerifier",
    "cosignature_key_hash",
    "cosigned_message",
    "verified_cosignatures",
]

COSIGNATURE_TYPE = 0x04
"""Signature type byte of Ed25519 cosignature/v1 keys (c2sp.org/tlog-cosignature)."""

MAX_TIMESTAMP = (1 << 63) - 1
"""The spec caps the timestamp at 2**63 - 1."""

_PREFIX = "\u2014 "  # em dash, space: every note signature line starts so
_PUBLIC_SIZE = 32
_SIGNATURE_SIZE = 64
_KEY_HASH_SIZE = 4
_TIMESTAMPED_SIZE = 8 + _SIGNATURE_SIZE


def cosignature_key_hash(name: str, public_key: bytes) -> bytes:
    """SHA-256(name || "\\n" || 0x04 || public key)[:4]."""
    if len(public_key) != _PUBLIC_SIZE:
        raise NoteError(f"an Ed25519 public key has 32 bytes, not {len(public_key)}")
    digest = hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([COSIGNATURE_TYPE]) + bytes(public_key)
    ).digest()
    return digest[:_KEY_HASH_SIZE]


def cosigned_message(body: str, timestamp: int) -> bytes:
    """The bytes a cosignature/v1 signs: header line, time line, then the note text."""
    if not 0 <= timestamp <= MAX_TIMESTAMP:
        raise NoteError(f"cosignature timestamp {timestamp} is out of range 0..2**63-1")
    text = check_text(body, "checkpoint")
    if not body.endswith("\n"):
        raise NoteError("a cosigned note text ends with a newline")
    return f"cosignature/v1\ntime {timestamp}\n".encode("ascii") + text


@dataclass(frozen=True)
class Cosignature:
    """One cosignature line: the witness name, its key ID, the time and the signature."""

    name: str
    key_hash: bytes
    timestamp: int
    signature: bytes

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if len(self.key_hash) != _KEY_HASH_SIZE:
            raise NoteError("a key hash has exactly 4 bytes")
        if not 0 <= self.timestamp <= MAX_TIMESTAMP:
            raise NoteError(f"cosignature timestamp {self.timestamp} is out of range")
        if len(self.signature) != _SIGNATURE_SIZE:
            raise NoteError("an Ed25519 cosignature carries a 64-byte signature")

    def line(self) -> str:
        """The note signature line, newline included."""
        raw = self.key_hash + self.timestamp.to_bytes(8, "big") + self.signature
        return f"{_PREFIX}{self.name} {b64encode(raw)}\n"

    @classmethod
    def from_signature(cls, sig: Signature) -> Cosignature:
        """Read the timestamped signature of a parsed note signature line."""
        if len(sig.signature) != _TIMESTAMPED_SIZE:
            raise NoteError(
                f"signature of {sig.name!r} has {len(sig.signature)} bytes after the key ID, "
                f"not {_TIMESTAMPED_SIZE} (8-byte time and 64-byte Ed25519 signature)"
            )
        timestamp = int.from_bytes(sig.signature[:8], "big")
        return cls(sig.name, sig.key_hash, timestamp, sig.signature[8:])

    @classmethod
    def parse(cls, line: str) -> Cosignature:
        """Parse one "— <name> <base64>" line (a trailing newline is allowed)."""
        text = line.removesuffix("\n")
        if "\n" in text or not text.startswith(_PREFIX):
            raise NoteError("a cosignature is one line starting with '— '")
        name, space, b64 = text[len(_PREFIX) :].partition(" ")
        if not space:
            raise NoteError("a cosignature line has a name, a space and base64")
        check_key_name(name)
        raw = b64decode_strict(b64)
        if len(raw) <= _KEY_HASH_SIZE:
            raise NoteError("cosignature line is too short")
        return cls.from_signature(Signature(name, raw[:_KEY_HASH_SIZE], raw[_KEY_HASH_SIZE:]))


@dataclass(frozen=True, eq=False, repr=False)
class CosignatureVerifier:
    """A trusted witness key: its name, key ID (type 0x04) and Ed25519 public key."""

    name: str
    key_hash: bytes
    public_key: Ed25519PublicKey

    def __post_init__(self) -> None:
        check_key_name(self.name)
        if self.key_hash != cosignature_key_hash(self.name, self._raw()):
            raise NoteError(f"key hash {self.key_hash.hex()} does not match key {self.name!r}")

    def _raw(self) -> bytes:
        return self.public_key.public_bytes_raw()

    @classmethod
    def parse(cls, vkey: str) -> CosignatureVerifier:
        """Parse "<name>+<hash>+<base64(0x04 || key)>", checking name, type and hash."""
        name, plus1, rest = vkey.partition("+")
        hash_hex, plus2, key64 = rest.partition("+")
        if not plus1 or not plus2:
            raise NoteError("malformed witness key: want <name>+<hash>+<key>")
        check_key_name(name)
        try:
            want = bytes.fromhex(hash_hex)
        except ValueError:
            raise NoteError("malformed witness key: the key hash is not hex") from None
        if len(hash_hex) != 2 * _KEY_HASH_SIZE:
            raise NoteError("malformed witness key: the key hash is not 8 hex digits")
        key = b64decode_strict(key64)
        if len(key) != 1 + _PUBLIC_SIZE or key[0] != COSIGNATURE_TYPE:
            raise NoteError(
                "not an Ed25519 cosignature key: want base64(0x04 || 32-byte public key)"
            )
        if cosignature_key_hash(name, key[1:]) != want:
            raise NoteError(f"witness key hash {hash_hex} does not match the key")
        return cls(name, want, Ed25519PublicKey.from_public_bytes(key[1:]))

    def encode(self) -> str:
        raw = bytes([COSIGNATURE_TYPE]) + self._raw()
        return f"{self.name}+{self.key_hash.hex()}+{b64encode(raw)}"

    def matches(self, name: str, key_hash: bytes) -> bool:
        return name == self.name and key_hash == self.key_hash

    def verify(self, body: str, cosignature: Cosignature) -> bool:
        """Whether `cosignature` is this witness's cosignature of note text `body`."""
        if not self.matches(cosignature.name, cosignature.key_hash):
            return False
        try:
            self.public_key.verify(
                cosignature.signature, cosigned_message(body, cosignature.timestamp)
            )
        except InvalidSignature:
            return False
        return True

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CosignatureVerifier):
            return NotImplemented
        return self.encode() == other.encode()

    def __hash__(self) -> int:
        return hash(self.encode())

    def __repr__(self) -> str:
        return f"CosignatureVerifier({self.encode()!r})"


@dataclass(frozen=True, repr=False)
class CosignatureSigner:
    """A witness's name and Ed25519 private key."""

    name: str
    private_key: Ed25519PrivateKey

    def __post_init__(self) -> None:
        check_key_name(self.name)

    @property
    def verifier(self) -> CosignatureVerifier:
        public = self.private_key.public_key()
        raw = public.public_bytes_raw()
        return CosignatureVerifier(self.name, cosignature_key_hash(self.name, raw), public)

    def cosign(self, body: str, timestamp: int) -> Cosignature:
        """Cosign checkpoint note text `body` as of `timestamp` (POSIX seconds)."""
        signature = self.private_key.sign(cosigned_message(body, timestamp))
        return Cosignature(self.name, self.verifier.key_hash, timestamp, signature)

    def __repr__(self) -> str:  # never show key material
        return f"CosignatureSigner(name={self.name!r})"


def verified_cosignatures(
    note: str, verifiers: Sequence[CosignatureVerifier]
) -> list[tuple[CosignatureVerifier, Cosignature]]:
    """The cosignatures on signed `note` from trusted witnesses, each verified.

    Lines from keys not in `verifiers` (the log's own signature among them) are ignored,
    as the spec asks; a line that claims a trusted witness's name and key ID but does not
    verify raises NoteError. At most one cosignature per witness is returned.
    """
    parsed = parse_note(note)
    found: list[tuple[CosignatureVerifier, Cosignature]] = []
    for sig in parsed.signatures:
        verifier = next((v for v in verifiers if v.matches(sig.name, sig.key_hash)), None)
        if verifier is None:
            continue
        cosig = Cosignature.from_signature(sig)
        if not verifier.verify(parsed.text, cosig):
            raise NoteError(f"invalid cosignature from witness {sig.name!r}")
        if all(v != verifier for v, _ in found):
            found.append((verifier, cosig))
    return found
