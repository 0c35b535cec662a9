"""A real EPCIS client against a real ledger process: OpenEPCIS's Python connector
(`openepcis-client`, what its Odoo and ERPNext add-ons use) submits documents over the
standard REST binding and follows their jobs, across a restart of the ledger; then the
same client with an RFC 9421-signing session.
"""

from __future__ import annotations

import asyncio
import signal
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
import requests
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from http_message_signatures import HTTPMessageSigner, MappingKeyResolver, algorithms
from openepcis_client.core.client import Client
from openepcis_client.core.config import ClientConfig
from openepcis_client.core.errors import OpenEpcisError
from openepcis_client.events import Capture, Query, document, object_event, quantity_element

from tests.conftest import running_service
from traceledger.accounts import registry, tokens
from traceledger.settings import Settings

GTIN = "09521234000013"  # company prefix 9521234


class BearerToken:
    """The connector's AuthStrategy, for a ledger enterprise token."""

    def __init__(self, token: str) -> None:
        self.token = token

    def bearer(self) -> str:
        return self.token

    def invalidate(self) -> None:
        """A static token has nothing to refresh."""


class SigningSession(requests.Session):
    """A requests session that signs each request (RFC 9421, Ed25519, Content-Digest)."""

    def __init__(self, key: Ed25519PrivateKey, key_id: str) -> None:
        super().__init__()
        self.key_id = key_id
        self.signer = HTTPMessageSigner(
            signature_algorithm=algorithms.ED25519,
            key_resolver=MappingKeyResolver(public_keys={}, private_keys={key_id: key}),
        )

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        body = request.body or b""
        covered = ("@method", "@path", "content-digest") if body else ("@method", "@path")
        self.signer.sign(
            request,
            key_id=self.key_id,
            created=datetime.now(UTC),
            covered_component_ids=covered,
            body=body.encode() if isinstance(body, str) else body if body else None,
        )
        return super().send(request, **kwargs)


async def register(dsn: str, name: str) -> tuple[Ed25519PrivateKey, str, str]:
    key = Ed25519PrivateKey.generate()
    conn = await asyncpg.connect(dsn)
    try:
        ent, key_id = await registry.add_enterprise(conn, name, ["9521234"], key.public_key())
        _, token = await tokens.add_token(conn, f"{name} connector", "enterprise", ent)
    finally:
        await conn.close()
    return key, key_id, token


def shipment(serial: int) -> dict[str, Any]:
    when = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
    return document(
        [
            object_event(
                action="ADD",
                event_time=when,
                biz_step="commissioning",
                disposition="active",
                epcs=[f"https://id.gs1.org/01/{GTIN}/21/{serial}"],
                quantities=[quantity_element(f"https://id.gs1.org/01/{GTIN}/10/L1", 5, "KGM")],
                read_point="9521234000006",
            )
        ]
    )


async def stop(proc: asyncio.subprocess.Process) -> None:
    proc.send_signal(signal.SIGTERM)
    await proc.wait()


async def test_openepcis_client_submits_follows_jobs_across_a_restart_and_signs(
    settings: Settings,
) -> None:
    assert settings.database_url is not None
    async with running_service(settings) as (proc, base):
        key, key_id, token = await register(settings.database_url, "Connector GmbH")
        client = Client(ClientConfig(base_url=base), BearerToken(token))
        capture = Capture(client)
        assert await asyncio.to_thread(capture.check) == ""
        receipt = await asyncio.to_thread(capture.submit, shipment(1))
        assert receipt.answerable
        outcome = await asyncio.to_thread(capture.outcome, receipt)
        assert (outcome.known, outcome.running, outcome.success) == (True, False, True)

        single = object_event(
            action="OBSERVE",
            event_time=datetime(2026, 5, 4, 11, 0, tzinfo=UTC),
            biz_step="shipping",
            epcs=[f"https://id.gs1.org/01/{GTIN}/21/1"],
        )
        created = await asyncio.to_thread(
            client.request, "POST", "/events", single, None, None, True
        )
        assert created.status_code == 201
        assert created.headers["Location"].startswith("/events/")

        refused = await asyncio.to_thread(capture.submit, {"type": "EPCISDocument"})
        verdict = await asyncio.to_thread(capture.outcome, refused)
        assert (verdict.running, verdict.success) == (False, False)
        assert verdict.errors
        await stop(proc)

    async with running_service(settings) as (proc, base):
        client = Client(ClientConfig(base_url=base), BearerToken(token))
        after = await asyncio.to_thread(Capture(client).outcome, receipt)
        assert (after.known, after.success) == (True, True)  # the job survived the restart
        page = await asyncio.to_thread(Query(client).page)
        assert len(page.events) == 2

        signed = Client(
            ClientConfig(base_url=base), BearerToken("unused"), SigningSession(key, key_id)
        )
        receipt = await asyncio.to_thread(Capture(signed).submit, shipment(2))
        outcome = await asyncio.to_thread(Capture(signed).outcome, receipt)
        assert outcome.success

        forged = Client(
            ClientConfig(base_url=base),
            BearerToken("unused"),
            SigningSession(Ed25519PrivateKey.generate(), key_id),
        )
        with pytest.raises(OpenEpcisError) as refused_signature:
            await asyncio.to_thread(Capture(forged).submit, shipment(3))
        assert refused_signature.value.status == 401
        await stop(proc)
