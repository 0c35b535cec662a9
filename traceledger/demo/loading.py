"""Registering the demo's parties and capturing the story through the real capture path.

Every step passes the same schema, meaning and authorization checks as any enterprise's
data. The parties' keys come from a public seed (so a reload produces byte-identical
envelopes, which the ledger answers as replays): anyone can sign as a demo party, so
never load the demo into a real ledger.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from traceledger.accounts import registry
from traceledger.demo.parties import Party, party_key
from traceledger.demo.story import Scenario
from traceledger.errors import RegistryError
from traceledger.ingest.capture import CaptureService
from traceledger.standards.dsse import keyid, sign_document


async def register(parties: Iterable[Party], pool: asyncpg.Pool) -> dict[str, Ed25519PrivateKey]:
    """Register each party once with its derived key; an existing party must hold that key."""
    keys: dict[str, Ed25519PrivateKey] = {}
    async with pool.acquire() as conn:
        for party in parties:
            key = keys[party.name] = party_key(party.name)
            ent_id = await conn.fetchval("SELECT id FROM enterprises WHERE name = $1", party.name)
            if ent_id is None:
                try:
                    await registry.add_enterprise(
                        conn, party.name, list(party.prefixes), key.public_key(), role=party.role
                    )
                    continue
                except RegistryError:
                    # Perhaps registered concurrently by another process: look again.
                    ent_id = await conn.fetchval(
                        "SELECT id FROM enterprises WHERE name = $1", party.name
                    )
                    if ent_id is None:
                        raise
            kid = keyid(key.public_key())
            found = (await registry.keys_by_id(conn, [kid])).get(kid)
            if found is None or found.enterprise_id != ent_id or found.revoked_at is not None:
                raise RegistryError(
                    f"an enterprise named {party.name!r} exists without the demo's key {kid}; "
                    "load the demo into an empty ledger"
                )
    return keys


async def registered_at(pool: asyncpg.Pool, name: str) -> datetime | None:
    """When the party was registered: a stable anchor for the story's times across restarts."""
    async with pool.acquire() as conn:
        value: datetime | None = await conn.fetchval(
            "SELECT created_at FROM enterprises WHERE name = $1", name
        )
    return value


async def load(
    scenario: Scenario, pool: asyncpg.Pool, capture: CaptureService
) -> dict[str, Ed25519PrivateKey]:
    """Register the parties, then capture every step as a signed envelope, in order.

    Loading again is harmless: the envelopes are byte-identical, so each is a replay.
    A refused step raises the capture error (InvalidEventsError, ForbiddenError...).
    """
    keys = await register(scenario.parties, pool)
    for step in scenario.steps:
        body, content_type = sign_document(step.document, keys[step.party])
        await capture.capture(body, content_type)
    return keys
