"""Selective disclosure: a version-2 leaf commits to an event as salted field digests.

The technique of IETF SD-JWT. Each top-level field of the stored event gets its own
random 128-bit salt, and

    digest = SHA-256(salt || uint32_be(len(name)) || name || value)

where `name` is the field name in UTF-8 and `value` the field's canonical JSON (below).
The leaf's payload slot holds SHA-256 over the field digests sorted bytewise and
concatenated. An answer discloses a field as `[salt, name, value]` (salt in base64,
value as the exact canonical JSON text) and withholds another as its bare digest: a
verifier hashes the disclosed text as given, never re-encodes it, so it needs no JSON
canonicalizer of its own. Random salts mean a withheld low-entropy value (a price, a
country) cannot be found by hashing guesses.

Canonical JSON is UTF-8 JSON with keys sorted, no whitespace and non-ASCII characters as
themselves, as orjson writes it (`OPT_SORT_KEYS`; Python's json module for integers beyond
64 bits, which orjson refuses): the server computes it, once at capture and again when it
audits (`traceledger verify`), always from the same values.
The stored event (`entries.payload`) is a JSON object of those same canonical field
encodings, in sorted order; verification parses it and re-encodes each field, so any
faithful JSON of the event would do. Salts are stored (`entries.salts`) as the
concatenation of the 16-byte salts in the order of the payload's field names sorted by
code point. A redacted field loses its value and
its salt; its digest is kept (table `redactions`), so the commitment still holds.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib
import json
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Protocol, cast

import orjson

SALT_SIZE = 16


# Python's encoder for the values orjson refuses (integers beyond 64 bits): one instance,
# since json.dumps with options builds a new encoder on every call.
_CANONICAL = json.JSONEncoder(
    sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False
)


class _Hash(Protocol):
    def digest(self) -> bytes: ...


def _short_input_sha256() -> Callable[[bytes], _Hash]:
    """CPython's own SHA-256 where it has one (3.12+: `_sha2`; 3.11: `_sha256`): on inputs
    as short as a field's it is about a fifth faster than OpenSSL's (hashlib's), whose
    per-call context setup dominates, and capture hashes every field of every event."""
    for module in ("_sha2", "_sha256"):
        with contextlib.suppress(ImportError):
            return cast(Callable[[bytes], _Hash], importlib.import_module(module).sha256)
    return hashlib.sha256


_sha256 = _short_input_sha256()


def canonical(value: Any) -> bytes:
    """A field's canonical JSON: orjson's, keys sorted (several times faster than the
    standard library on capture's hot path); Python's for what orjson refuses. Either way
    a function of the value alone, and verifiers hash the text as given."""
    try:
        return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # orjson.JSONEncodeError
        return _CANONICAL.encode(value).encode()


def field_digest(salt: bytes, name: str, value: bytes) -> bytes:
    """The digest of one field: `value` is its canonical JSON bytes."""
    encoded = name.encode()
    return _sha256(b"".join((salt, len(encoded).to_bytes(4, "big"), encoded, value))).digest()


def commitment(digests: Iterable[bytes]) -> bytes:
    """What a version-2 leaf holds in its payload slot: SHA-256 of the sorted digests."""
    return _sha256(b"".join(sorted(digests))).digest()


def salt_event(
    event: Mapping[str, Any], random: Callable[[int], bytes] = os.urandom
) -> tuple[bytes, bytes, bytes]:
    """Fresh salts for every top-level field of `event`: (the event as stored, its salts,
    the commitment). The stored bytes are put together from the same canonical encodings
    of the fields that the digests hash, so capture serializes each event once."""
    names = sorted(event)
    salts = random(SALT_SIZE * len(names))
    sha, join = _sha256, b"".join
    digests, members = [], []
    for n, name in enumerate(names):  # field_digest, inlined: this runs for every field
        member, prefix = _name(name)
        value = canonical(event[name])
        salt = salts[n * SALT_SIZE : (n + 1) * SALT_SIZE]
        digests.append(sha(join((salt, prefix, value))).digest())
        members.append(member + value)
    digests.sort()
    return b"{" + b",".join(members) + b"}", salts, sha(b"".join(digests)).digest()


@functools.lru_cache(maxsize=4096)
def _name(name: str) -> tuple[bytes, bytes]:
    """A field name as a JSON member's start (`"name":`) and as a digest hashes it."""
    encoded = name.encode()
    return orjson.dumps(name) + b":", len(encoded).to_bytes(4, "big") + encoded


@dataclass(frozen=True, slots=True)
class Field:
    """One field of a stored version-2 event: disclosable with its salt, or redacted."""

    name: str
    salt: bytes | None = None  # None once redacted
    value: bytes | None = None  # canonical JSON; None once redacted
    redacted_digest: bytes | None = None  # what the log keeps of a redacted field

    @property
    def digest(self) -> bytes:
        """Computed when asked: an answer needs the digests of withheld fields only."""
        if self.salt is None or self.value is None:
            assert self.redacted_digest is not None
            return self.redacted_digest
        return field_digest(self.salt, self.name, self.value)


def fields_of(event: Mapping[str, Any], salts: bytes, redacted: Mapping[str, bytes]) -> list[Field]:
    """The event's fields with their salts, and each redacted field's digest. Raises
    ValueError when the salts do not fit the event (a damaged store)."""
    names = sorted(event)
    if len(salts) != SALT_SIZE * len(names):
        raise ValueError(f"{len(salts) // SALT_SIZE} salts for {len(names)} fields")
    out = [
        Field(name, salts[n * SALT_SIZE : (n + 1) * SALT_SIZE], canonical(event[name]))
        for n, name in enumerate(names)
    ]
    out += [Field(name, redacted_digest=digest) for name, digest in sorted(redacted.items())]
    return out


def stored_commitment(payload: bytes, salts: bytes, redacted: Mapping[str, bytes]) -> bytes:
    """The commitment recomputed from what is stored."""
    event = json.loads(payload)
    if not isinstance(event, dict):
        raise ValueError("the stored event is not an object")  # noqa: TRY004
    return event_commitment(event, salts, redacted)


def event_commitment(
    event: Mapping[str, Any], salts: bytes, redacted: Mapping[str, bytes]
) -> bytes:
    """stored_commitment of the stored event as parsed: `traceledger verify` computes it
    for every version-2 entry, so the fields' digests are made here in one pass (as
    salt_event makes them) rather than through fields_of. Raises ValueError when the
    salts do not fit the event."""
    names = sorted(event)
    if len(salts) != SALT_SIZE * len(names):
        raise ValueError(f"{len(salts) // SALT_SIZE} salts for {len(names)} fields")
    sha, join = _sha256, b"".join
    digests = list(redacted.values())
    for n, name in enumerate(names):
        salt = salts[n * SALT_SIZE : (n + 1) * SALT_SIZE]
        digests.append(sha(join((salt, _name(name)[1], canonical(event[name])))).digest())
    return commitment(digests)
