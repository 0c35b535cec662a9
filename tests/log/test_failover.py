"""Automatic failover on pg_auto_failover, with the ledger connected by a multi-host DSN.

While four clients push, the primary's machine dies: kill -9 of its postgres and of the
pg_autoctl that would restart it. The standby is promoted; capture answers again within
30 s, with retriable 503s in between and never a 500; every acknowledged event is at
its index; the checkpoint after the failover extends the one before; the integrator and
the indexer carry on on the new primary; `traceledger verify` passes.
"""

from __future__ import annotations

import asyncio
import base64
import json
import signal
import sys
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from tests.autofailover import formation, missing
from tests.conftest import ROOT, cli_args, poll, running_service
from tests.epcis_samples import PRODUCER_GCP, document, object_event
from traceledger.accounts import registry
from traceledger.settings import Settings
from traceledger.standards.dsse import sign_document
from traceledger.store.pool import connect_pool
from traceledger.tlog import merkle
from traceledger.tlog.checkpoint import Checkpoint, open_checkpoint
from traceledger.tlog.note import Verifier

pytestmark = [pytest.mark.slow, pytest.mark.skipif(missing() is not None, reason=str(missing()))]

CLIENTS = 4
RECOVERY = 30.0  # seconds capture may take to answer again after the primary dies
ACKS = 150  # acknowledged events wanted before the kill, and again after it


@dataclass
class Pushes:
    """What the clients saw: every answer's (sent, answered, status) times and status,
    every acknowledged event."""

    answers: list[tuple[float, float, int]] = field(default_factory=list)
    acked: dict[str, int] = field(default_factory=dict)  # eventID -> index
    refused: list[str] = field(default_factory=list)  # answers that were neither

    def statuses(self, after: float = 0.0) -> Counter[int]:
        return Counter(status for sent, _, status in self.answers if sent >= after)

    def first_ack_after(self, moment: float) -> float | None:
        """When the first request sent after `moment` was acknowledged."""
        acks = (at for sent, at, s in self.answers if sent > moment and s in (200, 201))
        return min(acks, default=None)


async def push(
    http: aiohttp.ClientSession,
    base: str,
    key: Ed25519PrivateKey,
    client: int,
    pushes: Pushes,
    stop: asyncio.Event,
) -> None:
    """One enterprise system: new events one after the other, each sent again after a 503
    until accepted (a replay is safe), as gateway.clients.capture does, only faster."""
    loop = asyncio.get_running_loop()
    sent = 0
    while not stop.is_set():
        body, content_type = sign_document(document(object_event(f"{client}X{sent}")), key)
        while not stop.is_set():
            sent_at = loop.time()
            try:
                async with http.post(
                    base + "/v1/capture", data=body, headers={"Content-Type": content_type}
                ) as response:
                    status, answer = response.status, await response.json(content_type=None)
            except aiohttp.ClientError as exc:  # the service itself must stay up
                status, answer = 0, {"detail": repr(exc)}
            pushes.answers.append((sent_at, loop.time(), status))
            if status in (200, 201):
                pushes.acked.update((e["eventID"], e["index"]) for e in answer["entries"])
                break
            if status != 503:
                pushes.refused.append(f"{status}: {answer}")
                return
            await asyncio.sleep(0.05)
        sent += 1


async def signed_checkpoint(http: aiohttp.ClientSession, base: str) -> tuple[Checkpoint, str]:
    async with http.get(base + "/v1/log") as response:
        verifier = Verifier.parse((await response.json())["verifierKey"])
    async with http.get(base + "/checkpoint") as response:
        assert response.status == 200
        note = await response.text()
    return open_checkpoint(note, verifier), note


async def progress(dsn: str) -> tuple[int, int, int]:
    """The log's size, the newest checkpoint's size and how far the index reaches."""
    conn = await asyncpg.connect(dsn)
    try:
        row = await conn.fetchrow(
            "SELECT (SELECT size FROM log_head) AS head,"
            " (SELECT max(size) FROM checkpoints) AS signed,"
            " (SELECT next_idx FROM index_state) AS indexed"
        )
    finally:
        await conn.close()
    assert row is not None
    return row["head"], row["signed"], row["indexed"]


async def stored_events(dsn: str) -> dict[str, int]:
    """eventID -> index of every event the database (the writable node) holds."""
    conn = await asyncpg.connect(dsn)
    try:
        rows = await conn.fetch("SELECT idx, payload FROM entries WHERE payload IS NOT NULL")
    finally:
        await conn.close()
    return {json.loads(bytes(r["payload"]))["eventID"]: r["idx"] for r in rows}


async def test_the_standby_takes_over_and_the_log_keeps_every_promise(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    loop = asyncio.get_running_loop()
    async with formation() as cluster:
        primary, standby = cluster.nodes
        settings = Settings(
            home=tmp_path / "home", database_url=cluster.dsn, origin="failover.localhost/log"
        )
        key = Ed25519PrivateKey.generate()
        pool = await connect_pool(cluster.dsn, min_size=1, max_size=1)
        try:
            async with pool.acquire() as conn:
                await registry.add_enterprise(conn, "Dairy", [PRODUCER_GCP], key.public_key())
        finally:
            await pool.close()

        pushes, stop = Pushes(), asyncio.Event()
        async with (
            running_service(settings, TRACELEDGER_CHECKPOINT_INTERVAL="0.2") as (proc, base),
            aiohttp.ClientSession() as http,
        ):
            clients = [
                asyncio.create_task(push(http, base, key, n, pushes, stop)) for n in range(CLIENTS)
            ]
            try:
                await poll("acks before the kill", lambda: _at_least(pushes, ACKS))
                before, _ = await signed_checkpoint(http, base)
                killed_at = loop.time()
                cluster.kill(primary)
                await cluster.wait_for(
                    "the standby promoted", {standby.port: ("wait_primary", "primary")}, 60
                )
                promoted_at = loop.time()

                async def recovered() -> float | None:
                    return pushes.first_ack_after(killed_at)

                recovered_at = await poll("capture answering again", recovered, within=RECOVERY)
                acked_then = len(pushes.acked)
                await poll("acks on the new primary", lambda: _at_least(pushes, acked_then + ACKS))
            finally:
                stop.set()
                await asyncio.gather(*clients)

            assert pushes.refused == [], pushes.refused[:5]
            statuses = pushes.statuses()
            assert set(statuses) <= {200, 201, 503}, statuses
            during = pushes.statuses(after=killed_at)[503]

            # The integrator and the indexer lead on the new primary and catch up.
            async def caught_up() -> dict[str, Any] | None:
                async with http.get(base + "/readyz") as response:
                    ready = await response.json(content_type=None)
                    if response.status != 200:
                        return None
                head, signed, indexed = await progress(cluster.node_dsn(standby))
                covered = head > max(pushes.acked.values())
                return ready if covered and signed == indexed == head else None

            ready = await poll("integrated on the new primary", caught_up)
            for worker in ("integrator", "indexer"):
                assert ready["workers"][worker]["state"] == "leading", ready
            after, _ = await signed_checkpoint(http, base)
            async with http.get(
                f"{base}/v1/proof/consistency?first={before.size}&second={after.size}"
            ) as response:
                hashes = [base64.b64decode(h) for h in (await response.json())["hashes"]]
            merkle.verify_consistency(
                before.size, after.size, before.root_hash, after.root_hash, hashes
            )
            proc.send_signal(signal.SIGTERM)
            assert await asyncio.wait_for(proc.wait(), 60) == 0

        stored = await stored_events(cluster.node_dsn(standby))
        moved = {e: i for e, i in pushes.acked.items() if stored.get(e) != i}
        verify = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway.cli",
            *cli_args(settings),
            "verify",
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
            cwd=ROOT,
        )
        verified = (await asyncio.wait_for(verify.communicate(), 120))[0].decode()
        with capsys.disabled():
            print(
                f"\nfailover: promoted {promoted_at - killed_at:.1f}s after the kill, capture "
                f"answered again after {recovered_at - killed_at:.1f}s ({during} retriable "
                f"503s, no 500); {len(pushes.acked)} events acknowledged, "
                f"{len(pushes.acked) - len(moved)} kept at their index; checkpoint "
                f"{before.size} -> {after.size} consistent"
            )
        assert not moved, f"{len(moved)} acknowledged events missing or moved"
        assert verify.returncode == 0, verified
        assert "OK:" in verified


async def _at_least(pushes: Pushes, count: int) -> bool:
    return len(pushes.acked) >= count
