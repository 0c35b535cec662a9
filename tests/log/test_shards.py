"""Time-sharded logs: lookups and proofs across a shard boundary, and `traceledger rotate`.

The 2025 log and the 2026 log are two real logs, each in its own database with its own
origin and key; the 2026 service reads the 2025 one as a past shard.
"""

from __future__ import annotations

import asyncio
import dataclasses
import hashlib
import os
import shlex
import sys
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.keys import HISTORY, LEDGER
from tests.conftest import (
    ROOT,
    cli_args,
    drop_database,
    scratch_database,
    settled,
    wait_for_checkpoint,
    with_database,
)
from tests.epcis_samples import document
from tests.ingest.test_capture import Signer, post, register
from tests.lookup.test_history import CAN, CAN_DL, CASE, DAIRY, LOT_A
from traceledger.audit.history_check import verify_history
from traceledger.errors import ConfigError, IntegrityError
from traceledger.ledger import Ledger
from traceledger.log.sequencer import Entry
from traceledger.settings import Settings
from traceledger.standards.gs1 import parse_digital_link
from traceledger.tlog.note import Verifier

Client = TestClient[web.Request, web.Application]

Y2025, Y2026 = "trace.example.org/log/2025", "trace.example.org/log/2026"
AUTHORITY = "6909999"
CAN2 = f"urn:epc:id:sgtin:{DAIRY}.012345.CAN2"
CAN2_DL = "/01/09421234123456/21/CAN2"
LOT_A_DL = "/01/09421234123456/10/LOTA"


def at(year: int, day: str, kind: str, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "eventTime": f"{year}-{day}T08:00:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        **fields,
    }


def commission(year: int, day: str, epc: str) -> dict[str, Any]:
    return at(
        year,
        day,
        "ObjectEvent",
        action="ADD",
        bizStep="commissioning",
        disposition="active",
        epcList=[epc],
        # The lot only in the ILMD: each can's commissioning is its own, not the lot's.
        ilmd={"cbvmda:lotNumber": "LOTA", "cbvmda:countryOfOrigin": "NZ"},
    )


def made_in_2025() -> dict[str, Any]:
    """The can and a second can of lot A are made, packed and shipped in 2025."""
    pack = at(
        2025,
        "12-02",
        "AggregationEvent",
        action="ADD",
        bizStep="packing",
        parentID=CASE,
        childEPCs=[CAN],
    )
    ship = at(
        2025,
        "12-03",
        "ObjectEvent",
        action="OBSERVE",
        bizStep="shipping",
        disposition="in_transit",
        epcList=[CASE],
    )
    return document(commission(2025, "12-01", CAN), commission(2025, "12-01", CAN2), pack, ship)


def recall_2026() -> dict[str, Any]:
    return document(
        at(
            2026,
            "01-15",
            "ObjectEvent",
            action="OBSERVE",
            bizStep="holding",
            disposition="recalled",
            quantityList=[{"epcClass": LOT_A}],
        )
    )


def sale_2026() -> dict[str, Any]:
    return document(
        at(
            2026,
            "01-10",
            "ObjectEvent",
            action="OBSERVE",
            bizStep="retail_selling",
            disposition="retail_sold",
            epcList=[CAN],
        )
    )


@pytest.fixture
async def url_2025(pg_server: str) -> AsyncIterator[str]:
    async with scratch_database(pg_server) as url:
        yield url


async def fill_2025(settings: Settings) -> tuple[Verifier, Signer]:
    """Run the 2025 log, record the 2025 story, stop it (signing its final checkpoint)."""
    async with TestClient(TestServer(create_app(settings))) as c2025:
        dairy = await register(c2025, "Canterbury Dairy", [DAIRY])
        assert (await post(c2025, made_in_2025(), dairy))[0] == 201
        await settled(c2025.app[LEDGER], 4)
        return c2025.app[LEDGER].verifier, dairy


async def head(url: str) -> int:
    conn = await asyncpg.connect(url)
    try:
        size: int = await conn.fetchval("SELECT size FROM log_head")
        return size
    finally:
        await conn.close()


async def lookup(client: Client, path: str) -> dict[str, Any]:
    response = await client.get(path, headers={"Accept": "application/json"})
    assert response.status == 200, await response.text()
    body: dict[str, Any] = await response.json()
    return body


@pytest.fixture
async def two_years(
    tmp_path: Path, database_url: str, url_2025: str
) -> AsyncIterator[tuple[Client, Verifier, Signer]]:
    """The 2026 service (reading the 2025 log as a past shard), the 2025 key, the dairy."""
    s2025 = Settings(
        home=tmp_path / "home-2025", database_url=url_2025, origin=Y2025, checkpoint_interval=0.05
    )
    v2025, _ = await fill_2025(s2025)
    s2026 = Settings(
        home=tmp_path / "home-2026",
        database_url=database_url,
        origin=Y2026,
        checkpoint_interval=0.05,
        past_shards=(url_2025,),
    )
    async with TestClient(TestServer(create_app(s2026))) as c2026:
        await wait_for_checkpoint(c2026.app[LEDGER], 0)  # the new log's empty tree
        yield c2026, v2025, await register(c2026, "Canterbury Dairy", [DAIRY])


async def test_a_lookup_spans_the_shard_boundary_and_verifies_against_both_keys(
    two_years: tuple[Client, Verifier, Signer], url_2025: str
) -> None:
    c2026, v2025, dairy = two_years
    port = await register(c2026, "Yangshan Port Inspection", [AUTHORITY], role="authority")
    assert (await post(c2026, sale_2026(), dairy))[0] == 201
    assert (await post(c2026, recall_2026(), port))[0] == 201
    await settled(c2026.app[LEDGER], 2)
    v2026 = c2026.app[LEDGER].verifier

    h = await lookup(c2026, CAN_DL)
    got = [(e["log"], e["bizStep"], e["relation"]) for e in h["events"]]
    assert got == [
        (Y2025, "commissioning", "item"),
        (Y2025, "packing", "item"),
        (Y2025, "shipping", "container"),
        (Y2026, "retail_selling", "item"),
        (Y2026, "holding", "lot"),  # the 2025 lot, recalled in 2026
    ]
    assert h["status"]["recalled"] is True
    assert h["status"]["recalls"][0]["log"] == Y2026
    assert h["product"]["originCountry"] == "NZ"  # from the 2025 commissioning
    # The top-level checkpoint is still the current log's; `logs` holds one per log.
    assert h["verifierKey"] == v2026.encode()
    assert [(g["origin"], g["verifierKey"]) for g in h["logs"]] == [
        (Y2026, v2026.encode()),
        (Y2025, v2025.encode()),
    ]
    assert h["logs"][0]["checkpoint"] == h["checkpoint"]

    report = verify_history(h, {Y2025: v2025, Y2026: v2026})
    assert not report.failures
    assert report.verified == 5
    assert report.logs == {Y2026: h["treeSize"], Y2025: 4}

    # Only the current log's key: the 2025 events fail, they are not taken on trust.
    only_2026 = verify_history(h, v2026)
    assert only_2026.verified == 2
    assert len(only_2026.failures) == 3
    assert all(Y2025 in f and "no trusted key" in f for f in only_2026.failures)

    # The 2025 key given as the 2026 one: the answer's checkpoint does not verify.
    with pytest.raises(IntegrityError, match="does not verify"):
        verify_history(h, {Y2026: v2025})

    # A 2025 proof tampered with fails, the rest still verify.
    first = h["events"][0]
    first["inclusionProof"][0] = first["inclusionProof"][1]
    tampered = verify_history(h, {Y2025: v2025, Y2026: v2026})
    assert len(tampered.failures) == 1
    assert tampered.verified == 4

    # The page names the earlier log on its events, and the check command pins both keys.
    page = await (await c2026.get(CAN_DL, headers={"Accept": "text/html"})).text()
    assert page.count(f'<span class="nw">{Y2025}</span>') == 3
    assert f"--key {v2026.encode()} --key {v2025.encode()}" in page

    # Trace and export read events by index from the current database: they see only
    # the current log's events.
    key = parse_digital_link("https://id.gs1.org" + CAN_DL)
    current = await c2026.app[HISTORY].history(key, inspector=True)
    assert {e["log"] for e in current["events"]} == {Y2026}

    # A new 2026 event on a key found in 2025 (lot A) shows at once, despite the cache.
    inspect = at(
        2026,
        "01-20",
        "ObjectEvent",
        action="OBSERVE",
        bizStep="inspecting",
        disposition="non_conformant",
        quantityList=[{"epcClass": LOT_A}],
    )
    assert (await post(c2026, document(inspect), port))[0] == 201
    await settled(c2026.app[LEDGER])
    again = await lookup(c2026, CAN_DL)
    assert [e["bizStep"] for e in again["events"]][-1] == "inspecting"
    assert not verify_history(again, {Y2025: v2025, Y2026: v2026}).failures
    assert await head(url_2025) == 4  # nothing of 2026 went into the 2025 log


async def test_an_item_recorded_only_in_a_past_shard_still_resolves(
    two_years: tuple[Client, Verifier, Signer], url_2025: str
) -> None:
    c2026, v2025, _ = two_years
    h = await lookup(c2026, CAN2_DL)
    assert {e["log"] for e in h["events"]} == {Y2025}
    assert [e["bizStep"] for e in h["events"]] == ["commissioning"]
    assert h["product"]["lot"] == "LOTA"
    report = verify_history(h, {Y2025: v2025, Y2026: c2026.app[LEDGER].verifier})
    assert not report.failures
    assert report.verified == 1
    unknown = await c2026.get("/01/09421234123456/21/NOPE", headers={"Accept": "application/json"})
    assert unknown.status == 404


async def test_capture_on_the_current_log_never_writes_to_a_past_shard(
    two_years: tuple[Client, Verifier, Signer], url_2025: str
) -> None:
    c2026, _, dairy = two_years
    before = await head(url_2025)
    status, receipt = await post(c2026, made_in_2025(), dairy)
    # The same events again are new to the 2026 log (no dedup across shards)...
    assert status == 201
    assert [e["index"] for e in receipt["entries"]] == [0, 1, 2, 3]
    await settled(c2026.app[LEDGER], 4)
    assert await head(url_2025) == before == 4
    # ...and their event IDs show the duplicates in a lookup.
    h = await lookup(c2026, CAN2_DL)
    ids = [(e["log"], e["eventID"]) for e in h["events"]]
    assert [y for y, _ in ids] == [Y2025, Y2026]
    assert ids[0][1] == ids[1][1]


async def test_a_past_shard_with_the_current_origin_is_refused_at_start(
    tmp_path: Path, database_url: str, url_2025: str
) -> None:
    s2025 = Settings(home=tmp_path / "a", database_url=url_2025, origin=Y2025)
    async with Ledger.open(s2025, integrate=False):
        pass
    clash = Settings(
        home=tmp_path / "b", database_url=database_url, origin=Y2025, past_shards=(url_2025,)
    )
    with pytest.raises(ConfigError, match="the current log's origin"):
        async with Ledger.open(clash):
            pass
    with pytest.raises(ConfigError, match="DATABASE_URL itself"):
        dataclasses.replace(clash, past_shards=(database_url,))


async def rotate_cli(settings: Settings, new_origin: str, new_url: str) -> tuple[int, str, str]:
    return await cli(
        *cli_args(settings), "rotate", "--new-origin", new_origin, "--new-database-url", new_url
    )


async def cli(*args: str) -> tuple[int, str, str]:
    """`traceledger ARGS` in its own process: (exit code, stdout, stderr)."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli.main",
        *args,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if not k.startswith("TRACELEDGER_")},
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def test_rotate_freezes_the_log_and_prints_settings_that_span_both_shards(
    tmp_path: Path, url_2025: str, pg_server: str
) -> None:
    home = tmp_path / "home"
    s2025 = Settings(home=home, database_url=url_2025, origin=Y2025, checkpoint_interval=0.05)
    v2025, dairy = await fill_2025(s2025)
    name_2026 = f"tl_test_{uuid.uuid4().hex[:12]}"
    url_2026 = with_database(pg_server, name_2026)
    try:
        # An entry the log has not signed yet: the log cannot be frozen there.
        async with Ledger.open(s2025, integrate=False) as ledger:
            await ledger.sequencer.append([Entry(hashlib.sha256(b"late").digest(), b"{}")])
        code, _, err = await rotate_cli(s2025, Y2026, url_2026)
        assert code == 2
        assert "latest checkpoint covers 4" in err
        # A running ingest service is refused too (it could still append).
        async with TestClient(TestServer(create_app(s2025))) as running:
            await settled(running.app[LEDGER], 5)
            code, _, err = await rotate_cli(s2025, Y2026, url_2026)
            assert code == 2
            assert "stop it first" in err
        code, _, err = await rotate_cli(s2025, Y2025, url_2026)
        assert code == 2
        assert "already names a log" in err
        code, out, told = await rotate_cli(s2025, Y2026, url_2026)
        assert code == 0, told
        # The old log's published checkpoint is archived: the new log keeps its own.
        assert (home / f"published-checkpoint-{Y2025.replace('/', '-')}").exists()
        assert not (home / "published-checkpoint").exists()
        env = dict(line.split("=", 1) for line in out.splitlines())
        env = {k: shlex.split(v)[0] for k, v in env.items()}
        key = Path(env["TRACELEDGER_LOG_KEY"])
        assert env["DATABASE_URL"] == url_2026
        assert env["TRACELEDGER_ORIGIN"] == Y2026
        assert env["TRACELEDGER_PAST_SHARDS"] == url_2025
        assert key.parent == home
        assert (await asyncio.to_thread(key.stat)).st_mode & 0o777 == 0o600
        # Never twice: the key (and the new log) exist now.
        code, _, err = await rotate_cli(s2025, Y2026, url_2026)
        assert code == 2
        assert "refusing to overwrite" in err

        s2026 = Settings.from_env(env, home=home, checkpoint_interval=0.05)
        async with TestClient(TestServer(create_app(s2026))) as c2026:
            # The enterprise registry came along: the dairy signs on in 2026 unchanged.
            assert (await post(c2026, recall_2026(), dairy))[0] == 201
            await settled(c2026.app[LEDGER], 1)
            v2026 = c2026.app[LEDGER].verifier
            assert f"its verifier key: {v2026.encode()}" in told
            h = await lookup(c2026, CAN_DL)
            assert [e["log"] for e in h["events"]] == [Y2025] * 3 + [Y2026]
            assert h["status"]["recalled"] is True
            assert not verify_history(h, {Y2025: v2025, Y2026: v2026}).failures
            url = str(c2026.make_url(CAN_DL))
            both = ["--key", v2026.encode(), "--key", v2025.encode()]
            code, out, _ = await cli("verify-history", url, *both)
            assert code == 0, out
            assert "4 events verified" in out
            code, out, _ = await cli("verify-history", url, "--key", v2026.encode())
            assert code == 1
            assert out.count(f"FAILED: event {Y2025}") == 3
        assert await head(url_2025) == 5
    finally:
        await drop_database(pg_server, name_2026)
