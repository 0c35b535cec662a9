"""Capture: from a signed submission to durably logged EPCIS events.

Two ways in share one pipeline. A DSSE envelope (POST /v1/capture) carries the
enterprise's own signature, verified before the payload is parsed deeply, so unsigned
junk costs little. A REST binding submission (POST /capture, /events) arrives with an
access token or an RFC 9421 signature already checked by the gateway; the ledger wraps
it in a custody envelope it signs itself (traceledger/ingest/custody.py). Then the
document (JSON, MessagePack or EPCIS 1.2 / 2.0 XML; an EPCISDocument or an
EPCISQueryDocument) goes through schema, meaning and authorization checks for every
event, and only a fully valid document is appended, atomically. Each accepted
envelope's receipt is stored with it, so a replay gets the identical answer.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from traceledger.accounts import registry
from traceledger.errors import ConfigError, ForbiddenError, InvalidEventsError
from traceledger.ingest.custody import Submission, custody_envelope
from traceledger.ingest.declarations import check_declared_targets
from traceledger.ingest.envelopes import XML_TYPES, parse_envelope, parse_payload
from traceledger.ingest.ratelimit import RateLimiter
from traceledger.log.sequencer import Appended, Entry, Receipt, Sequencer, stored_receipt
from traceledger.settings import Settings
from traceledger.standards import eventhash
from traceledger.standards.documents import EventDocument, event_document
from traceledger.standards.epcis import authorization_errors, check_event, now_utc
from traceledger.standards.schemas import SchemaSet, Violation
from traceledger.tlog.leaf import sha256

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Captured:
    receipt: Receipt
    enterprise_id: int
    events: int
    envelope_hash: bytes


async def read_document(media_type: str, data: bytes) -> object:
    """A submitted document's bytes as JSON; XML is parsed and converted off the event
    loop, so a large document does not stall other requests."""
    if media_type in XML_TYPES:
        return await asyncio.to_thread(parse_payload, media_type, data)
    return parse_payload(media_type, data)


class CaptureService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        sequencer: Sequencer,
        schemas: SchemaSet,
        settings: Settings,
        custodian: Ed25519PrivateKey | None = None,
    ) -> None:
        self._pool = pool
        self._sequencer = sequencer
        self._schemas = schemas
        self._settings = settings
        # The log key: it signs custody envelopes for REST binding submissions.
        self._custodian = custodian
        self._limits = RateLimiter()

    async def capture(self, body: bytes, content_type: str) -> Captured:
        """A DSSE envelope signed by a registered enterprise key."""
        envelope = parse_envelope(body, content_type, self._schemas)
        body_hash = sha256(body)
        async with self._pool.acquire() as conn:
            enterprise = await registry.verified_signer(conn, envelope)
            stored = await stored_receipt(conn, body_hash)
        if stored is not None:
            return Captured(Receipt(stored, replayed=True), enterprise.id, 0, body_hash)
        document = await read_document(envelope.payload_type, envelope.payload)
        return await self._append(document, enterprise, body, body_hash)

    async def capture_submission(
        self, submission: Submission, document: object | None = None
    ) -> Captured:
        """A REST binding submission: the ledger signs its custody envelope. `document` is
        what to check when the body is not itself a document (POST /events: one event)."""
        if self._custodian is None:
            raise ConfigError("this process holds no log key to sign custody envelopes")
        if document is None:
            document = await read_document(submission.content_type, submission.body)
        envelope = custody_envelope(submission, self._custodian)
        return await self._append(document, submission.enterprise, envelope, sha256(envelope))

    async def _append(
        self,
        document: object,
        enterprise: registry.Enterprise,
        envelope: bytes,
        envelope_hash: bytes,
    ) -> Captured:
        shaped = event_document(document)
        events = self._checked(shaped, enterprise)
        async with self._pool.acquire() as conn:
            await check_declared_targets(
                conn, events, enterprise.id, enterprise.is_authority, shaped.events_pointer
            )
        context = eventhash.document_context(shaped.document)
        entries: list[Entry] = []
        listed: list[dict[str, object]] = []
        for event in events:
            digest = eventhash.event_hash(event, context)
            # Without an eventID the standard hash ID names the event; for an error
            # declaration that is the ID of the event it declares erroneous. A sender's
            # own eventID is kept as given, and said whether it is the computed hash.
            event_id = event.get("eventID") or eventhash.event_hash_id(digest)
            stored_event = {**event, "eventID": event_id}
            payload = json.dumps(stored_event, ensure_ascii=False, separators=(",", ":")).encode()
            entries.append(Entry(event_identity(event, digest), payload, envelope))
            item: dict[str, object] = {"eventID": event_id}
            verified = eventhash.hash_id_verified(event_id, digest)
            if verified is not None:
                item["eventIDVerified"] = verified
            listed.append(item)

        def build_receipt(appended: list[Appended], tree_size: int) -> bytes:
            return json.dumps(
                {
                    "envelope": envelope_hash.hex(),
                    "entries": [
                        {
                            **item,
                            "index": a.index,
                            "status": "duplicate" if a.duplicate else "appended",
                        }
                        for item, a in zip(listed, appended, strict=True)
                    ],
                    "treeSize": tree_size,
                },
                separators=(",", ":"),
            ).encode()

        receipt = await self._sequencer.append_envelope(envelope, entries, build_receipt)
        return Captured(receipt, enterprise.id, len(events), envelope_hash)

    def _checked(
        self, shaped: EventDocument, enterprise: registry.Enterprise
    ) -> list[Mapping[str, Any]]:
        """The document's events once schema, meaning and authorization all pass."""
        problems = self._schemas.document_errors(shaped.document)
        if any(p.event is None for p in problems) or not isinstance(shaped.document, Mapping):
            raise InvalidEventsError(
                "the document does not match the EPCIS 2.0 schema", shaped.violations(problems)
            )
        events = shaped.events()
        if len(events) > self._settings.max_batch_entries:
            raise InvalidEventsError(
                "too many events in one document",
                [
                    {
                        "event": None,
                        "pointer": shaped.events_pointer,
                        "reason": f"at most {self._settings.max_batch_entries} events per request",
                    }
                ],
            )
        self._limits.take(enterprise.id, enterprise.rate_limit, len(events))

        # Check meaning for every event whose shape is right, so one answer lists it all.
        now = now_utc()
        shape_bad = {p.event for p in problems}
        forbidden: list[Violation] = []
        for i, event in enumerate(events):
            if i in shape_bad:
                continue
            checked, errors = check_event(
                event, i, now=now, max_future_skew=self._settings.max_future_skew
            )
            problems += errors
            if checked is not None:
                forbidden += authorization_errors(
                    checked, i, enterprise.prefixes, enterprise.is_authority
                )
        if problems:
            problems.sort(key=lambda p: (p.event if p.event is not None else -1, p.pointer))
            raise InvalidEventsError(
                f"{len({p.event for p in problems})} event(s) are not valid EPCIS 2.0",
                shaped.violations(problems),
            )
        if forbidden:
            raise ForbiddenError(
                f"{enterprise.name} may not record {len({p.event for p in forbidden})} of "
                "these events",
                shaped.violations(forbidden),
            )
        return events


def event_identity(event: Mapping[str, Any], digest: bytes) -> bytes:
    """The standard event hash; an error declaration is a distinct entry about that event."""
    declaration = event.get("errorDeclaration")
    if declaration is None:
        return digest
    canonical = json.dumps(declaration, sort_keys=True, separators=(",", ":")).encode()
    return sha256(b"errorDeclaration\x00" + digest + canonical)
