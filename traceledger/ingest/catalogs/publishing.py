"""Publishing a catalog version: verify the authority's envelope, refuse stale versions, append."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass

import asyncpg

from traceledger.accounts import registry
from traceledger.errors import (
    ForbiddenError,
    StaleCatalogError,
    UnsupportedMediaError,
)
from traceledger.ingest.catalogs.document import (
    CATALOG_MARKER,
    PAYLOAD_TYPE,
    CatalogDoc,
    canonical_json,
    catalog_in_payload,
    parse_catalog,
)
from traceledger.ingest.envelopes import load_json, parse_envelope
from traceledger.log.sequencer import Appended, Entry, Sequencer, stored_receipt
from traceledger.standards import dsse
from traceledger.store.conn import Conn
from traceledger.store.locks import Lock
from traceledger.tlog.leaf import sha256


@dataclass(frozen=True, slots=True)
class Published:
    body: bytes
    replayed: bool


async def _authority_signer(conn: Conn, envelope: dsse.Envelope) -> registry.Enterprise:
    """The signing enterprise, verified exactly as capture verifies; it must be an authority."""
    enterprise = await registry.verified_signer(conn, envelope)
    if not enterprise.is_authority:
        raise ForbiddenError(
            f"{enterprise.name} is not an authority; only authorities publish risk catalogs"
        )
    return enterprise


async def latest_version(conn: Conn, catalog: str) -> int | None:
    """The highest recorded version of `catalog`, counting entries not yet indexed."""
    # The unindexed tail first: whatever the indexer commits meanwhile is then in the table.
    tail = await conn.fetch(
        "SELECT payload FROM entries WHERE idx >= (SELECT next_idx FROM index_state)"
        " AND payload IS NOT NULL AND position($1::bytea IN payload) > 0",
        CATALOG_MARKER,
    )
    found: list[int] = []
    for row in tail:
        doc = catalog_in_payload(bytes(row["payload"]), None)
        if doc is not None and doc.catalog == catalog:
            found.append(doc.version)
    indexed = await conn.fetchval(
        "SELECT max(version) FROM catalog_versions WHERE catalog = $1", catalog
    )
    if indexed is not None:
        found.append(int(indexed))
    return max(found, default=None)


class CatalogPublisher:
    """Appends authority-signed catalog versions, one version number at a time.

    One per process: its lock lets one publication at a time in this process take a
    connection and wait on the database lock that serializes versions across processes.
    Without it, concurrent publications could hold every pooled connection waiting on
    that lock while the holder's append waits for a connection."""

    def __init__(self, pool: asyncpg.Pool, sequencer: Sequencer) -> None:
        self._pool = pool
        self._sequencer = sequencer
        self._one_at_a_time = asyncio.Lock()

    async def publish(self, body: bytes, content_type: str) -> Published:
        """Verify, validate and append one authority-signed catalog version."""
        envelope = parse_envelope(body, content_type)
        body_hash = sha256(body)
        async with self._pool.acquire() as conn:
            await _authority_signer(conn, envelope)
            if envelope.payload_type != PAYLOAD_TYPE:
                raise UnsupportedMediaError(
                    f"payloadType {envelope.payload_type!r} is not accepted here; "
                    f"a catalog is signed as {PAYLOAD_TYPE}"
                )
            stored = await stored_receipt(conn, body_hash)
        if stored is not None:
            return Published(stored, replayed=True)
        document = load_json(envelope.payload, "payload")
        doc = parse_catalog(document)
        payload = canonical_json(document)
        # Shielded: once the version check passed, finish the append under the lock even
        # if the client goes away, so no second equal version can slip in between.
        return await asyncio.shield(self._append(body, body_hash, doc, payload))

    async def _append(
        self, body: bytes, body_hash: bytes, doc: CatalogDoc, payload: bytes
    ) -> Published:
        identity = sha256(payload)
        async with self._one_at_a_time, self._pool.acquire() as conn, conn.transaction():
            await conn.execute("SELECT pg_advisory_xact_lock($1)", Lock.CATALOG_PUBLISH)
            logged = await conn.fetchval("SELECT idx FROM entries WHERE identity = $1", identity)
            if logged is None:  # the identical catalog again is a duplicate, not stale
                current = await latest_version(conn, doc.catalog)
                if current is not None and doc.version <= current:
                    raise StaleCatalogError(
                        f"{doc.catalog} version {doc.version} is not newer than the recorded "
                        f"version {current}",
                        current,
                    )

            def build_receipt(appended: list[Appended], tree_size: int) -> bytes:
                return json.dumps(
                    {
                        "envelope": body_hash.hex(),
                        "catalog": doc.catalog,
                        "version": doc.version,
                        "index": appended[0].index,
                        "status": "duplicate" if appended[0].duplicate else "appended",
                        "treeSize": tree_size,
                    },
                    separators=(",", ":"),
                ).encode()

            receipt = await self._sequencer.append_envelope(
                body, [Entry(identity, payload, body)], build_receipt
            )
        return Published(receipt.body, receipt.replayed)
