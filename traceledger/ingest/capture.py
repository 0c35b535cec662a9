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

import logging
from dataclasses import dataclass

import asyncpg
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from traceledger.accounts import registry
from traceledger.cpu import CpuPool
from traceledger.errors import ConfigError, InvalidEventsError
from traceledger.ingest.custody import Submission, custody_envelope
from traceledger.ingest.declarations import check_declared_targets
from traceledger.ingest.envelopes import parse_envelope
from traceledger.ingest.prepare import Limits, Refused, Signer, prepare
from traceledger.ingest.ratelimit import RateLimiter
from traceledger.log.sequencer import Appended, Entry, Receipt, Sequencer, stored_receipt
from traceledger.settings import Settings
from traceledger.standards.epcis import now_utc
from traceledger.standards.schemas import SchemaSet
from traceledger.tlog.leaf import sha256

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Captured:
    receipt: Receipt
    enterprise_id: int
    events: int
    envelope_hash: bytes


class CaptureService:
    def __init__(
        self,
        pool: asyncpg.Pool,
        sequencer: Sequencer,
        schemas: SchemaSet,
        settings: Settings,
        custodian: Ed25519PrivateKey | None = None,
        cpu: CpuPool | None = None,
    ) -> None:
        self._pool = pool
        # Where documents are checked and hashed (inline without a pool: tools, tests).
        self._cpu = cpu or CpuPool(0)
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
        submitted = (envelope.payload_type, envelope.payload)
        return await self._append(None, submitted, enterprise, body, body_hash)

    async def capture_submission(
        self, submission: Submission, document: object | None = None
    ) -> Captured:
        """A REST binding submission: the ledger signs its custody envelope. `document` is
        what to check when the body is not itself a document (POST /events: one event)."""
        if self._custodian is None:
            raise ConfigError("this process holds no log key to sign custody envelopes")
        envelope = custody_envelope(submission, self._custodian)
        submitted = (submission.content_type, submission.body)
        return await self._append(
            document, submitted, submission.enterprise, envelope, sha256(envelope)
        )

    async def _append(
        self,
        document: object | None,
        submitted: tuple[str, bytes],
        enterprise: registry.Enterprise,
        envelope: bytes,
        envelope_hash: bytes,
    ) -> Captured:
        """Check and hash in a worker process, then append: `document`, or else the
        submitted (media type, bytes)."""
        settings = self._settings
        signer = Signer(
            enterprise.name,
            enterprise.prefixes,
            enterprise.is_authority,
            enterprise.delegated_prefixes,
        )
        limits = Limits(
            now_utc(),
            settings.max_future_skew,
            settings.max_batch_entries,
            settings.selective_disclosure,
        )
        prepared = await self._cpu.run(prepare, document, *submitted, signer, limits)
        if isinstance(prepared, Refused):
            raise prepared.error()
        self._limits.take(enterprise.id, enterprise.rate_limit, len(prepared.listed))
        async with self._pool.acquire() as conn:
            await check_declared_targets(
                conn,
                prepared.declared,
                enterprise.id,
                enterprise.is_authority,
                prepared.events_pointer,
            )
        if prepared.disclosed:  # the events' entries get version-2 leaves
            entries = [
                Entry(identity, payload, envelope, salts, commitment)
                for identity, payload, (salts, commitment) in zip(
                    prepared.identities, prepared.payloads, prepared.disclosed, strict=True
                )
            ]
        else:
            entries = [
                Entry(identity, payload, envelope)
                for identity, payload in zip(prepared.identities, prepared.payloads, strict=True)
            ]
        if prepared.master_data is not None:  # the header's names, after the events
            if len(entries) >= settings.max_batch_entries:
                reason = f"at most {settings.max_batch_entries - 1} events with master data"
                raise InvalidEventsError(
                    "too many events in one document with master data",
                    [{"event": None, "pointer": "/epcisHeader", "reason": reason}],
                )
            entries.append(Entry(*prepared.master_data, envelope))
        events = len(prepared.listed)

        def build_receipt(appended: list[Appended], tree_size: int) -> bytes:
            receipt: dict[str, object] = {
                "envelope": envelope_hash.hex(),
                "entries": [
                    {**item, "index": a.index, "status": _status(a)}
                    for item, a in zip(prepared.listed, appended[:events], strict=True)
                ],
                "treeSize": tree_size,
            }
            if len(appended) > events:
                named = appended[events]
                receipt["masterData"] = {"index": named.index, "status": _status(named)}
            # orjson: for 1,000 entries json.dumps held the event loop about 15 ms.
            return orjson.dumps(receipt)

        receipt = await self._sequencer.append_envelope(envelope, entries, build_receipt)
        return Captured(receipt, enterprise.id, events, envelope_hash)


def _status(appended: Appended) -> str:
    return "duplicate" if appended.duplicate else "appended"
