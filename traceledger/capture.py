"""Capture: from a signed DSSE envelope to durably logged EPCIS events.

Order matters: the signature is verified before the payload is parsed deeply, so
unsigned junk costs little; then schema, meaning and authorization are checked for
every event, and only a fully valid envelope is appended, atomically. Each accepted
envelope's receipt is stored with it, so a replay gets the identical answer.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg
import msgpack

from traceledger import dsse, eventhash, registry
from traceledger.epcis import authorization_errors, check_event, now_utc
from traceledger.errors import (
    ForbiddenError,
    InvalidEventsError,
    MalformedError,
    UnsupportedMediaError,
)
from traceledger.leaf import sha256
from traceledger.ratelimit import RateLimiter
from traceledger.schemas import SchemaSet, Violation
from traceledger.sequencer import Appended, Entry, Receipt, Sequencer, stored_receipt
from traceledger.settings import Settings

log = logging.getLogger(__name__)

JSON_TYPES = frozenset({"application/json", "application/ld+json"})
MSGPACK_TYPES = frozenset(
    {"application/msgpack", "application/x-msgpack", "application/vnd.msgpack"}
)


@dataclass(frozen=True, slots=True)
class Captured:
    receipt: Receipt
    enterprise_id: int
    events: int


def _violations(items: list[Violation]) -> list[dict[str, object]]:
    return [{"event": v.event, "pointer": v.pointer, "reason": v.reason} for v in items]


def _no_special_floats(token: str) -> object:
    raise MalformedError(f"{token} is not a JSON number")


def _finite(value: object) -> object:
    """MessagePack can carry NaN and infinities; EPCIS quantities and readings cannot."""
    stack = [value]
    while stack:  # iterative: untrusted nesting must not exhaust the Python stack
        item = stack.pop()
        if isinstance(item, float) and not math.isfinite(item):
            raise MalformedError("payload holds a NaN or infinite number", position="payload")
        if isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
    return value


def load_json(data: bytes, what: str) -> object:
    """Parse untrusted JSON; every failure is a MalformedError saying where."""
    prefix = "" if what == "body" else f"{what} "
    try:
        return json.loads(data, parse_constant=_no_special_floats)
    except UnicodeDecodeError as exc:
        raise MalformedError(
            f"{what} is not UTF-8: {exc.reason}", position=f"{prefix}byte {exc.start}"
        ) from exc
    except RecursionError as exc:
        raise MalformedError(f"{what} is nested too deeply", position=what) from exc
    except json.JSONDecodeError as exc:
        raise MalformedError(
            f"{what} is not JSON: {exc.msg}",
            position=f"{prefix}line {exc.lineno} column {exc.colno}",
        ) from exc


def parse_payload(payload_type: str, payload: bytes) -> object:
    if payload_type in JSON_TYPES:
        return load_json(payload, "payload")
    if payload_type in MSGPACK_TYPES:
        try:
            unpacked = msgpack.unpackb(payload, raw=False, strict_map_key=True)
        except (
            ValueError,
            msgpack.ExtraData,
            msgpack.FormatError,
            msgpack.StackError,
            TypeError,
        ) as exc:
            raise MalformedError(f"payload is not MessagePack: {exc}", position="payload") from exc
        return _finite(unpacked)
    raise UnsupportedMediaError(
        f"payloadType {payload_type!r} is not accepted; use application/ld+json, "
        "application/json or application/msgpack"
    )


def parse_envelope(
    body: bytes, content_type: str, schemas: SchemaSet | None = None
) -> dsse.Envelope:
    """The DSSE envelope of a request body (JSON checked against our schema if given)."""
    if content_type in JSON_TYPES:
        obj = load_json(body, "body")
        problems = schemas.envelope_errors(obj) if schemas is not None else []
        if problems:
            first = problems[0]
            raise MalformedError(f"not a DSSE envelope: {first.reason}", position=first.pointer)
        return dsse.from_json_object(obj)
    if content_type in MSGPACK_TYPES:
        return dsse.parse_msgpack(body)
    raise UnsupportedMediaError(
        f"Content-Type {content_type!r} is not accepted; send the DSSE envelope as "
        "application/json or application/msgpack"
    )


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
