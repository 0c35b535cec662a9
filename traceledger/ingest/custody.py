"""Custody envelopes: how documents that came without a DSSE signature enter the log.

A standard EPCIS client speaks the REST binding: it posts a plain document with a bearer
token, or with an RFC 9421 HTTP message signature. The ledger takes custody of such a
submission by wrapping the exact request body in a DSSE envelope it signs with its own
log key, saying how the document arrived:

* ``submitted with an access token``: the enterprise's token holder sent it. The ledger
  vouches for that; nobody else can check it.
* ``signed by the enterprise``: an RFC 9421 signature by the enterprise's registered
  Ed25519 key covers the request, and the request's Content-Digest (RFC 9530) covers
  the body. The signature base and the signature are kept, so anyone holding the
  enterprise's public key can re-verify it without trusting the ledger.

The envelope is stored and committed like an enterprise's own, so the leaf's envelope
hash commits to this statement too.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from traceledger.accounts.provenance import SIGNED as BY_ENTERPRISE
from traceledger.accounts.provenance import TOKEN as BY_TOKEN
from traceledger.accounts.registry import Enterprise
from traceledger.standards import dsse

CUSTODY_TYPE: Final = "application/vnd.traceledger.submission+json"
# How each way in is recorded in the index (events.submitted_with).
SUBMITTED_WITH: Final = {BY_TOKEN: "token", BY_ENTERPRISE: "http-signature"}


@dataclass(frozen=True, slots=True)
class HttpSignature:
    """A verified RFC 9421 signature: what anyone needs to check it again."""

    keyid: str
    label: str
    signature_input: str  # the Signature-Input member, as sent
    signature: str  # the Signature member, as sent
    signature_base: str  # what the Ed25519 signature covers


@dataclass(frozen=True, slots=True)
class Submission:
    """A document posted to the REST binding, and who sent it how."""

    enterprise: Enterprise
    body: bytes
    content_type: str
    method: str
    path: str
    received_at: datetime
    token_id: int | None = None
    http_signature: HttpSignature | None = None

    @property
    def provenance(self) -> str:
        return BY_ENTERPRISE if self.http_signature is not None else BY_TOKEN


def custody_envelope(submission: Submission, key: Ed25519PrivateKey) -> bytes:
    """The DSSE envelope (JSON) the ledger signs for a submission."""
    statement: dict[str, Any] = {
        "submittedWith": submission.provenance,
        "enterprise": {"id": submission.enterprise.id, "name": submission.enterprise.name},
        "receivedAt": submission.received_at.isoformat(),
        "request": {
            "method": submission.method,
            "path": submission.path,
            "contentType": submission.content_type,
        },
        "body": base64.b64encode(submission.body).decode("ascii"),
    }
    if submission.token_id is not None:
        statement["accessToken"] = submission.token_id
    signed = submission.http_signature
    if signed is not None:
        statement["httpMessageSignature"] = {
            "keyid": signed.keyid,
            "label": signed.label,
            "signatureInput": signed.signature_input,
            "signature": signed.signature,
            "signatureBase": signed.signature_base,
        }
    payload = json.dumps(statement, ensure_ascii=False, separators=(",", ":")).encode()
    return dsse.sign(CUSTODY_TYPE, payload, key).to_json()


@dataclass(frozen=True, slots=True)
class CustodyFacts:
    enterprise_id: int
    submitted_with: str  # "token" or "http-signature"
    content_type: str
    body: bytes


def custody_facts(envelope: dsse.Envelope) -> CustodyFacts | None:
    """What a custody envelope records; None for any other envelope."""
    if envelope.payload_type != CUSTODY_TYPE:
        return None
    try:
        statement = json.loads(envelope.payload)
        enterprise = statement["enterprise"]["id"]
        submitted_with = SUBMITTED_WITH[statement["submittedWith"]]
        content_type = str(statement["request"]["contentType"])
        body = base64.b64decode(statement["body"], validate=True)
    except (ValueError, KeyError, TypeError):
        return None
    if not isinstance(enterprise, int) or not isinstance(statement, Mapping):
        return None
    return CustodyFacts(enterprise, submitted_with, content_type, body)
