"""C2SP signed notes (c2sp.org/signed-note), Ed25519 signatures (type 0x01) only.

A signed note is a text ending in a newline, a blank line, then one or more lines

    — <key name> base64(4-byte key ID || signature)

The key ID of an Ed25519 key is SHA-256(name || 0x0A || 0x01 || 32-byte public key)[:4].
A verifier key is written "<name>+<key ID as 8 hex digits>+base64(0x01 || public key)".

Limits follow golang.org/x/mod/sumdb/note, the reference implementation: at most 100
signature lines. On top of that a whole note may not exceed `MAX_NOTE_SIZE` bytes.
Anything malformed, or a signature from a known key that does not verify, raises
`NoteError`.
"""

from __future__ import annotations

import base64
import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from traceledger.errors import NoteError

__all__ = [
    "ED25519_TYPE",
    "MAX_NOTE_SIZE",
    "MAX_SIGNATURES",
    "Note",
    "Signature",
    "Signer",
    "Verifier",
    "b64decode_strict",
    "b64encode",
    "check_key_name",
    "check_text",
    "key_hash",
    "open_note",
    "parse_note",
    "sign_note",
    "verifier_key",
]

ED25519_TYPE = 0x01
"""Signature type identifier byte of Ed25519 signatures (c2sp.org/signed-note)."""

MAX_SIGNATURES = 100
"""Most signature lines a note may carry (the limit of golang.org/x/mod/sumdb/note)."""

MAX_NOTE_SIZE = 1 << 20
"""Most UTF-8 bytes a whole signed note may have (100 post-quantum signatures fit)."""

_SIG_PREFIX = "\u2014 "  # em dash, space
_ED25519_PUBLIC_SIZE = 32
_ED25519_SIGNATURE_SIZE = 64
_KEY_HASH_SIZE = 4

# ASCII control characters other than newline, and lone surrogates (a Python str may hold
# them, but they have no UTF-8 encoding, so such a text can never be a valid note).
_FORBIDDEN = re.compile("[\x00-\x09\x0b-\x1f\ud800-\udfff]")
# Characters with the Unicode White_Space property (what Go's unicode.IsSpace matches);
# Python's str.isspace() differs (it also matches U+001C..U+001F).
_WHITE_SPACE = frozenset(
    "\t\n\v\f\r \x85\xa0\u1680"
    "\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a"
    "\u2028\u2029\u202f\u205f\u3000"
)
_HEX8 = re.compile("[0-9a-fA-F]{8}")


def _is_valid_name(name: str) -> bool:
    """Key names are non-empty, without Unicode spaces, plus signs or control characters."""
    return (
        isinstance(name, str)
        and name != ""
        and "+" not in name
        and _FORBIDDEN.search(name) is None
        and _WHITE_SPACE.isdisjoint(name)
    )


def _check_name(name: str) -> None:
    if not _is_valid_name(name):
        raise NoteError(f"invalid key name {name!r}: it must be non-empty, without spaces or '+'")


def check_key_name(name: str) -> None:
    """Raise NoteError unless `name` may name a key (shared by other signature types)."""
    _check_name(name)


def b64decode_strict(text: str) -> bytes:
    """Strict standard base64 (RFC 4648 section 4): padded, canonical, nothing else."""
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError:  # binascii.Error, and non-ASCII input
        raise NoteError("malformed base64") from None
    if base64.b64encode(raw).decode("ascii") != text:
        raise NoteError("malformed base64: not in canonical form")
    return raw


def b64encode(raw: bytes) -> str:
    """Standard padded base64 (RFC 4648 section 4) as a str."""
    return base64.b64encode(raw).decode("ascii")


def _raw_public(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes_raw()


def check_text(text: str, what: str = "note") -> bytes:
    """Return `text` as UTF-8 if it may appear in a note; raise NoteError otherwise.

    Notes are valid UTF-8 without ASCII control characters other than newline, and at
    most `MAX_NOTE_SIZE` bytes long.
    """
    if not isinstance(text, str):
        raise NoteError(f"{what} must be a str, not {type(text).__name__}")
    if len(text) > MAX_NOTE_SIZE:  # every character takes at least one byte
        raise NoteError(f"{what} is longer than {MAX_NOTE_SIZE} bytes")
    bad = _FORBIDDEN.search(text)
    if bad is not None:
        raise NoteError(
            f"{what} holds the forbidden character U+{ord(bad.group()):04X} "
            f"at offset {bad.start()} (control characters other than newline are not allowed)"
        )
    data = text.encode("utf-8")
    if len(data) > MAX_NOTE_SIZE:
        raise NoteError(f"{what} is longer than {MAX_NOTE_SIZE} bytes")
    return data


def key_hash(name: str, public_key: bytes) -> bytes:
    """The 4-byte key ID of an Ed25519 key: SHA-256(name || 0x0A || 0x01 || public_key)[:4]."""
    if len(public_key) != _ED25519_PUBLIC_SIZE:
        raise NoteError(f"an Ed25519 public key has 32 bytes, not {len(public_key)}")
    digest = hashlib.sha256(
        name.encode("utf-8") + b"\n" + bytes([ED25519_TYPE]) + bytes(public_key)
    ).digest()
    return digest[:_KEY_HASH_SIZE]


def verifier_key(name: str, public_key: Ed25519PublicKey) -> str:
    """The verifier key "<name>+<8 hex digits>+<base64(0x01 || public key)>"."""
    _check_name(name)
    raw = _raw_public(public_key)
    return f"{name}+{key_hash(name, raw).hex()}+{b64encode(bytes([ED25519_TYPE]) + raw)}"


@dataclass(frozen=True, eq=False, repr=False)
class Verifier:
    """One trusted Ed25519 key: its name, its key ID and the public key itself."""

    name: str
    key_hash: bytes
    public_key: Ed25519PublicKey

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not isinstance(self.public_key, Ed25519PublicKey):
            raise NoteError("a verifier needs an Ed25519 public key")
        if not isinstance(self.key_hash, bytes) or len(self.key_hash) != _KEY_HASH_SIZE:
            raise NoteError("a key hash has exactly 4 bytes")
        if self.key_hash != key_hash(self.name, _raw_public(self.public_key)):
            raise NoteError(f"key hash {self.key_hash.hex()} does not match key {self.name!r}")

    @classmethod
    def parse(cls, vkey: str) -> Verifier:
        """Parse "<name>+<hash>+<key>", checking the name, the key type and the hash."""
        if not isinstance(vkey, str):
            raise NoteError("a verifier key is a str")
        name, plus1, rest = vkey.partition("+")
        hash16, plus2, key64 = rest.partition("+")
        if not plus1 or not plus2:
            raise NoteError("malformed verifier key: want <name>+<hash>+<key>")
        _check_name(name)
        if _HEX8.fullmatch(hash16) is None:
            raise NoteError("malformed verifier key: the key hash is not 8 hex digits")
        key = b64decode_strict(key64)
        if not key:
            raise NoteError("malformed verifier key: empty key")
        if key[0] != ED25519_TYPE:
            raise NoteError(f"unsupported verifier key type 0x{key[0]:02x} (only Ed25519, 0x01)")
        if len(key) != 1 + _ED25519_PUBLIC_SIZE:
            raise NoteError("malformed verifier key: an Ed25519 key has 32 bytes")
        want = bytes.fromhex(hash16)
        if key_hash(name, key[1:]) != want:
            raise NoteError(f"verifier key hash {hash16} does not match the key")
        try:
            public = Ed25519PublicKey.from_public_bytes(key[1:])
        except ValueError as exc:
            raise NoteError(f"invalid Ed25519 public key: {exc}") from exc
        return cls(name, want, public)

    def encode(self) -> str:
        """The verifier key string, as `parse` reads it."""
        return verifier_key(self.name, self.public_key)

    def verify(self, message: bytes, signature: bytes) -> bool:
        """Whether `signature` (64 bytes, no key hash) is this key's signature of `message`."""
        if len(signature) != _ED25519_SIGNATURE_SIZE:
            return False
        try:
            self.public_key.verify(bytes(signature), bytes(message))
        except InvalidSignature:
            return False
        return True

    # Ed25519PublicKey is not hashable: compare and hash by the key's bytes instead.
    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Verifier):
            return NotImplemented
        return (self.name, self.key_hash, _raw_public(self.public_key)) == (
            other.name,
            other.key_hash,
            _raw_public(other.public_key),
        )

    def __hash__(self) -> int:
        return hash((self.name, self.key_hash, _raw_public(self.public_key)))

    def __repr__(self) -> str:
        return f"Verifier({self.encode()!r})"


@dataclass(frozen=True, repr=False)
class Signer:
    """A named Ed25519 private key that signs notes."""

    name: str
    private_key: Ed25519PrivateKey

    def __post_init__(self) -> None:
        _check_name(self.name)
        if not isinstance(self.private_key, Ed25519PrivateKey):
            raise NoteError("a signer needs an Ed25519 private key")

    @property
    def verifier(self) -> Verifier:
        public = self.private_key.public_key()
        return Verifier(self.name, key_hash(self.name, _raw_public(public)), public)

    def sign(self, message: bytes) -> bytes:
        """The 64-byte Ed25519 signature of `message` (deterministic, RFC 8032)."""
        return self.private_key.sign(bytes(message))

    def __repr__(self) -> str:  # never show key material
        return f"Signer(name={self.name!r})"


@dataclass(frozen=True)
class Signature:
    """One signature line: key name, 4-byte key ID and the raw signature after the ID."""

    name: str
    key_hash: bytes
    signature: bytes


@dataclass(frozen=True)
class Note:
    """A note's signed text (ending in a newline) and all its signature lines, in order."""

    text: str
    signatures: tuple[Signature, ...]


def sign_note(text: str, *signers: Signer) -> str:
    """The signed note: `text`, a blank line, then one signature line per signer."""
    data = check_text(text, "note text")
    if not text.endswith("\n"):
        raise NoteError("note text must end with a newline")
    if not signers:
        raise NoteError("a signed note needs at least one signer")
    if len(signers) > MAX_SIGNATURES:
        raise NoteError(f"a note carries at most {MAX_SIGNATURES} signatures")
    lines = []
    for signer in signers:
        if not isinstance(signer, Signer):
            raise NoteError(f"not a Signer: {type(signer).__name__}")
        kh = signer.verifier.key_hash
        lines.append(f"{_SIG_PREFIX}{signer.name} {b64encode(kh + signer.sign(data))}\n")
    note = text + "\n" + "".join(lines)
    check_text(note)  # only the overall size can fail here
    return note


def parse_note(note: str) -> Note:
    """Split a signed note into its text and signature lines; verifies nothing."""
    check_text(note)
    split = note.rfind("\n\n")
    if split < 0:
        raise NoteError("malformed note: no blank line before the signatures")
    text, block = note[: split + 1], note[split + 2 :]
    if not block.endswith("\n"):
        raise NoteError("malformed note: the signature block must end with a newline")
    lines = block[:-1].split("\n")
    if len(lines) > MAX_SIGNATURES:
        raise NoteError(f"malformed note: more than {MAX_SIGNATURES} signatures")
    signatures = []
    for number, line in enumerate(lines, 1):
        if not line.startswith(_SIG_PREFIX):
            raise NoteError(f"malformed note: signature line {number} does not start with '— '")
        name, space, b64 = line[len(_SIG_PREFIX) :].partition(" ")
        if not space or not _is_valid_name(name):
            raise NoteError(f"malformed note: signature line {number} has no valid key name")
        try:
            raw = b64decode_strict(b64)
        except NoteError:
            raise NoteError(f"malformed note: signature line {number} is not base64") from None
        if len(raw) <= _KEY_HASH_SIZE:
            raise NoteError(f"malformed note: signature line {number} is too short")
        signatures.append(Signature(name, raw[:_KEY_HASH_SIZE], raw[_KEY_HASH_SIZE:]))
    return Note(text, tuple(signatures))


def open_note(note: str, verifiers: Sequence[Verifier]) -> tuple[Note, list[Verifier]]:
    """Parse `note` and check its signatures against the trusted `verifiers`.

    Signatures from unknown keys (name and key ID not both matching a verifier) are
    ignored. Every signature line from a known key must verify, and at least one known
    key must have signed. Returns the note and the verifiers that signed it, in order.
    """
    parsed = parse_note(note)
    known: dict[tuple[str, bytes], Verifier] = {}
    ambiguous: set[tuple[str, bytes]] = set()
    for v in verifiers:
        if not isinstance(v, Verifier):
            raise NoteError(f"not a Verifier: {type(v).__name__}")
        ident = (v.name, v.key_hash)
        if ident in known and known[ident] != v:
            ambiguous.add(ident)
        known.setdefault(ident, v)
    message = parsed.text.encode("utf-8")
    signed: list[Verifier] = []
    for sig in parsed.signatures:
        ident = (sig.name, sig.key_hash)
        label = f"{sig.name}+{sig.key_hash.hex()}"
        if ident in ambiguous:
            raise NoteError(f"ambiguous key {label}: two trusted keys share name and hash")
        verifier = known.get(ident)
        if verifier is None:
            continue
        if not verifier.verify(message, sig.signature):
            raise NoteError(f"invalid signature for key {label}")
        if verifier not in signed:
            signed.append(verifier)
    if not signed:
        raise NoteError("note has no verifiable signatures from a trusted key")
    return parsed, signed
