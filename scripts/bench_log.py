#!/usr/bin/env python3
"""Benchmark the log against baselines measured in the same run.

1. Append throughput through the Python API at batch 1, 100 and 1000, as a ratio to a
   raw COPY of the same rows into an identical table with the same commit count.
2. `verify` speed in entries/s, next to a plain scan of the same table.
3. Inclusion and consistency proof latency at --entries (default 1M), next to one
   indexed SELECT of a single entry.

Uses DATABASE_URL if set, otherwise a throwaway embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import random
import statistics
import time
from collections.abc import Awaitable

import asyncpg
from benchkit import pct, scratch_database

from traceledger.audit.verify import verify_log
from traceledger.ledger import Ledger
from traceledger.log.sequencer import Entry
from traceledger.settings import Settings
from traceledger.tlog.leaf import Leaf, sha256


def make_entries(tag: str, count: int) -> list[Entry]:
    out = []
    for i in range(count):
        payload = (
            f'{{"type":"ObjectEvent","epcList":["urn:epc:id:sgtin:0614141.107346.{tag}{i}"],'
            f'"bizStep":"shipping","eventTime":"2026-11-27T10:00:00Z"}}'
        ).encode()
        out.append(Entry(hashlib.sha256(payload).digest(), payload))
    return out


def copy_rows(entries: list[Entry], start: int) -> list[tuple[object, ...]]:
    """The rows the sequencer would write, built the same way, for the COPY baseline."""
    rows: list[tuple[object, ...]] = []
    prev = bytes(32)
    for i, e in enumerate(entries, start=start):
        leaf = Leaf(i, prev, 0, e.identity, sha256(e.payload), None).encode()
        rows.append((i, e.identity, leaf, e.payload, None))
        prev = hashlib.sha256(b"\x00" + leaf).digest()
    return rows


async def timed(work: Awaitable[object]) -> float:
    t = time.perf_counter()
    await work
    return time.perf_counter() - t


async def bench_append(ledger: Ledger, batch: int, total: int, concurrency: int) -> float:
    entries = make_entries(f"b{batch}c{concurrency}-", total)
    batches = [entries[i : i + batch] for i in range(0, total, batch)]
    queue = iter(batches)

    async def worker() -> None:
        for b in queue:
            await ledger.sequencer.append(b)

    return total / await timed(asyncio.gather(*(worker() for _ in range(concurrency))))


async def bench_copy(pool: asyncpg.Pool, batch: int, total: int) -> float:
    async with pool.acquire() as conn:
        await conn.execute("DROP TABLE IF EXISTS copy_baseline")
        await conn.execute("CREATE TABLE copy_baseline (LIKE entries INCLUDING ALL)")
    rows = copy_rows(make_entries(f"copy{batch}-", total), 0)

    async def run() -> None:
        async with pool.acquire() as conn:
            for i in range(0, total, batch):
                async with conn.transaction():
                    await conn.copy_records_to_table(
                        "copy_baseline",
                        records=rows[i : i + batch],
                        columns=["idx", "identity", "leaf", "payload", "envelope_hash"],
                    )

    return total / await timed(run())


async def main(args: argparse.Namespace) -> None:
    async with scratch_database() as (url, tmp):
        # No prebuilt answers: they are not the log, and building them for the fill would
        # compete with every measurement here.
        settings = Settings(
            home=tmp / "home", database_url=url, checkpoint_interval=0.5, prebuild_answers=False
        )
        async with Ledger.open(settings) as ledger:
            print("== append throughput (entries/s), Python API vs raw COPY, same commit count")
            print(f"{'batch':>6} {'appenders':>9} {'ledger':>10} {'raw COPY':>10} {'ratio':>6}")
            for batch, total, conc in (
                (1, 2000, 1),
                (1, 20000, 64),
                (100, 50000, 1),
                (1000, 200000, 1),
                (1000, 200000, 4),
            ):
                rate = await bench_append(ledger, batch, total, conc)
                # The COPY baseline commits as often as the ledger would with full groups.
                copy_rate = await bench_copy(ledger.pool, batch * conc, total)
                ratio = rate / copy_rate
                print(f"{batch:>6} {conc:>9} {rate:>10,.0f} {copy_rate:>10,.0f} {ratio:>6.2f}")

            print(f"\n== filling the log to {args.entries:,} entries")
            head = (await ledger.reader.checkpoint()).size
            t = time.perf_counter()
            filled = head
            while True:
                async with ledger.pool.acquire() as conn:
                    filled = await conn.fetchval("SELECT size FROM log_head")
                if filled >= args.entries:
                    break
                n = min(10000, args.entries - filled)
                await ledger.sequencer.append(make_entries(f"fill{filled}-", n))
            seq_s = time.perf_counter() - t
            while (await ledger.reader.checkpoint()).size < filled:  # noqa: ASYNC110 - polls the DB
                await asyncio.sleep(0.2)
            print(
                f"sequenced and integrated {filled - head:,} entries in "
                f"{time.perf_counter() - t:.1f}s (sequencing alone {seq_s:.1f}s)"
            )

            # The indexer is still working through the fill; verify is measured on a
            # quiet service, as an auditor would run it, not against that backlog.
            indexed = "SELECT next_idx FROM index_state"
            while await ledger.pool.fetchval(indexed) < filled:  # noqa: ASYNC110 - polls
                await asyncio.sleep(0.5)
            # What autovacuum and the checkpointer do after a bulk load, done before
            # measuring rather than during (as bench_lookup.py does).
            await ledger.pool.execute("VACUUM (ANALYZE)")
            await ledger.pool.execute("CHECKPOINT")
            print("\n== verify")
            async with ledger.pool.acquire() as conn:
                scan = await timed(
                    # sum() uses every hash: under count(*) the planner drops the hashing.
                    conn.fetchval("SELECT sum(length(sha256(leaf))) FROM entries")
                )
            report = await verify_log(ledger.pool)
            print(
                f"verify: {report.entries / report.seconds:,.0f} entries/s "
                f"({report.entries:,} in {report.seconds:.1f}s); "
                f"baseline SQL scan hashing every leaf: {filled / scan:,.0f} rows/s; "
                f"ratio {report.entries / report.seconds / (filled / scan):.2f}"
            )

            print(f"\n== proof latency at tree size {filled:,} (ms)")
            rng = random.Random(7)
            size = (await ledger.reader.checkpoint()).size
            incl: list[float] = []
            cons: list[float] = []
            base: list[float] = []
            async with ledger.pool.acquire() as conn:
                for _ in range(args.samples):
                    i = rng.randrange(size)
                    base.append(
                        await timed(conn.fetchrow("SELECT leaf FROM entries WHERE idx = $1", i))
                    )
            for _ in range(args.samples):
                i = rng.randrange(size)
                incl.append(await timed(ledger.reader.inclusion_proof(i, size)))
                m = rng.randrange(1, size)
                cons.append(await timed(ledger.reader.consistency_proof(m, size)))
            for name, vals in (
                ("indexed SELECT (baseline)", base),
                ("inclusion proof", incl),
                ("consistency proof", cons),
            ):
                print(
                    f"{name:>26}: p50 {pct(vals, 0.5) * 1e3:6.2f}  p99 {pct(vals, 0.99) * 1e3:6.2f}"
                    f"  mean {statistics.fmean(vals) * 1e3:6.2f}"
                    f"  ratio p50 vs baseline {pct(vals, 0.5) / pct(base, 0.5):5.1f}"
                )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--samples", type=int, default=500)
    asyncio.run(main(parser.parse_args()))
