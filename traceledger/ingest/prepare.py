"""The pure half of capture: from a submitted document to the entries to append.

Parsing, the schema, the meaning and authorization checks, the event hashes and the
stored form of each event depend only on the document and on facts about its signer,
so they run in a worker process (traceledger.cpu): the event loop stays free, and both
cores work. What needs the database (the signer's keys before, declared targets and the
append after) stays in traceledger.ingest.capture.

A refusal comes back as a value, not an exception: exceptions with extra fields do not
survive the trip between processes.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from traceledger.errors import (
    ForbiddenError,
    InvalidEventsError,
    MalformedError,
    TraceledgerError,
    UnsupportedMediaError,
)
from traceledger.ingest.envelopes import parse_payload
from traceledger.ingest.masterdata import header_entry
from traceledger.standards import eventhash
from traceledger.standards.documents import EventDocument, event_document
from traceledger.standards.epcis import authorization_errors, check_event
from traceledger.standards.schemas import SchemaSet, Violation
from traceledger.tlog.disclosure import salt_event
from traceledger.tlog.leaf import sha256


@dataclass(frozen=True, slots=True)
class Signer:
    """What the checks need to know of whoever submits the document."""

    name: str
    prefixes: tuple[str, ...]
    is_authority: bool
    # Other owners' prefixes it may create goods under (`traceledger enterprise delegate`).
    delegated: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class Limits:
    now: datetime
    max_future_skew: float
    max_events: int
    disclose: bool = False  # version-2 leaves: salted field digests (tlog/disclosure.py)


@dataclass(frozen=True, slots=True)
class Prepared:
    """The entries to append, in document order, and what the receipt lists of each."""

    identities: list[bytes]
    payloads: list[bytes]
    listed: list[dict[str, object]]  # eventID, and eventIDVerified when it is a hash ID
    declared: dict[int, str]  # error declarations: event position -> the eventID named
    events_pointer: str
    # The header's master data as one more entry: (identity, payload), or None.
    master_data: tuple[bytes, bytes] | None = None
    # With selective disclosure: per event, its fields' salts and the leaf's commitment.
    disclosed: list[tuple[bytes, bytes]] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class Refused:
    """Why the document cannot be captured: the error class's name and its fields."""

    kind: str
    message: str
    errors: list[dict[str, object]] = field(default_factory=list)
    position: str | None = None

    def error(self) -> TraceledgerError:
        match self.kind:
            case "invalid":
                return InvalidEventsError(self.message, self.errors)
            case "forbidden":
                return ForbiddenError(self.message, self.errors)
            case "media":
                return UnsupportedMediaError(self.message)
        return MalformedError(self.message, self.position)


@functools.cache
def _schemas() -> SchemaSet:
    """Compiled once per worker process."""
    return SchemaSet()


def prepare(
    document: object | None,
    media_type: str,
    data: bytes,
    signer: Signer,
    limits: Limits,
) -> Prepared | Refused:
    """Check a document (`document`, or else `data` of `media_type`) and build its entries."""
    try:
        if document is None:
            document = parse_payload(media_type, data)
        shaped = event_document(document)
        events = _checked(shaped, signer, limits)
    except InvalidEventsError as exc:
        return Refused("invalid", str(exc), exc.errors)
    except ForbiddenError as exc:
        return Refused("forbidden", str(exc), exc.errors)
    except UnsupportedMediaError as exc:
        return Refused("media", str(exc))
    except MalformedError as exc:
        return Refused("malformed", str(exc), position=exc.position)
    return replace(
        _entries(shaped, events, limits.disclose),
        master_data=header_entry(shaped.document, signer.name),
    )


def _checked(shaped: EventDocument, signer: Signer, limits: Limits) -> list[Mapping[str, Any]]:
    """The document's events once schema, meaning and authorization all pass."""
    problems = _schemas().document_errors(shaped.document)
    if any(p.event is None for p in problems) or not isinstance(shaped.document, Mapping):
        raise InvalidEventsError(
            "the document does not match the EPCIS 2.0 schema", shaped.violations(problems)
        )
    events = shaped.events()
    if len(events) > limits.max_events:
        reason = f"at most {limits.max_events} events per request"
        raise InvalidEventsError(
            "too many events in one document",
            [{"event": None, "pointer": shaped.events_pointer, "reason": reason}],
        )
    # Check meaning for every event whose shape is right, so one answer lists it all.
    shape_bad = {p.event for p in problems}
    forbidden: list[Violation] = []
    for i, event in enumerate(events):
        if i in shape_bad:
            continue
        checked, errors = check_event(
            event, i, now=limits.now, max_future_skew=limits.max_future_skew
        )
        problems += errors
        if checked is not None:
            forbidden += authorization_errors(
                checked, i, signer.prefixes, signer.is_authority, signer.delegated
            )
    if problems:
        problems.sort(key=lambda p: (p.event if p.event is not None else -1, p.pointer))
        raise InvalidEventsError(
            f"{len({p.event for p in problems})} event(s) are not valid EPCIS 2.0",
            shaped.violations(problems),
        )
    if forbidden:
        raise ForbiddenError(
            f"{signer.name} may not record {len({p.event for p in forbidden})} of these events",
            shaped.violations(forbidden),
        )
    return events


def _entries(shaped: EventDocument, events: list[Mapping[str, Any]], disclose: bool) -> Prepared:
    context = eventhash.document_context(shaped.document)
    prepared = Prepared([], [], [], {}, shaped.events_pointer)
    for i, event in enumerate(events):
        digest = eventhash.event_hash(event, context)
        # Without an eventID the standard hash ID names the event; for an error
        # declaration that is the ID of the event it declares erroneous. A sender's own
        # eventID is kept as given, and said whether it is the computed hash.
        event_id = event.get("eventID") or eventhash.event_hash_id(digest)
        stored_event = {**event, "eventID": event_id}
        prepared.identities.append(event_identity(event, digest))
        if disclose:  # a version-2 leaf: salted field digests (tlog/disclosure.py)
            payload, salts, commitment = salt_event(stored_event)
            prepared.disclosed.append((salts, commitment))
        else:
            payload = json.dumps(stored_event, ensure_ascii=False, separators=(",", ":")).encode()
        prepared.payloads.append(payload)
        item: dict[str, object] = {"eventID": event_id}
        verified = eventhash.hash_id_verified(event_id, digest)
        if verified is not None:
            item["eventIDVerified"] = verified
        prepared.listed.append(item)
        if "errorDeclaration" in event and isinstance(event.get("eventID"), str):
            prepared.declared[i] = event["eventID"]
    return prepared


def event_identity(event: Mapping[str, Any], digest: bytes) -> bytes:
    """The standard event hash; an error declaration is a distinct entry about that event."""
    declaration = event.get("errorDeclaration")
    if declaration is None:
        return digest
    canonical = json.dumps(declaration, sort_keys=True, separators=(",", ":")).encode()
    return sha256(b"errorDeclaration\x00" + digest + canonical)
