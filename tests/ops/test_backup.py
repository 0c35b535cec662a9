"""Backup and restore without forks: pg_dump/pg_restore of the ledger database, and the
published checkpoint kept outside it that a restored old backup must not contradict."""

from __future__ import annotations

import asyncio
import dataclasses
import json
import sys
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.keys import LEDGER
from gateway.problems import problem_for
from tests.conftest import ROOT, cli_args, failed_rounds, scratch_database, wait_for_checkpoint
from tests.log.test_log import entry
from traceledger.audit.verify import verify_log
from traceledger.errors import (
    BackupError,
    ConfigError,
    DivergedFromPublishedError,
    ForkRefusedError,
    LogBehindPublishedError,
)
from traceledger.ledger import Ledger
from traceledger.ops import backup
from traceledger.settings import Settings
from traceledger.tlog import merkle
from traceledger.tlog.checkpoint import open_checkpoint


async def cli(settings: Settings, *args: str) -> tuple[int, str, str]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli.main",
        *cli_args(settings),
        *args,
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode is not None
    return proc.returncode, out.decode(), err.decode()


async def grow(settings: Settings, start: int, count: int) -> str:
    """Append `count` entries (from `start`, for distinct payloads), wait for the
    checkpoint of everything in the log, and return its note."""
    async with Ledger.open(settings) as ledger:
        await ledger.sequencer.append([entry(f"{start + i}") for i in range(count)])
        async with ledger.pool.acquire() as conn:
            await wait_for_checkpoint(ledger, await conn.fetchval("SELECT size FROM log_head"))
        return (await ledger.reader.checkpoint()).note


async def published_after_backup(settings: Settings, old: Path) -> str:
    """Back up a log of 3 entries to `old`, then publish a checkpoint of 8; its note."""
    assert settings.database_url is not None
    await grow(settings, 0, 3)
    await backup.backup(settings.database_url, old)
    return await grow(settings, 3, 5)


async def assert_extends(ledger: Ledger, note: str) -> None:
    old = open_checkpoint(note, ledger.verifier)
    new = await ledger.reader.checkpoint()
    proof = await ledger.reader.consistency_proof(old.size, new.size)
    merkle.verify_consistency(old.size, new.size, old.root_hash, new.root_hash, proof)


async def test_backup_and_restore_through_the_cli_continue_the_same_log(
    settings: Settings, pg_server: str, tmp_path: Path
) -> None:
    note = await grow(settings, 0, 5)
    assert settings.published_checkpoint_file.read_text() == note
    archive = tmp_path / "ledger.dump"
    code, out, err = await cli(settings, "backup", str(archive))
    assert code == 0, err
    assert "5 entries, latest checkpoint size 5" in out
    assert "log key" in err
    assert "NOT in the backup" in err
    async with scratch_database(pg_server) as url:
        restored = dataclasses.replace(settings, database_url=url)
        code, out, err = await cli(restored, "restore", str(archive))
        assert code == 0, err
        assert "extends the checkpoint it last published" in out
        async with Ledger.open(restored) as ledger:
            assert (await verify_log(ledger.pool)).entries == 5
            more = await ledger.sequencer.append([entry(f"{i}") for i in range(5, 8)])
            assert [a.index for a in more] == [5, 6, 7]
            await wait_for_checkpoint(ledger, 8)
            await assert_extends(ledger, note)
            latest = (await ledger.reader.checkpoint()).note
        assert settings.published_checkpoint_file.read_text() == latest
        # The override is refused when there is no fork to accept.
        code, _, err = await cli(restored, "accept-fork", "--reason", "just trying it out")
        assert code == 1
        assert "nothing to accept" in err


async def test_restore_refuses_a_database_that_is_not_empty(
    settings: Settings, tmp_path: Path
) -> None:
    assert settings.database_url is not None
    await grow(settings, 0, 3)
    archive = tmp_path / "ledger.dump"
    await backup.backup(settings.database_url, archive)
    with pytest.raises(BackupError, match=r"not empty.*--force-clean"):
        await backup.restore(settings.database_url, archive)
    async with Ledger.open(settings):
        with pytest.raises(BackupError, match="other sessions"):
            await backup.restore(settings.database_url, archive, clean=True)
    await grow(settings, 3, 2)  # the database now holds more than the backup
    snap = await backup.restore(settings.database_url, archive, clean=True)
    assert (snap.entries, snap.checkpoint_size) == (3, 3)


async def test_restore_refuses_a_file_that_is_not_a_backup(
    settings: Settings, tmp_path: Path
) -> None:
    assert settings.database_url is not None
    bogus = tmp_path / "notes.txt"
    bogus.write_text("not an archive")
    with pytest.raises(BackupError, match="not a pg_dump custom-format archive"):
        await backup.restore(settings.database_url, bogus)


async def test_restoring_an_old_backup_refuses_to_sign_and_append_until_a_newer_one_is_restored(
    settings: Settings, pg_server: str, tmp_path: Path
) -> None:
    assert settings.database_url is not None
    old, new = tmp_path / "old.dump", tmp_path / "new.dump"
    published = await published_after_backup(settings, old)
    await backup.backup(settings.database_url, new)

    async with scratch_database(pg_server) as url:
        restored = dataclasses.replace(settings, database_url=url)
        await backup.restore(url, old)
        async with TestClient(TestServer(create_app(restored))) as client:
            ledger = client.app[LEDGER]
            assert ledger.integrator is not None
            # Refused from the start, before any append could slip in.
            assert isinstance(ledger.integrator.fork_refusal, LogBehindPublishedError)
            with pytest.raises(LogBehindPublishedError):
                await ledger.sequencer.append([entry("after restore")])
            response = await client.get("/readyz")
            assert response.status == 503
            detail = (await response.json(content_type=None))["detail"]
            assert "published a checkpoint of size 8" in detail
            assert "only 3 entries" in detail
            assert "restore a newer backup" in detail
            assert "accept-fork" in detail
            await failed_rounds(ledger, 3)  # several integration rounds: none signs
            assert isinstance(ledger.integrator.last_error, LogBehindPublishedError)
            assert (await ledger.reader.checkpoint()).size == 3
        assert settings.published_checkpoint_file.read_text() == published
        code, _, err = await cli(restored, "restore", "--force-clean", str(old))
        assert code == 1
        assert "WARNING" in err
        assert "size 8" in err

    async with scratch_database(pg_server) as url:
        recovered = dataclasses.replace(settings, database_url=url)
        await backup.restore(url, new)
        async with TestClient(TestServer(create_app(recovered))) as client:
            ledger = client.app[LEDGER]
            assert ledger.integrator is not None
            assert ledger.integrator.fork_refusal is None
            await ledger.sequencer.append([entry(f"{i}") for i in range(8, 10)])
            await wait_for_checkpoint(ledger, 10)
            await assert_extends(ledger, published)
            assert (await client.get("/readyz")).status == 200


async def test_a_bigger_tree_that_diverged_after_an_old_restore_is_refused_until_accepted(
    settings: Settings, pg_server: str, tmp_path: Path
) -> None:
    assert settings.database_url is not None
    old = tmp_path / "old.dump"
    published = await published_after_backup(settings, old)

    async with scratch_database(pg_server) as url:
        restored = dataclasses.replace(settings, database_url=url)
        await backup.restore(url, old)
        # A home without the published file (say, a new machine) signs other entries at
        # the published indexes 3..7 and beyond: a tree bigger than the published one.
        elsewhere = dataclasses.replace(
            restored, home=tmp_path / "elsewhere", log_key_path=settings.log_key_file
        )
        await grow(elsewhere, 100, 10)

        async with Ledger.open(restored) as ledger:
            assert ledger.integrator is not None
            refusal = ledger.integrator.fork_refusal
            assert isinstance(refusal, DivergedFromPublishedError)
            assert (refusal.published_size, refusal.tree_size) == (8, 13)
            with pytest.raises(DivergedFromPublishedError):
                await ledger.sequencer.append([entry("refused")])
            await failed_rounds(ledger, 3)
            assert (await ledger.reader.checkpoint()).size == 13

        code, _, err = await cli(restored, "accept-fork", "--reason", "disk lost; no newer backup")
        assert code == 0, err
        assert not settings.published_checkpoint_file.exists()
        archived = list(settings.forks_dir.glob("*-size-8.checkpoint"))
        assert [p.read_text() for p in archived] == [published]
        (record,) = [
            json.loads(line)
            for line in (settings.forks_dir / "accepted-forks.jsonl").read_text().splitlines()
        ]
        assert record["reason"] == "disk lost; no newer backup"
        assert record["published_note"] == published
        assert (record["published_size"], record["database_tree_size"]) == (8, 13)

        async with Ledger.open(restored) as ledger:
            await ledger.sequencer.append([entry("accepted")])
            await wait_for_checkpoint(ledger, 14)
            latest = (await ledger.reader.checkpoint()).note
        assert settings.published_checkpoint_file.read_text() == latest


async def test_a_backup_taken_before_its_entries_were_integrated_restores_normally(
    settings: Settings, pg_server: str, tmp_path: Path
) -> None:
    assert settings.database_url is not None
    archive = tmp_path / "mid-integration.dump"
    await grow(settings, 0, 3)
    async with Ledger.open(settings, integrate=False) as ledger:
        await ledger.sequencer.append([entry(f"{i}") for i in range(3, 7)])
    await backup.backup(settings.database_url, archive)  # 7 entries, checkpoint 3
    published = await grow(settings, 7, 0)  # the next start signs 7: published 7 > 3
    assert published.split("\n")[1] == "7"

    async with scratch_database(pg_server) as url:
        restored = dataclasses.replace(settings, database_url=url)
        snap = await backup.restore(url, archive)
        assert (snap.entries, snap.checkpoint_size) == (7, 3)
        async with Ledger.open(restored) as ledger:
            assert ledger.integrator is not None
            assert ledger.integrator.fork_refusal is None
            await wait_for_checkpoint(ledger, 7)
            await assert_extends(ledger, published)
            # The same tree and key: the same (deterministic Ed25519) signed note.
            assert (await ledger.reader.checkpoint()).note == published


async def test_a_published_file_from_another_log_is_not_trusted(settings: Settings) -> None:
    settings.home.mkdir(parents=True)
    settings.published_checkpoint_file.write_text("example.org/log\n5\nAAAA\n\n— x y\n")
    async with Ledger.open(settings) as ledger:
        await failed_rounds(ledger, 1)
        assert ledger.integrator is not None
        assert isinstance(ledger.integrator.last_error, ConfigError)
        assert "published-checkpoint" in str(ledger.integrator.last_error)


def test_a_fork_refusal_is_a_retriable_503_problem() -> None:
    problem = problem_for(LogBehindPublishedError("behind", published_size=8, tree_size=3))
    assert problem.kind.status == 503
    assert problem.kind.slug == "fork-refused"
    assert problem.extra == {"publishedSize": 8, "treeSize": 3}
    assert "Retry-After" in problem.headers
    assert issubclass(DivergedFromPublishedError, ForkRefusedError)
