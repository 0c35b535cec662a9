"""SIGTERM under load: every acknowledged capture survives and the log verifies."""

from __future__ import annotations

import asyncio
import json
import signal

import aiohttp
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.conftest import running_service
from tests.epcis_samples import PRODUCER_GCP, document, object_event
from traceledger.accounts import registry
from traceledger.audit.verify import verify_log
from traceledger.settings import Settings
from traceledger.standards.dsse import sign_document
from traceledger.store.pool import connect_pool


@pytest.mark.slow
async def test_sigterm_under_load_loses_no_acknowledged_event(settings: Settings) -> None:
    pool = await connect_pool(str(settings.database_url), min_size=1, max_size=2)
    key = Ed25519PrivateKey.generate()
    async with pool.acquire() as conn:
        await registry.add_enterprise(conn, "Busy Dairy", [PRODUCER_GCP], key.public_key())
    acked: dict[str, int] = {}
    enough = asyncio.Event()  # set once the load is well under way
    async with (
        running_service(settings, TRACELEDGER_CHECKPOINT_INTERVAL="0.2") as (proc, base),
        aiohttp.ClientSession() as http,
    ):

        async def pusher(worker: int) -> None:
            n = 0
            while True:
                doc = document(*(object_event(f"{worker}x{n}x{k}") for k in range(5)))
                body, ctype = sign_document(doc, key)
                try:
                    async with http.post(
                        base + "/v1/capture", data=body, headers={"Content-Type": ctype}
                    ) as r:
                        if r.status == 201:
                            for e in (await r.json())["entries"]:
                                acked[e["eventID"]] = e["index"]
                            if len(acked) >= 300:
                                enough.set()
                except (TimeoutError, aiohttp.ClientError):
                    return  # the server is going away: stop pushing
                n += 1

        tasks = [asyncio.create_task(pusher(w)) for w in range(6)]
        await asyncio.wait_for(enough.wait(), 60)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 60) == 0
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
    try:
        async with pool.acquire() as conn:
            rows = await conn.fetch("SELECT idx, payload FROM entries ORDER BY idx")
            head = await conn.fetchval("SELECT size FROM log_head")
            signed = await conn.fetchval("SELECT max(size) FROM checkpoints")

        stored = {json.loads(r["payload"])["eventID"]: r["idx"] for r in rows}
        assert all(stored.get(eid) == idx for eid, idx in acked.items())
        assert [r["idx"] for r in rows] == list(range(head))
        assert signed == head  # the final checkpoint covers everything sequenced
        assert (await verify_log(pool)).entries == head
    finally:
        await pool.close()
