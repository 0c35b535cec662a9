"""Start-up: embedded default, migrations under concurrency, key handling, CLI, SIGTERM."""

from __future__ import annotations

import asyncio
import os
import signal
from pathlib import Path

import asyncpg
import pytest

from gateway.cli.main import main as cli_main
from tests.conftest import running_service, wait_for_checkpoint
from traceledger.errors import ConfigError
from traceledger.ledger import Ledger
from traceledger.log.logkey import load_or_create_log_key
from traceledger.settings import Settings
from traceledger.store import embedded, schema
from traceledger.store.pool import connect_pool
from traceledger.tlog.note import Signer, Verifier


async def test_migrations_apply_once_when_processes_start_together(database_url: str) -> None:
    pools = await asyncio.gather(*(connect_pool(database_url, min_size=1) for _ in range(5)))
    try:
        async with pools[0].acquire() as conn:
            versions = await conn.fetch("SELECT version FROM schema_migrations")
        assert [r["version"] for r in versions] == [v for v, _, _ in schema.migrations()]
    finally:
        await asyncio.gather(*(p.close() for p in pools))


async def test_a_database_from_a_newer_release_is_refused(database_url: str) -> None:
    pool = await connect_pool(database_url, min_size=1)
    async with pool.acquire() as conn:
        await conn.execute("INSERT INTO schema_migrations (version, name) VALUES (999, 'future')")
    await pool.close()
    with pytest.raises(Exception, match="newer than this program knows"):
        await connect_pool(database_url, min_size=1)


def test_log_key_is_created_private_and_reloaded(tmp_path: Path) -> None:
    path = tmp_path / "keys" / "log-key.pem"
    key = load_or_create_log_key(path)
    assert path.stat().st_mode & 0o777 == 0o600
    assert load_or_create_log_key(path).private_bytes_raw() == key.private_bytes_raw()


def test_a_log_key_readable_by_others_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "log-key.pem"
    load_or_create_log_key(path)
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        load_or_create_log_key(path)


async def test_the_database_refuses_another_origin_or_key(settings: Settings) -> None:
    async with Ledger.open(settings):
        pass
    other_origin = Settings(**{**settings.__dict__, "origin": "elsewhere.example/log"})
    with pytest.raises(ConfigError, match="holds the log"):
        async with Ledger.open(other_origin):
            pass
    other_key = settings.home / "other-key.pem"
    load_or_create_log_key(other_key)
    with pytest.raises(ConfigError, match="does not match"):
        async with Ledger.open(Settings(**{**settings.__dict__, "log_key_path": other_key})):
            pass


def test_settings_refuse_values_out_of_bounds() -> None:
    with pytest.raises(ConfigError, match="checkpoint_interval"):
        Settings(checkpoint_interval=0)
    with pytest.raises(ConfigError, match="origin"):
        Settings(origin="has space")


def test_log_key_command_prints_the_verifier_key(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli_main(["--home", str(tmp_path), "--origin", "cli.example/log", "log-key"]) == 0
    vkey = Verifier.parse(capsys.readouterr().out.strip())
    assert vkey.name == "cli.example/log"
    key = load_or_create_log_key(tmp_path / "log-key.pem")
    assert vkey == Signer("cli.example/log", key).verifier


@pytest.mark.slow
async def test_without_database_url_an_embedded_postgres_is_started_and_reused(
    tmp_path: Path,
) -> None:
    if os.environ.get("TRACELEDGER_TEST_DATABASE_URL"):
        pytest.skip("server mode: the embedded default is covered by the embedded run")
    settings = Settings(home=tmp_path / "home", checkpoint_interval=0.05)
    async with Ledger.open(settings) as ledger:
        await wait_for_checkpoint(ledger, 0)
    assert (settings.pgdata / "PG_VERSION").exists()
    async with Ledger.open(settings) as ledger:
        assert (await ledger.reader.checkpoint()).size == 0
        # Its buffer cache is sized for a ledger of gigabytes, not the 128 MB default.
        async with ledger.pool.acquire() as conn:
            buffers = await conn.fetchval("SHOW shared_buffers")
        assert buffers == f"{embedded.embedded_shared_buffers_mb()}MB"


@pytest.mark.slow
async def test_sigterm_stops_the_service_after_signing_a_final_checkpoint(
    settings: Settings,
) -> None:
    # A long interval, so only the final checkpoint can cover the demo data.
    async with running_service(settings, "demo", TRACELEDGER_CHECKPOINT_INTERVAL="30") as (
        proc,
        _,
    ):
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 30) == 0
    conn = await asyncpg.connect(settings.database_url)
    try:
        head = await conn.fetchval("SELECT size FROM log_head")
        signed = await conn.fetchval("SELECT max(size) FROM checkpoints")
    finally:
        await conn.close()
    assert head > 0
    assert signed == head
