"""`verify` recomputes everything and names the first index that was tampered with."""

from __future__ import annotations

import hashlib

import pytest

from gateway.cli.main import main as cli_main
from tests.conftest import cli_args, wait_for_checkpoint
from traceledger.audit.verify import verify_log
from traceledger.errors import IntegrityError
from traceledger.ledger import Ledger
from traceledger.log.sequencer import Entry
from traceledger.settings import Settings
from traceledger.store.pool import dsn_of
from traceledger.tlog.note import Verifier

SIZE = 700  # spans two full level-0 tiles and a partial one


def entry(n: int) -> Entry:
    payload = f'{{"event": {n}}}'.encode()
    return Entry(hashlib.sha256(payload).digest(), payload, b"envelope %d" % (n // 100))


@pytest.fixture
async def filled(ledger: Ledger) -> Ledger:
    for start in range(0, SIZE, 100):
        await ledger.sequencer.append([entry(i) for i in range(start, start + 100)])
    await wait_for_checkpoint(ledger, SIZE)
    return ledger


async def bad_index(ledger: Ledger, sql: str) -> int | None:
    """The index verify names, the same whether one process checks the log as one page
    or two worker processes check it in pages of a tile (in order, two pages ahead)."""
    async with ledger.pool.acquire() as conn:
        await conn.execute(sql)
    with pytest.raises(IntegrityError) as caught:
        await verify_log(ledger.pool)
    with pytest.raises(IntegrityError) as in_pages:
        await verify_log(ledger.pool, workers=2, page=256)
    assert in_pages.value.index == caught.value.index
    return caught.value.index


async def test_untouched_log_verifies(filled: Ledger) -> None:
    report = await verify_log(filled.pool, trusted=filled.verifier)
    assert (report.entries, report.envelopes) == (SIZE, 7)
    assert report.checkpoints >= 1
    in_pages = await verify_log(filled.pool, workers=2, page=256)
    assert (in_pages.entries, in_pages.checkpoints) == (SIZE, report.checkpoints)


async def test_workers_read_their_own_pages(filled: Ledger) -> None:
    """Redacted entries (no payload to hash) pass, read by workers as by this process."""
    assert dsn_of(filled.pool) is not None  # else workers could not connect
    async with filled.pool.acquire() as conn:
        await conn.execute("UPDATE entries SET payload = NULL WHERE idx IN (3, 300)")
    alone = await verify_log(filled.pool, workers=0)
    in_pages = await verify_log(filled.pool, workers=2, page=256)
    assert (alone.redacted, in_pages.redacted) == (2, 2)


async def test_a_whole_missing_page_is_named(filled: Ledger) -> None:
    sql = "DELETE FROM entries WHERE idx >= 256 AND idx < 512"
    assert await bad_index(filled, sql) == 256


@pytest.mark.parametrize("index", [0, 255, 256, 431, SIZE - 1])
async def test_one_changed_leaf_byte_is_named(filled: Ledger, index: int) -> None:
    # The last byte of the leaf is inside the envelope hash, so the leaf still decodes.
    sql = (
        "UPDATE entries SET leaf = set_byte(leaf, length(leaf) - 1,"
        f" get_byte(leaf, length(leaf) - 1) # 1) WHERE idx = {index}"
    )
    assert await bad_index(filled, sql) == index


@pytest.mark.parametrize("index", [0, 300, SIZE - 1])
async def test_one_changed_payload_byte_is_named(filled: Ledger, index: int) -> None:
    sql = f"UPDATE entries SET payload = set_byte(payload, 2, 88) WHERE idx = {index}"
    assert await bad_index(filled, sql) == index


@pytest.mark.parametrize("index", [0, 128, SIZE - 1])
async def test_a_deleted_row_is_named(filled: Ledger, index: int) -> None:
    assert await bad_index(filled, f"DELETE FROM entries WHERE idx = {index}") == index


async def test_two_swapped_rows_are_named(filled: Ledger) -> None:
    sql = (
        "BEGIN; UPDATE entries SET idx = 1000000 WHERE idx = 40;"
        " UPDATE entries SET idx = 40 WHERE idx = 41;"
        " UPDATE entries SET idx = 41 WHERE idx = 1000000; COMMIT"
    )
    assert await bad_index(filled, sql) == 40


async def test_an_altered_envelope_is_detected(filled: Ledger) -> None:
    async with filled.pool.acquire() as conn:
        await conn.execute("UPDATE envelopes SET body = 'envelope 9' WHERE body = 'envelope 3'")
    with pytest.raises(IntegrityError, match=r"envelope .* was altered"):
        await verify_log(filled.pool)


async def test_a_forged_checkpoint_signature_is_detected(filled: Ledger) -> None:
    async with filled.pool.acquire() as conn:
        note = await conn.fetchval("SELECT note FROM checkpoints ORDER BY size DESC LIMIT 1")
        forged = note.replace(f"\n{SIZE}\n", f"\n{SIZE + 1}\n")
        await conn.execute("UPDATE checkpoints SET note = $1 WHERE size = $2", forged, SIZE)
    with pytest.raises(IntegrityError, match=f"checkpoint of size {SIZE}"):
        await verify_log(filled.pool)


async def test_a_stored_tile_that_lies_is_named(filled: Ledger) -> None:
    sql = (
        "UPDATE tiles SET hashes = overlay(hashes placing '\\x00'::bytea from 32 * 17 + 5 for 1)"
        " WHERE level = 0 AND idx = 1"
    )
    assert await bad_index(filled, sql) == 256 + 17


async def test_an_untrusted_key_is_refused(filled: Ledger, settings: Settings) -> None:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from traceledger.tlog.note import Signer

    other: Verifier = Signer(settings.origin, Ed25519PrivateKey.generate()).verifier
    with pytest.raises(IntegrityError, match="not the trusted key"):
        await verify_log(filled.pool, trusted=other)


def test_verify_command_exits_nonzero_and_prints_the_index(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    import asyncio

    async def prepare() -> None:
        async with Ledger.open(settings) as ledger:
            await ledger.sequencer.append([entry(i) for i in range(20)])
        async with Ledger.open(settings, integrate=False) as ledger, ledger.pool.acquire() as c:
            await c.execute("DELETE FROM entries WHERE idx = 13")

    asyncio.run(prepare())
    assert cli_main([*cli_args(settings), "verify"]) == 1
    assert "first bad index: 13" in capsys.readouterr().out
