"""Capture: from a signed DSSE envelope to durably logged EPCIS events.

Order matters: the signature is verified before the payload is parsed deeply, so
unsigned junk costs little; then schema, meaning and authorization are checked for
every event, and only a fully valid envelope is appended, atomically. Each accepted
envelope's receipt is stored with it, so a replay gets the identical answer.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from traceledger.accounts import registry
from traceledger.errors import (
    ForbiddenError,
    InvalidEventsError,
)
from traceledger.ingest.envelopes import parse_envelope, parse_payload
from traceledger.ingest.ratelimit import RateLimiter
from traceledger.log.sequencer import Appended, Entry, Receipt, Sequencer, stored_receipt
from traceledger.settings import Settings
from traceledger.standards import eventhash
from traceledger.standards.epcis import authorization_errors, check_event, now_utc
from traceledger.standards.schemas import SchemaSet, Violation
from traceledger.tlog.leaf import sha256

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Captured:
    receipt: Receipt
    enterprise_id: int
    events: int


def _violations(items: list[Violation]) -> list[dict[str, object]]:
    return [{"event": v.event, "pointer": v.pointer, "reason": v.reason} for v in items]


class CaptureService:
    def __init__(
        self, pool: asyncpg.Pool, sequencer: Sequencer, schemas: SchemaSet, settings: Settings
    ) -> None:
        self._pool = pool
        self._sequencer = sequencer
        self._schemas = schemas
        self._settings = settings
        self._limits = RateLimiter()

    async def capture(self, body: bytes, content_type: str) -> Captured:
        envelope = parse_envelope(body, content_type, self._schemas)
        body_hash = sha256(body)
        async with self._pool.acquire() as conn:
            enterprise = await registry.verified_signer(conn, envelope)
            stored = await stored_receipt(conn, body_hash)
        if stored is not None:
            return Captured(Receipt(stored, replayed=True), enterprise.id, 0)

        document = parse_payload(envelope.payload_type, envelope.payload)
        problems = self._schemas.document_errors(document)
        if any(p.event is None for p in problems) or not isinstance(document, Mapping):
            raise InvalidEventsError(
                "the document does not match the EPCIS 2.0 schema", _violations(problems)
            )
        events: list[Mapping[str, Any]] = document["epcisBody"]["eventList"]
        if len(events) > self._settings.max_batch_entries:
            raise InvalidEventsError(
                "too many events in one document",
                [
                    {
                        "event": None,
                        "pointer": "/epcisBody/eventList",
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
                _violations(problems),
            )
        if forbidden:
            raise ForbiddenError(
                f"{enterprise.name} may not record {len({p.event for p in forbidden})} of "
                "these events",
                _violations(forbidden),
            )

        context = eventhash.document_context(document)
        entries: list[Entry] = []
        event_ids: list[str] = []
        for event in events:
            digest = eventhash.event_hash(event, context)
            identity = event_identity(event, digest)
            # Without an eventID the standard hash ID names the event; for an error
            # declaration that is the ID of the event it declares erroneous.
            event_id = event.get("eventID") or eventhash.event_hash_id(digest)
            stored_event = {**event, "eventID": event_id}
            payload = json.dumps(stored_event, ensure_ascii=False, separators=(",", ":")).encode()
            entries.append(Entry(identity, payload, body))
            event_ids.append(event_id)

        def build_receipt(appended: list[Appended], tree_size: int) -> bytes:
            return json.dumps(
                {
                    "envelope": body_hash.hex(),
                    "entries": [
                        {
                            "eventID": eid,
                            "index": a.index,
                            "status": "duplicate" if a.duplicate else "appended",
                        }
                        for eid, a in zip(event_ids, appended, strict=True)
                    ],
                    "treeSize": tree_size,
                },
                separators=(",", ":"),
            ).encode()

        receipt = await self._sequencer.append_envelope(body, entries, build_receipt)
        return Captured(receipt, enterprise.id, len(events))


def event_identity(event: Mapping[str, Any], digest: bytes) -> bytes:
    """The standard event hash; an error declaration is a distinct entry about that event."""
    declaration = event.get("errorDeclaration")
    if declaration is None:
        return digest
    canonical = json.dumps(declaration, sort_keys=True, separators=(",", ":")).encode()
    return sha256(b"errorDeclaration\x00" + digest + canonical)
