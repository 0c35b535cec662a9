"""kill -9 during a stream of appends loses no acknowledged entry and forks nothing."""

from __future__ import annotations

import asyncio
import os
import signal
import sys

import pytest

from tests.conftest import ROOT, wait_for_checkpoint
from traceledger.audit.verify import verify_log
from traceledger.ledger import Ledger
from traceledger.log.sequencer import Entry
from traceledger.settings import Settings
from traceledger.tlog import merkle


async def run_and_kill(settings: Settings, tag: str, acks_before_kill: int) -> dict[bytes, int]:
    env = {
        **os.environ,
        "TRACELEDGER_HOME": str(settings.home),
        "DATABASE_URL": str(settings.database_url),
        "TRACELEDGER_ORIGIN": settings.origin,
    }
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.appender_proc",
        tag,
        cwd=ROOT,
        env=env,
        stdout=asyncio.subprocess.PIPE,
    )
    assert proc.stdout is not None
    acked: dict[bytes, int] = {}
    try:
        while len(acked) < acks_before_kill:
            line = await asyncio.wait_for(proc.stdout.readline(), timeout=60)
            if not line:
                break
            _, identity, index = line.decode().split()
            acked[bytes.fromhex(identity)] = int(index)
    finally:
        proc.send_signal(signal.SIGKILL)
        # Whatever else it printed before dying was acknowledged too.
        rest = await proc.stdout.read()
        await proc.wait()
    # Only whole lines count: the kill may cut the last one short.
    for whole in rest.decode().split("\n")[:-1]:
        _, identity_hex, index_text = whole.split()
        acked[bytes.fromhex(identity_hex)] = int(index_text)
    return acked


@pytest.mark.slow
async def test_kill_9_mid_stream_loses_no_acknowledged_entry(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    acked: dict[bytes, int] = {}
    checkpoints_before: list[tuple[int, bytes]] = []
    for round_, kill_after in enumerate((150, 700, 2000)):
        acked.update(await run_and_kill(settings, f"round{round_}", kill_after))
        async with Ledger.open(settings, integrate=False) as ledger, ledger.pool.acquire() as conn:
            row = await conn.fetchrow(
                "SELECT size, root_hash FROM checkpoints ORDER BY size DESC LIMIT 1"
            )
            if row is not None:
                checkpoints_before.append((row["size"], bytes(row["root_hash"])))
    assert len(acked) >= 2850

    async with Ledger.open(settings) as ledger:
        async with ledger.pool.acquire() as conn:
            rows = await conn.fetch("SELECT idx, identity FROM entries ORDER BY idx")
        stored = {bytes(r["identity"]): r["idx"] for r in rows}
        assert [r["idx"] for r in rows] == list(range(len(rows))), "indexes have gaps"
        missing = {i: x for i, x in acked.items() if stored.get(i) != x}
        with capsys.disabled():
            print(
                f"\ncrash test: 3 kill -9s; {len(acked)} entries acknowledged, "
                f"{len(acked) - len(missing)} kept at their index, {len(rows)} stored"
            )
        assert not missing, f"{len(missing)} acknowledged entries missing or moved"

        payload = b"after the crashes"
        await ledger.sequencer.append([Entry(merkle.leaf_hash(payload), payload)])
        await wait_for_checkpoint(ledger, len(rows) + 1)
        latest = await ledger.reader.checkpoint()
        for size, root in checkpoints_before:
            proof = await ledger.reader.consistency_proof(size, latest.size)
            merkle.verify_consistency(size, latest.size, root, latest.root_hash, proof)
        report = await verify_log(ledger.pool)
        assert report.entries == len(rows) + 1
