"""Parsing untrusted request bodies: DSSE envelopes and the payloads inside them.

Every failure is a MalformedError saying where, or an UnsupportedMediaError naming the
types we take; nothing here touches the database.
"""

from __future__ import annotations

import json
import math

import msgpack

from traceledger.errors import MalformedError, UnsupportedMediaError
from traceledger.ingest.custody import custody_facts
from traceledger.standards import dsse, jsontext
from traceledger.standards.epcis_xml import document_from_xml
from traceledger.standards.schemas import SchemaSet

JSON_TYPES = frozenset({"application/json", "application/ld+json"})
MSGPACK_TYPES = frozenset(
    {"application/msgpack", "application/x-msgpack", "application/vnd.msgpack"}
)
XML_TYPES = frozenset({"application/xml", "text/xml"})


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
        return jsontext.loads(data, parse_constant=_no_special_floats)
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
    except ValueError as exc:
        # An integer of more digits than Python converts (4,300 by default): refused, as
        # no EPCIS field holds such a number.
        raise MalformedError(f"{what} holds a number too long to read", position=what) from exc


def parse_payload(payload_type: str, payload: bytes) -> object:
    """An EPCIS document from its bytes: JSON, MessagePack, or EPCIS 1.2 / 2.0 XML (in the
    EPCIS 2.0 JSON-LD form)."""
    if payload_type in JSON_TYPES:
        return load_json(payload, "payload")
    if payload_type in XML_TYPES:
        return document_from_xml(payload)
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
        "application/json, application/msgpack or application/xml"
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


def stored_envelope(body: bytes) -> dsse.Envelope:
    """An envelope as stored: JSON starts with "{", a MessagePack map never does."""
    if body.lstrip()[:1] == b"{":
        return dsse.from_json_object(load_json(body, "envelope"))
    return dsse.parse_msgpack(body)


def stored_document(body: bytes) -> object:
    """The EPCIS document (or, from POST /events, the event) a stored envelope carries:
    the enterprise's payload, or the request body a custody envelope wraps."""
    envelope = stored_envelope(body)
    custody = custody_facts(envelope)
    if custody is not None:
        return parse_payload(custody.content_type, custody.body)
    return parse_payload(envelope.payload_type, envelope.payload)
