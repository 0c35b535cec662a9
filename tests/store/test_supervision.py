"""Supervised workers: real failures in PostgreSQL are logged when they happen, counted,
retried, reported by /readyz and /metrics, and never stop the other workers."""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import AsyncIterator
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.keys import LEDGER
from tests.conftest import poll, settled
from tests.epcis_samples import PRODUCER_GCP, document, object_event
from tests.gateway.test_observability import metrics_text, sample
from tests.ingest.test_capture import post, register
from traceledger.ledger import Ledger
from traceledger.log.sequencer import Entry
from traceledger.settings import Settings
from traceledger.store.leader import MAX_BACKOFF
from traceledger.store.locks import Lock
from traceledger.tlog.leaf import sha256

Client = TestClient[web.Request, web.Application]
BREAK_STORING = "ALTER TABLE prebuilt_answers ADD CONSTRAINT broken CHECK (false) NOT VALID"
WORKERS = {"integrator", "indexer", "prebuilder", "cosigner", "notifier"}


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[Client]:
    async with TestClient(TestServer(create_app(settings))) as test_client:
        yield test_client


async def readyz(client: Client) -> tuple[int, dict[str, Any]]:
    response = await client.get("/readyz")
    return response.status, await response.json(content_type=None)


def entry(text: str) -> Entry:
    payload = text.encode()
    return Entry(sha256(payload), payload)


async def test_readyz_reports_every_worker_while_ready(client: Client) -> None:
    running = ("integrator", "indexer", "prebuilder")

    async def all_leading() -> dict[str, Any] | None:
        status, body = await readyz(client)
        workers = body.get("workers", {})
        leading = all(workers.get(n, {}).get("rounds") for n in running)
        return body if status == 200 and leading else None

    body = await poll("every worker leading", all_leading)
    assert set(body["workers"]) == WORKERS
    for name in running:
        worker = body["workers"][name]
        assert worker["state"] == "leading", (name, worker)
        assert worker["leading"] is True
        assert worker["lastError"] is None
        assert worker["lastSuccessAgeSeconds"] is not None
        assert worker["consecutiveFailures"] == 0
    # No witnesses are configured: no cosigner runs here.
    assert body["workers"]["cosigner"]["state"] == "off"


async def test_a_prebuilder_failing_on_a_bad_row_says_so_and_the_others_go_on(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "traceledger.store.leader")
    ledger = client.app[LEDGER]
    dairy = await register(client, "Shanghai Dairy", [PRODUCER_GCP])
    assert (await post(client, document(object_event(1)), dairy))[0] == 201
    await settled(ledger, 1)
    await poll("the first answer", lambda: prebuilt_count(ledger))

    # A fault no event could cause, made straight in PostgreSQL: every answer stored from
    # now on breaks a constraint. The next event on the item makes the prebuilder rebuild
    # that item's answer, which now fails every time.
    async with ledger.pool.acquire() as conn:
        await conn.execute(BREAK_STORING)
    assert (
        await post(
            client,
            document(
                object_event(1, action="OBSERVE", biz_step="shipping", disposition="in_transit")
            ),
            dairy,
        )
    )[0] == 201

    def prebuilder(body: dict[str, Any]) -> dict[str, Any]:
        worker: dict[str, Any] = body["workers"]["prebuilder"]
        return worker

    async def stuck() -> tuple[int, dict[str, Any]] | None:
        status, body = await readyz(client)
        return (status, body) if prebuilder(body)["stuckAtEntry"] is not None else None

    status, body = await poll("the prebuilder stuck at an entry", stuck)
    assert status == 503
    assert body["type"] == "/problems/not-ready"
    assert "prebuilder is failing at entry 1" in body["detail"]
    assert "CheckViolation" in prebuilder(body)["lastError"]
    assert prebuilder(body)["consecutiveFailures"] >= 3
    assert prebuilder(body)["state"] == "leading"
    # Logged when it happened, with the traceback and the item it was building.
    failed = [r for r in caplog.records if r.getMessage().startswith("prebuilder failed")]
    assert failed, [r.getMessage() for r in caplog.records]
    assert failed[0].exc_info is not None
    assert "prebuilt_answers" in logging.Formatter().formatException(failed[0].exc_info)
    assert any("prebuilder keeps failing at entry 1" in r.getMessage() for r in caplog.records)
    text = await metrics_text(client)
    assert (sample(text, "traceledger_worker_failures_total", worker="prebuilder") or 0) >= 3
    assert sample(text, "traceledger_worker_stuck_entry", worker="prebuilder") == 1
    assert (sample(text, "traceledger_worker_rounds_total", worker="integrator") or 0) >= 1

    # The integrator and the indexer go on meanwhile.
    other = object_event(2)
    assert (await post(client, document(other), dairy))[0] == 201
    await settled(ledger, 3)
    status, body = await readyz(client)
    assert status == 503
    for name in ("integrator", "indexer"):
        assert body["workers"][name]["consecutiveFailures"] == 0
        assert name not in body["detail"]

    # Repaired by hand, the prebuilder catches up by itself (after its current backoff).
    async with ledger.pool.acquire() as conn:
        await conn.execute("ALTER TABLE prebuilt_answers DROP CONSTRAINT broken")

    async def ready() -> bool:
        return (await readyz(client))[0] == 200

    await poll("ready again", ready, within=MAX_BACKOFF + 30)
    assert any("prebuilder: working again" in r.getMessage() for r in caplog.records)


async def prebuilt_count(ledger: Ledger) -> int:
    async with ledger.pool.acquire() as conn:
        count: int = await conn.fetchval("SELECT count(*) FROM prebuilt_answers")
        return count


async def test_a_leader_whose_lock_session_ends_stands_by_and_leads_again(
    client: Client, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, "traceledger.store.leader")
    ledger = client.app[LEDGER]
    assert ledger.integrator is not None
    task = ledger.integrator.task
    await settled(ledger, 0)
    async with ledger.pool.acquire() as conn:
        # What a failover does to the session holding the integrator's advisory lock.
        # pg_locks lists every database's locks: only this test's may be touched.
        killed = await conn.fetchval(
            "SELECT pg_terminate_backend(pid) FROM pg_locks WHERE locktype = 'advisory'"
            " AND database = (SELECT oid FROM pg_database WHERE datname = current_database())"
            " AND ((classid::bigint << 32) | objid::bigint) = $1",
            Lock.INTEGRATOR,
        )
    assert killed

    async def noticed() -> bool:
        return any("integrator: lost the lock" in r.getMessage() for r in caplog.records)

    await poll("the integrator noticing", noticed)
    await ledger.sequencer.append([entry(f"after {i}") for i in range(3)])
    await settled(ledger, 3)
    assert task.leading
    assert task.status().problem() is None


async def test_workers_go_on_while_a_caller_holds_every_request_connection(
    settings: Settings,
) -> None:
    """The workers' lock connections come on top of pool_max: a caller holding the one
    connection left for requests (a poll, a long read) must not starve them."""
    settings = dataclasses.replace(settings, pool_min=1, pool_max=1)
    async with Ledger.open(settings) as ledger:
        await ledger.sequencer.append([entry("while held")])
        async with ledger.pool.acquire() as held:

            async def indexed() -> bool:
                return bool(await held.fetchval("SELECT next_idx >= 1 FROM index_state"))

            await poll("the indexer, with the request connection held", indexed)
            assert await held.fetchval("SELECT max(size) FROM checkpoints") >= 1
