"""The log through its Python API: sequencing, dedup, group commit, checkpoints, proofs."""

from __future__ import annotations

import asyncio
import hashlib

import asyncpg
import pytest

from tests.conftest import failed_rounds, wait_for_checkpoint
from traceledger.audit.verify import verify_log
from traceledger.errors import BusyError
from traceledger.ledger import Ledger
from traceledger.log.reader import LogReader
from traceledger.log.sequencer import Entry, Sequencer
from traceledger.settings import Settings
from traceledger.tlog import merkle
from traceledger.tlog.checkpoint import open_checkpoint
from traceledger.tlog.leaf import GENESIS_HASH, Leaf


def entry(n: int | str, envelope: bytes | None = None) -> Entry:
    payload = f"event {n}".encode()
    return Entry(hashlib.sha256(payload).digest(), payload, envelope)


async def stored_leaves(ledger: Ledger) -> list[bytes]:
    async with ledger.pool.acquire() as conn:
        return [bytes(r["leaf"]) for r in await conn.fetch("SELECT leaf FROM entries ORDER BY idx")]


async def test_appends_get_contiguous_indexes_from_zero(ledger: Ledger) -> None:
    first = await ledger.sequencer.append([entry(i) for i in range(3)])
    second = await ledger.sequencer.append([entry(i) for i in range(3, 5)])
    assert [a.index for a in first + second] == [0, 1, 2, 3, 4]
    assert not any(a.duplicate for a in first + second)


async def test_leaves_form_a_hash_chain(ledger: Ledger) -> None:
    await ledger.sequencer.append([entry(i) for i in range(10)])
    prev = GENESIS_HASH
    for i, raw in enumerate(await stored_leaves(ledger)):
        leaf = Leaf.decode(raw)
        assert leaf.index == i
        assert leaf.prev_hash == prev
        prev = merkle.leaf_hash(raw)


async def test_duplicate_identity_returns_the_original_index(ledger: Ledger) -> None:
    await ledger.sequencer.append([entry("a"), entry("b")])
    again = await ledger.sequencer.append([entry("c"), entry("a")])
    assert [(a.index, a.duplicate) for a in again] == [(2, False), (0, True)]


async def test_duplicate_inside_one_batch_is_logged_once(ledger: Ledger) -> None:
    result = await ledger.sequencer.append([entry("x"), entry("x")])
    assert [(a.index, a.duplicate) for a in result] == [(0, False), (0, True)]
    assert len(await stored_leaves(ledger)) == 1


async def test_envelope_is_stored_once_and_committed_by_hash(ledger: Ledger) -> None:
    envelope = b'{"payloadType": "application/json"}'
    await ledger.sequencer.append([entry(1, envelope), entry(2, envelope)])
    first = await ledger.reader.entry(0)
    assert first.envelope == envelope
    assert first.decoded.envelope_hash == hashlib.sha256(envelope).digest()
    async with ledger.pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM envelopes") == 1


async def test_many_concurrent_appenders_produce_one_contiguous_chain(ledger: Ledger) -> None:
    async def appender(worker: int) -> list[int]:
        indexes = []
        for n in range(20):
            batch = [entry(f"{worker}-{n}-{k}") for k in range(1 + (worker + n) % 4)]
            indexes += [a.index for a in await ledger.sequencer.append(batch)]
        return indexes

    results = await asyncio.gather(*(appender(w) for w in range(40)))
    indexes = sorted(i for r in results for i in r)
    assert indexes == list(range(len(indexes)))
    await wait_for_checkpoint(ledger, len(indexes))
    report = await verify_log(ledger.pool)
    assert report.entries == len(indexes)


async def test_two_sequencers_on_separate_pools_share_one_chain(
    ledger: Ledger, database_url: str
) -> None:
    """Two processes appending at once: the head row lock keeps indexes contiguous."""
    other_pool = await asyncpg.create_pool(database_url, min_size=1, max_size=4)
    try:
        async with Sequencer(other_pool) as other:

            async def run(seq: Sequencer, tag: str) -> None:
                await asyncio.gather(
                    *(seq.append([entry(f"{tag}{i}-{k}") for k in range(3)]) for i in range(30))
                )

            await asyncio.gather(run(ledger.sequencer, "a"), run(other, "b"))
    finally:
        await other_pool.close()
    await wait_for_checkpoint(ledger, 180)
    assert (await verify_log(ledger.pool)).entries == 180


async def test_checkpoint_is_signed_by_the_log_key_and_matches_the_entries(
    ledger: Ledger,
) -> None:
    await ledger.sequencer.append([entry(i) for i in range(300)])
    await wait_for_checkpoint(ledger, 300)
    cp = await ledger.reader.checkpoint()
    opened = open_checkpoint(cp.note, ledger.verifier, ledger.settings.origin)
    assert opened.size == 300
    expected = merkle.root_from_leaf_hashes(
        [merkle.leaf_hash(x) for x in await stored_leaves(ledger)]
    )
    assert opened.root_hash == expected


async def test_empty_log_signs_a_checkpoint_of_size_zero(ledger: Ledger) -> None:
    await wait_for_checkpoint(ledger, 0)
    cp = await ledger.reader.checkpoint()
    assert (cp.size, cp.root_hash) == (0, merkle.EMPTY_ROOT)


async def test_inclusion_proofs_verify_for_every_entry(ledger: Ledger) -> None:
    await ledger.sequencer.append([entry(i) for i in range(600)])
    await wait_for_checkpoint(ledger, 600)
    cp = await ledger.reader.checkpoint()
    leaves = await stored_leaves(ledger)
    for index in range(0, cp.size, 7):
        proof = await ledger.reader.inclusion_proof(index, cp.size)
        merkle.verify_inclusion(
            merkle.leaf_hash(leaves[index]), index, cp.size, proof, cp.root_hash
        )


async def test_every_archived_checkpoint_is_consistent_with_the_latest(ledger: Ledger) -> None:
    for round_ in range(5):
        await ledger.sequencer.append([entry(f"{round_}-{i}") for i in range(130)])
        await wait_for_checkpoint(ledger, 130 * (round_ + 1))
    latest = await ledger.reader.checkpoint()
    async with ledger.pool.acquire() as conn:
        archived = await conn.fetch("SELECT size, root_hash FROM checkpoints ORDER BY size")
    assert len(archived) >= 5
    for row in archived:
        proof = await ledger.reader.consistency_proof(row["size"], latest.size)
        merkle.verify_consistency(
            row["size"], latest.size, bytes(row["root_hash"]), latest.root_hash, proof
        )


async def test_integrator_refuses_to_sign_a_tree_that_rewrites_history(ledger: Ledger) -> None:
    await ledger.sequencer.append([entry(i) for i in range(10)])
    await wait_for_checkpoint(ledger, 10)
    async with ledger.pool.acquire() as conn:
        # An operator rewrites a leaf hash in the stored tile, then the log grows.
        await conn.execute(
            "UPDATE tiles SET hashes = overlay(hashes placing '\\xff'::bytea from 1 for 1)"
            " WHERE level = 0 AND idx = 0"
        )
    await ledger.sequencer.append([entry("after")])
    await failed_rounds(ledger, 3)
    assert (await ledger.reader.checkpoint()).size == 10
    assert ledger.integrator is not None
    assert "not consistent" in str(ledger.integrator.last_error)


async def test_sequencer_refuses_work_beyond_its_pending_limit(settings: Settings) -> None:
    tight = Settings(**{**settings.__dict__, "max_batch_entries": 5, "max_pending_entries": 5})
    async with Ledger.open(tight) as ledger:
        with pytest.raises(BusyError):
            await ledger.sequencer.append([entry(i) for i in range(6)])


async def test_restart_resumes_the_same_log(settings: Settings) -> None:
    async with Ledger.open(settings) as ledger:
        await ledger.sequencer.append([entry(i) for i in range(5)])
    async with Ledger.open(settings) as ledger:
        more = await ledger.sequencer.append([entry(i) for i in range(5, 8)])
        assert [a.index for a in more] == [5, 6, 7]
        await wait_for_checkpoint(ledger, 8)
        assert (await verify_log(ledger.pool)).entries == 8


async def test_proofs_stay_right_when_the_node_cache_evicts_mid_request(ledger: Ledger) -> None:
    await ledger.sequencer.append([entry(i) for i in range(1100)])
    await wait_for_checkpoint(ledger, 1100)
    cp = await ledger.reader.checkpoint()
    leaves = await stored_leaves(ledger)
    tiny = LogReader(ledger.pool, node_cache=3)
    for _ in range(2):  # second round: partly cached, partly evicted
        proofs = await tiny.inclusion_proofs(list(range(0, cp.size, 37)), cp.size)
        for index, proof in proofs.items():
            merkle.verify_inclusion(
                merkle.leaf_hash(leaves[index]), index, cp.size, proof, cp.root_hash
            )
