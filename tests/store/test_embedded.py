"""The embedded PostgreSQL after crashes: kill -9 the service, or the service and its
server, again and again; every start succeeds the first time, and a clean stop leaves no
server process behind."""

from __future__ import annotations

import asyncio
import os
import signal
from functools import partial
from pathlib import Path

import aiohttp
import pytest

from tests.conftest import poll, running_service
from traceledger.settings import Settings
from traceledger.store.embedded import server_processes

RESTARTS = 20


def postmaster_pid(pgdata: Path) -> int:
    return int((pgdata / "postmaster.pid").read_text().split("\n", 1)[0])


async def ready(base: str) -> bool:
    async with aiohttp.ClientSession() as http, http.get(base + "/readyz") as response:
        return response.status == 200


@pytest.mark.slow
async def test_twenty_kill_9_restarts_each_start_first_time_and_a_clean_stop_leaves_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    settings = Settings(home=tmp_path / "home", database_url=None)
    pgdata = settings.pgdata.resolve()
    kills = {"service": 0, "service and server": 0}
    for round_ in range(RESTARTS):
        # `running_service` fails the test unless this one start answers.
        async with running_service(settings, TRACELEDGER_CHECKPOINT_INTERVAL="0.2") as (proc, base):
            await poll(f"round {round_}: ready", partial(ready, base))
            # Every other round the server dies too, with its children still running.
            victims = [proc.pid]
            if round_ % 2:
                victims.append(postmaster_pid(pgdata))
            for pid in victims:
                os.kill(pid, signal.SIGKILL)
            await proc.wait()
            kills["service and server" if round_ % 2 else "service"] += 1

    async with running_service(settings, TRACELEDGER_CHECKPOINT_INTERVAL="0.2") as (proc, base):
        await poll("ready after the last crash", partial(ready, base))
        assert server_processes(pgdata), "the server's processes are found while it runs"
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 60) == 0

    async def none_left() -> bool:
        return not server_processes(pgdata)

    await poll("every server process gone", none_left, within=30)
    assert not (pgdata / "postmaster.pid").exists()
    with capsys.disabled():
        print(f"\nembedded restarts: {RESTARTS} after kill -9 ({kills}), all first time")
