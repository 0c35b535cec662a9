"""DSSE envelopes signed with Ed25519: parse (JSON or MessagePack), sign, verify.

The signature covers PAE(payloadType, payload) =
"DSSEv1" SP len(type) SP type SP len(payload) SP payload, so neither the type nor the
payload can be swapped. `keyid` is the lowercase hex SHA-256 of the key's DER
SubjectPublicKeyInfo.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import msgpack
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)

from traceledger.errors import ConfigError, MalformedError, UnverifiedSignatureError

MAX_SIGNATURES = 16


@dataclass(frozen=True, slots=True)
class Signature:
    keyid: str
    sig: bytes


@dataclass(frozen=True, slots=True)
class Envelope:
    payload_type: str
    payload: bytes
    signatures: tuple[Signature, ...]

    def to_json(self) -> bytes:
        return json.dumps(
            {
                "payloadType": self.payload_type,
                "payload": base64.b64encode(self.payload).decode("ascii"),
                "signatures": [
                    {"keyid": s.keyid, "sig": base64.b64encode(s.sig).decode("ascii")}
                    for s in self.signatures
                ],
            },
            separators=(",", ":"),
        ).encode()

    def to_msgpack(self) -> bytes:
        packed: bytes = msgpack.packb(
            {
                "payloadType": self.payload_type,
                "payload": self.payload,
                "signatures": [{"keyid": s.keyid, "sig": s.sig} for s in self.signatures],
            },
            use_bin_type=True,
        )
        return packed


def pae(payload_type: str, payload: bytes) -> bytes:
    t = payload_type.encode()
    return b"DSSEv1 %d %b %d %b" % (len(t), t, len(payload), payload)


MAX_KEYID = 256


def keyid(public_key: Ed25519PublicKey) -> str:
    der = public_key.public_bytes(
        serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return hashlib.sha256(der).hexdigest()


def load_public_key_pem(pem: bytes) -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as exc:
        raise MalformedError(f"not a PEM SubjectPublicKeyInfo public key: {exc}") from exc
    if not isinstance(key, Ed25519PublicKey):
        raise MalformedError("the public key is not an Ed25519 key")
    return key


def sign(payload_type: str, payload: bytes, *keys: Ed25519PrivateKey) -> Envelope:
    message = pae(payload_type, payload)
    return Envelope(
        payload_type,
        payload,
        tuple(Signature(keyid(k.public_key()), k.sign(message)) for k in keys),
    )


def load_private_key(path: Path) -> Ed25519PrivateKey:
    key = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(key, Ed25519PrivateKey):
        raise ConfigError(f"{path} is not an Ed25519 private key")
    return key


def sign_document(
    document: Mapping[str, Any] | bytes,
    key: Ed25519PrivateKey,
    *,
    as_msgpack: bool = False,
    payload_type: str = "application/ld+json",
) -> tuple[bytes, str]:
    """The request body and its Content-Type for one EPCIS document (bytes of XML with
    `payload_type` application/xml)."""
    payload = document if isinstance(document, bytes) else json.dumps(document).encode()
    envelope = sign(payload_type, payload, key)
    if as_msgpack:
        return envelope.to_msgpack(), "application/msgpack"
    return envelope.to_json(), "application/json"


def _b64(value: object, where: str) -> bytes:
    if not isinstance(value, str):
        raise MalformedError(f"{where} must be a base64 string", position=where)
    try:
        text = value.replace("-", "+").replace("_", "/")  # DSSE allows URL-safe too
        return base64.b64decode(text + "=" * (-len(text) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise MalformedError(f"{where} is not valid base64", position=where) from exc


def _shape(obj: object, binary: bool) -> Envelope:
    """Check the envelope's shape; `binary` means payload and sig are raw bytes."""
    if not isinstance(obj, dict):
        raise MalformedError("the body must be a DSSE envelope object", position="/")
    extra = set(obj) - {"payloadType", "payload", "signatures"}
    if extra:
        raise MalformedError(f"unknown envelope members: {sorted(extra)}", position="/")
    payload_type = obj.get("payloadType")
    if not isinstance(payload_type, str) or not payload_type:
        raise MalformedError("payloadType must be a non-empty string", position="/payloadType")
    raw_payload = obj.get("payload")
    if binary:
        if not isinstance(raw_payload, bytes):
            raise MalformedError("payload must be raw bytes in MessagePack", position="/payload")
        payload = raw_payload
    else:
        payload = _b64(raw_payload, "/payload")
    sigs = obj.get("signatures")
    if not isinstance(sigs, list) or not 1 <= len(sigs) <= MAX_SIGNATURES:
        raise MalformedError(
            f"signatures must be a list of 1..{MAX_SIGNATURES}", position="/signatures"
        )
    parsed = []
    for i, s in enumerate(sigs):
        where = f"/signatures/{i}"
        if not isinstance(s, dict) or set(s) - {"keyid", "sig"}:
            raise MalformedError("a signature is {keyid, sig}", position=where)
        kid = s.get("keyid")
        # Any key id that is not one of ours (whatever its shape) is refused 401 by
        # `verify`, naming it; here only what cannot be named is malformed.
        if not isinstance(kid, str) or not 1 <= len(kid) <= MAX_KEYID:
            raise MalformedError(
                f"keyid must be a string of 1..{MAX_KEYID} characters (ours are the lowercase"
                " hex SHA-256 of the key's DER SubjectPublicKeyInfo)",
                position=where + "/keyid",
            )
        raw_sig = s.get("sig")
        if binary:
            if not isinstance(raw_sig, bytes):
                raise MalformedError(
                    "sig must be raw bytes in MessagePack", position=where + "/sig"
                )
            sig = raw_sig
        else:
            sig = _b64(raw_sig, where + "/sig")
        parsed.append(Signature(kid, sig))
    return Envelope(payload_type, payload, tuple(parsed))


def from_json_object(obj: object) -> Envelope:
    """An envelope from parsed JSON (payload and signatures in base64)."""
    return _shape(obj, binary=False)


def parse_msgpack(body: bytes) -> Envelope:
    try:
        obj = msgpack.unpackb(body, raw=False, strict_map_key=True, max_bin_len=len(body))
    except msgpack.ExtraData as exc:
        raise MalformedError("body has bytes after the MessagePack envelope") from exc
    except (ValueError, msgpack.FormatError, msgpack.StackError, TypeError) as exc:
        raise MalformedError(f"body is not MessagePack: {exc}") from exc
    return _shape(obj, binary=True)


def verify(envelope: Envelope, key_for: Callable[[str], Ed25519PublicKey | None]) -> str:
    """Check that every signature verifies against the key `key_for` gives its key id (the
    active keys); return the first signature's key id, the signer.

    Any other signature is refused, not skipped: an envelope that carries a signature
    nobody can check would say it was signed by someone who did not sign it.
    """
    message = pae(envelope.payload_type, envelope.payload)
    for i, s in enumerate(envelope.signatures):
        key = key_for(s.keyid)
        if key is None:
            raise UnverifiedSignatureError(s.keyid, f"/signatures/{i}", "no such active key")
        try:
            key.verify(s.sig, message)
        except InvalidSignature as exc:
            raise UnverifiedSignatureError(
                s.keyid, f"/signatures/{i}", "the signature is wrong"
            ) from exc
    return envelope.signatures[0].keyid


def verified_keyids(
    envelope: Envelope, key_for: Callable[[str], Ed25519PublicKey | None]
) -> list[str]:
    """The key ids whose signatures verify with the key `key_for` gives, in envelope order
    (for crediting stored envelopes, whatever else they carry)."""
    message = pae(envelope.payload_type, envelope.payload)
    found = []
    for s in envelope.signatures:
        key = key_for(s.keyid)
        if key is None:
            continue
        try:
            key.verify(s.sig, message)
        except InvalidSignature:
            continue
        found.append(s.keyid)
    return found
