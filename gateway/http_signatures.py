"""RFC 9421 HTTP Message Signatures on the EPCIS REST binding, for enterprises whose
systems cannot build DSSE envelopes but can sign a request.

A request is accepted as signed by an enterprise when one signature (Ed25519, `keyid`
= the hex key ID of one of its registered, active keys) covers at least `@method`,
`@path` and, with a body, `content-digest`, and the RFC 9530 Content-Digest matches the
body. It must say when it was `created` (at most five minutes ago). Anything less, or a
wrong signature, is a 401: a request that claims a signature is never quietly taken
as unsigned.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import http_sf
from aiohttp import web
from http_message_signatures import (
    HTTPMessageSignaturesException,
    HTTPMessageVerifier,
    MappingKeyResolver,
    algorithms,
)

from gateway.keys import LEDGER
from gateway.problems import UNAUTHORIZED, ProblemError
from traceledger.accounts import registry
from traceledger.ingest.custody import HttpSignature

MAX_AGE = timedelta(minutes=5)
_CHALLENGE = {"WWW-Authenticate": 'Bearer realm="traceledger", Signature'}


def is_signed(request: web.Request) -> bool:
    return "Signature-Input" in request.headers or "Signature" in request.headers


def _refused(reason: str) -> ProblemError:
    return ProblemError(
        UNAUTHORIZED, f"the HTTP message signature is not accepted: {reason}", _CHALLENGE
    )


@dataclass(frozen=True, slots=True)
class _Message:
    """The request as the signature library reads it."""

    method: str
    url: str
    headers: Any


def _key_ids(request: web.Request) -> list[str]:
    """The keyid of every signature in Signature-Input (at most a handful)."""
    try:
        parsed = http_sf.parse(
            request.headers.get("Signature-Input", "").encode(), tltype="dictionary"
        )
    except (ValueError, TypeError) as exc:
        raise _refused("Signature-Input is not a structured field dictionary") from exc
    if not isinstance(parsed, dict) or not 1 <= len(parsed) <= 4:
        raise _refused("send one signature (Signature-Input with one label)")
    ids = []
    for member in parsed.values():
        params = member[1] if isinstance(member, tuple) and len(member) == 2 else None
        keyid = params.get("keyid") if isinstance(params, dict) else None
        if not isinstance(keyid, str):
            raise _refused("every signature needs a keyid parameter")
        ids.append(keyid)
    return ids


async def verified_http_signature(
    request: web.Request, body: bytes
) -> tuple[registry.Enterprise, HttpSignature]:
    """The enterprise whose registered key signed this request, and what it signed."""
    async with request.app[LEDGER].pool.acquire() as conn:
        keys = await registry.keys_by_id(conn, _key_ids(request))
        active = {k: info for k, info in keys.items() if info.revoked_at is None}
        if not active:
            raise _refused("its keyid is not an active key of a registered enterprise")
        verifier = HTTPMessageVerifier(
            signature_algorithm=algorithms.ED25519,
            key_resolver=MappingKeyResolver(
                public_keys={k: i.public_key for k, i in active.items()}, private_keys={}
            ),
        )
        required = ("@method", "@path", "content-digest") if body else ("@method", "@path")
        message = _Message(request.method, str(request.url), request.headers)
        try:
            results = verifier.verify(
                message, max_age=MAX_AGE, require_components=required, body=body
            )
        except HTTPMessageSignaturesException as exc:
            raise _refused(str(exc) or type(exc).__name__) from exc
        result = results[0]
        keyid = str(result.parameters["keyid"])
        enterprise = await registry.get_enterprise(conn, active[keyid].enterprise_id)
    base = "\n".join(f"{name}: {value}" for name, value in result.covered_components.items())
    return enterprise, HttpSignature(
        keyid=keyid,
        label=result.label,
        signature_input=request.headers["Signature-Input"],
        signature=request.headers["Signature"],
        signature_base=base,
    )
