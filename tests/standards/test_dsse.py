"""DSSE envelopes: PAE, key ids, JSON and MessagePack forms, verification."""

from __future__ import annotations

import base64
import hashlib
import json

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat
from hypothesis import given
from hypothesis import strategies as st

from traceledger.errors import MalformedError, SignatureError, UnverifiedSignatureError
from traceledger.standards import dsse

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))


def test_pae_matches_the_dsse_spec_example() -> None:
    # secure-systems-lab/dsse protocol.md: PAE("http://example.com/HelloWorld", "hello world")
    assert dsse.pae("http://example.com/HelloWorld", b"hello world") == (
        b"DSSEv1 29 http://example.com/HelloWorld 11 hello world"
    )


def test_keyid_is_the_sha256_of_the_der_subject_public_key_info() -> None:
    der = KEY.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)
    assert dsse.keyid(KEY.public_key()) == hashlib.sha256(der).hexdigest()
    assert len(der) == 44  # Ed25519 SPKI: 12-byte header + 32-byte key


def test_signature_covers_pae_and_verifies_with_the_public_key() -> None:
    envelope = dsse.sign("application/ld+json", b"{}", KEY)
    (sig,) = envelope.signatures
    KEY.public_key().verify(sig.sig, dsse.pae("application/ld+json", b"{}"))
    assert dsse.verify(envelope, {sig.keyid: KEY.public_key()}.get) == sig.keyid


@given(st.binary(max_size=300), st.sampled_from(["application/json", "application/msgpack"]))
def test_json_and_messagepack_forms_round_trip(payload: bytes, payload_type: str) -> None:
    envelope = dsse.sign(payload_type, payload, KEY)
    assert dsse.from_json_object(json.loads(envelope.to_json())) == envelope
    assert dsse.parse_msgpack(envelope.to_msgpack()) == envelope


def test_url_safe_base64_is_accepted() -> None:
    envelope = dsse.sign("application/json", b"\xfb\xff" * 10, KEY)
    obj = json.loads(envelope.to_json())
    obj["payload"] = base64.urlsafe_b64encode(envelope.payload).decode().rstrip("=")
    assert dsse.from_json_object(obj).payload == envelope.payload


def test_swapping_the_payload_type_breaks_the_signature() -> None:
    envelope = dsse.sign("application/json", b"{}", KEY)
    forged = dsse.Envelope("application/msgpack", envelope.payload, envelope.signatures)
    with pytest.raises(SignatureError, match="does not verify"):
        dsse.verify(forged, {envelope.signatures[0].keyid: KEY.public_key()}.get)


def test_every_signature_must_verify_and_the_first_names_the_signer() -> None:
    other = Ed25519PrivateKey.generate()
    envelope = dsse.sign("application/json", b"{}", other, KEY)
    known = {dsse.keyid(KEY.public_key()): KEY.public_key()}
    with pytest.raises(UnverifiedSignatureError, match="no such active key") as caught:
        dsse.verify(envelope, known.get)  # a signature nobody can check is not ignored
    assert (caught.value.key_id, caught.value.position) == (
        dsse.keyid(other.public_key()),
        "/signatures/0",
    )
    known[dsse.keyid(other.public_key())] = other.public_key()
    assert dsse.verify(envelope, known.get) == dsse.keyid(other.public_key())
    assert dsse.verified_keyids(envelope, known.get) == [
        dsse.keyid(other.public_key()),
        dsse.keyid(KEY.public_key()),
    ]


@pytest.mark.parametrize(
    ("obj", "where"),
    [
        ([], "/"),
        ({"payloadType": "", "payload": "", "signatures": []}, "/payloadType"),
        ({"payloadType": "a", "payload": "!!", "signatures": []}, "/payload"),
        ({"payloadType": "a", "payload": "", "signatures": []}, "/signatures"),
        (
            {"payloadType": "a", "payload": "", "signatures": [{"keyid": "", "sig": ""}]},
            "/signatures/0/keyid",
        ),
        (
            {"payloadType": "a", "payload": "", "signatures": [{"keyid": "0" * 64, "sig": 5}]},
            "/signatures/0/sig",
        ),
        ({"payloadType": "a", "payload": "", "signatures": [], "extra": 1}, "/"),
    ],
)
def test_malformed_envelopes_name_the_position(obj: object, where: str) -> None:
    with pytest.raises(MalformedError) as caught:
        dsse.from_json_object(obj)
    assert caught.value.position == where


def test_malformed_messagepack_is_refused() -> None:
    with pytest.raises(MalformedError):
        dsse.parse_msgpack(b"\xc1")
    with pytest.raises(MalformedError, match="after"):
        dsse.parse_msgpack(dsse.sign("a", b"", KEY).to_msgpack() + b"\x00")
