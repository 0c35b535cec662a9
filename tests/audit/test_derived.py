"""`traceledger verify` also rebuilds what is built from the log, the event-key index and
the prebuilt answers, and fails on any difference (issue 11): an answer edited in the
database (a recall removed) or an index row deleted is reported, naming it."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from gateway.cli.main import main as cli_main
from gateway.keys import LEDGER
from tests.conftest import cli_args
from tests.lookup.test_history import tell_story
from tests.lookup.test_prebuilt import CAN, Client, build_all, client, stored
from traceledger.audit.index_check import verify_index
from traceledger.ledger import answer_builder
from traceledger.settings import Settings

__all__ = ["client"]  # the service without a background builder


async def verify(settings: Settings, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = await asyncio.to_thread(cli_main, [*cli_args(settings), "verify"])
    printed = capsys.readouterr()
    return code, printed.out + printed.err


async def set_body(client: Client, key: str, body: dict[str, Any]) -> None:
    async with client.app[LEDGER].pool.acquire() as conn:
        await conn.execute(
            "UPDATE prebuilt_answers SET body = $2 WHERE key = $1", key, json.dumps(body).encode()
        )


async def test_verify_reports_an_edited_prebuilt_answer_and_a_missing_index_row(
    client: Client, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    await tell_story(client)
    ledger = client.app[LEDGER]
    await build_all(answer_builder(ledger))
    code, out = await verify(settings, capsys)
    assert code == 0, out
    # Every stored answer (two serials, two lots) was assembled again and compared.
    assert "prebuilt answers: 4 assembled again and compared" in out
    original = (await stored(ledger))[CAN]
    assert original["status"]["recalled"] is True

    # The recall removed from the status and from the events: the log says otherwise.
    edited = json.loads(json.dumps(original))
    edited["events"] = [e for e in edited["events"] if e["disposition"] != "recalled"]
    edited["status"] |= {"recalled": False, "recalls": []}
    await set_body(client, CAN, edited)
    code, out = await verify(settings, capsys)
    assert code == 1
    assert f"prebuilt answer {CAN}: its status differs from the log's" in out

    # The status alone edited: it no longer follows from the answer's own events either.
    edited = json.loads(json.dumps(original))
    edited["status"] |= {"recalled": False, "recalls": []}
    await set_body(client, CAN, edited)
    code, out = await verify(settings, capsys)
    assert code == 1
    assert f"prebuilt answer {CAN}: its status does not follow from its own events" in out

    await set_body(client, CAN, original)
    assert (await verify(settings, capsys))[0] == 0

    # An index row deleted: the recall no longer names the lot, as far as the index knows.
    async with ledger.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT k.idx, k.key, k.role FROM event_keys k JOIN events e ON e.idx = k.idx"
            " WHERE e.disposition = 'recalled' ORDER BY k.idx, k.key LIMIT 1"
        )
        assert row is not None
        idx, key, role = row["idx"], row["key"], row["role"]
        await conn.execute(
            "DELETE FROM event_keys WHERE idx = $1 AND key = $2 AND role = $3", idx, key, role
        )
    code, out = await verify(settings, capsys)
    assert code == 1
    assert f"entry {idx}: event_keys differ from the event (missing: {key} as {role}" in out
    # The same report whether worker processes read the pages or this process does.
    here = await verify_index(ledger.pool, workers=0)
    assert here.count == 1
    assert await verify_index(ledger.pool, workers=2) == here
