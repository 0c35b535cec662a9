#!/usr/bin/env python3
"""Lookup latency and throughput at scale, next to one indexed SELECT on the same data.

Fills a fresh database with --events EPCIS events over --items serialized items (10
events per item by default: commissioning with ILMD, packing into a case, the case's
shipping and receiving, selling...), signed by the enterprise owning their prefix (so
the trust rules believe them), appended through the real sequencer, integrated
and indexed, then builds every item's answer ahead (traceledger/prebuilt.py) and says
how long that took and how much room the answers take.

Then `traceledger serve` runs in its own process and this process sends JSON lookups
(`GET /01/<gtin>/21/<serial>?format=json`) from --clients concurrent clients: first
with prebuilt answers off, asking for items never asked before (each answer assembled
live: the cost for an item whose answer is not built yet); then, with them on, asking
for other unseen items once each, with Zipf-skewed popularity (some products are scanned
far more than others), and for the items the warm-up asked for (every answer in the
in-memory cache), and for the latter as the shopper's page (HTML from the templates).
Last, with look-ups not counted (TRACELEDGER_COUNT_SCANS=0), what counting them costs.
The baseline is one indexed SELECT on event_keys for the same items at the same
concurrency, in the same run. Uses DATABASE_URL if set, else an embedded server.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import random
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import asyncpg
from benchkit import measure, print_rates, scratch_database, served, signed_entries
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from traceledger.accounts import registry
from traceledger.ledger import Ledger, answer_builder
from traceledger.settings import Settings
from traceledger.standards.gs1 import check_digit

ROOT = Path(__file__).resolve().parent.parent
GCP = "0614141"
GTIN = "0" + GCP + "10734" + check_digit("0" + GCP + "10734")  # 14 digits
STEPS = [
    "shipping",
    "receiving",
    "storing",
    "picking",
    "loading",
    "departing",
    "arriving",
    "accepting",
]


def item_events(n: int, per_item: int) -> list[dict[str, object]]:
    lot = f"L{n // 100}"
    epc = f"urn:epc:id:sgtin:{GCP}.010734.{n}"
    case = f"urn:epc:id:sscc:{GCP}.{n // 10:010d}"
    base = 1_767_225_600 + n * 60  # 2026-01-01
    events: list[dict[str, object]] = [
        {
            "type": "ObjectEvent",
            "action": "ADD",
            "bizStep": "commissioning",
            "disposition": "active",
            "epcList": [epc],
            "eventTime": _t(base),
            "eventTimeZoneOffset": "+08:00",
            "readPoint": {"id": f"urn:epc:id:sgln:{GCP}.00001.0"},
            "ilmd": {"cbvmda:lotNumber": lot, "cbvmda:countryOfOrigin": "NZ"},
        },
        {
            "type": "AggregationEvent",
            "action": "ADD",
            "bizStep": "packing",
            "parentID": case,
            "childEPCs": [epc],
            "eventTime": _t(base + 3600),
            "eventTimeZoneOffset": "+08:00",
        },
    ]
    events += [
        {
            "type": "ObjectEvent",
            "action": "OBSERVE",
            "bizStep": STEPS[k % len(STEPS)],
            "epcList": [epc],
            "eventTime": _t(base + 7200 * (k + 2)),
            "eventTimeZoneOffset": "+08:00",
            "readPoint": {"id": f"urn:epc:id:sgln:{GCP}.{k:05d}.0"},
        }
        for k in range(per_item - 2)
    ]
    return events


def _t(seconds: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(seconds))


async def fill(url: str, home: str, items: int, per_item: int) -> None:
    settings = Settings(home=Path(home), database_url=url, checkpoint_interval=0.5, pool_max=8)
    t = time.perf_counter()
    key = Ed25519PrivateKey.generate()
    async with Ledger.open(settings) as ledger:
        async with ledger.pool.acquire() as conn:
            await registry.add_enterprise(conn, "Bench", [GCP], key.public_key())
        batch: list[dict[str, object]] = []
        for n in range(items):
            batch += item_events(n, per_item)
            if len(batch) >= 5000 or n == items - 1:
                await ledger.sequencer.append(signed_entries(batch, key))
                batch = []
        total = items * per_item
        print(f"sequenced {total:,} events in {time.perf_counter() - t:.0f}s", flush=True)
        async with ledger.pool.acquire() as conn:
            while True:
                done = await conn.fetchval("SELECT next_idx FROM index_state")
                signed = await conn.fetchval("SELECT max(size) FROM checkpoints")
                if done >= total and signed >= total:
                    break
                await asyncio.sleep(1)
        print(f"integrated and indexed in {time.perf_counter() - t:.0f}s total", flush=True)
        # What the ingest service's background builder does as events arrive, in one go.
        t = time.perf_counter()
        builder = answer_builder(ledger)
        while await builder.build_once():
            pass
        took = time.perf_counter() - t
        async with ledger.pool.acquire() as conn:
            answers = await conn.fetchval("SELECT pg_total_relation_size('prebuilt_answers')")
            log = await conn.fetchval(
                "SELECT sum(pg_total_relation_size(t)) FROM unnest("
                "array['entries', 'events', 'event_keys', 'tiles']::regclass[]) t"
            )
        print(
            f"prebuilt {builder.built:,} answers in {took:.0f}s ({builder.built / took:,.0f}/s);"
            f" they take {answers / 2**20:,.0f} MiB beside the log and index's"
            f" {log / 2**20:,.0f} MiB",
            flush=True,
        )


def zipf_draw(items: int, s: float, seed: int = 7) -> Callable[[], int]:
    """Items drawn with popularity falling as 1/rank**s, ranks shuffled over the items."""
    rng = random.Random(seed)
    ranked = list(range(items))
    rng.shuffle(ranked)
    cum = list(itertools.accumulate(1 / (r + 1) ** s for r in range(items)))
    return lambda: rng.choices(ranked, cum_weights=cum)[0]


async def main(args: argparse.Namespace) -> None:
    async with scratch_database() as (url, tmp):
        per_item = args.events // args.items
        await fill(url, f"{tmp}/home", args.items, per_item)
        conn = await asyncpg.connect(url)
        # What autovacuum and the checkpointer do after a bulk load, done before measuring
        # rather than during: 2 GB just written would otherwise be vacuumed and flushed
        # under the first runs, and the baseline run most of all.
        await conn.execute("VACUUM (ANALYZE)")
        await conn.execute("CHECKPOINT")
        await conn.close()
        # Few enough that every answer fits the lookup cache's default 64 MiB.
        warm = list(range(min(500, args.items // 10)))
        # Each item of a cold run is asked for once (no cache can answer it), and the two
        # runs ask for different items.
        unseen = list(range(len(warm), args.items))
        random.Random(3).shuffle(unseen)
        third = len(unseen) // 3
        cold_live, cold = iter(unseen[:third]), iter(unseen[2 * third :])
        cold_uncounted = iter(unseen[third : 2 * third])
        connector = aiohttp.TCPConnector(limit=args.clients)
        async with aiohttp.ClientSession(connector=connector) as http:

            def lookup(base: str, fmt: str = "json") -> Callable[[int], Awaitable[None]]:
                async def get(n: int) -> None:
                    async with http.get(f"{base}/01/{GTIN}/21/{n}?format={fmt}") as r:
                        body = await r.read()
                        assert r.status == 200, body[:300]

                return get

            # Every answer assembled at the lookup: what an item without a prebuilt
            # answer costs (and every item did, before answers were prebuilt).
            async with served(url, tmp / "home", {"TRACELEDGER_PREBUILD_ANSWERS": "0"}) as base:
                await measure(lookup(base), warm, args.clients, 3)  # connections, buffers
                live = await measure(
                    lookup(base), lambda: next(cold_live, None), args.clients, args.seconds
                )
            async with served(url, tmp / "home") as base:
                pool = await asyncpg.create_pool(url, min_size=args.clients, max_size=args.clients)

                async def select(n: int) -> None:
                    async with pool.acquire() as conn:
                        await conn.fetch(
                            "SELECT idx, role FROM event_keys WHERE key = $1",
                            f"01/{GTIN}/21/{n}",
                        )

                get = lookup(base)
                await measure(get, warm, args.clients, 3)
                rows = [
                    (
                        "indexed SELECT (baseline)",
                        *await measure(select, unseen, args.clients, args.seconds),
                    ),
                    ("lookup, each item once, live", *live),
                    (
                        "lookup, each item once",
                        *await measure(get, lambda: next(cold, None), args.clients, args.seconds),
                    ),
                    (
                        f"lookup, Zipf s={args.zipf:g}",
                        *await measure(
                            get, zipf_draw(args.items, args.zipf), args.clients, args.seconds
                        ),
                    ),
                    # The items the warm-up asked for, again: every answer is in memory.
                    (
                        f"lookup, {len(warm):,} items in memory",
                        *await measure(get, warm, args.clients, args.seconds),
                    ),
                    # The same as the shopper's page: the templates rendered each time.
                    (
                        f"page (HTML), {len(warm):,} items in memory",
                        *await measure(lookup(base, "html"), warm, args.clients, args.seconds),
                    ),
                ]
                await pool.close()
            # What counting look-ups (traceledger/lookup/scans.py) costs: the same runs
            # without it.
            async with served(url, tmp / "home", {"TRACELEDGER_COUNT_SCANS": "0"}) as base:
                get = lookup(base)
                await measure(get, warm, args.clients, 3)
                unseen_rows = [
                    (
                        "lookup, each item once, scans not counted",
                        *await measure(
                            get, lambda: next(cold_uncounted, None), args.clients, args.seconds
                        ),
                    ),
                    (
                        f"lookup, {len(warm):,} items in memory, scans not counted",
                        *await measure(get, warm, args.clients, args.seconds),
                    ),
                ]
                rows[3:3] = unseen_rows[:1]
                rows.append(unseen_rows[1])
        print(
            f"\n== lookups at {args.events:,} events over {args.items:,} items, "
            f"{args.clients} concurrent clients, {args.seconds:g}s each"
        )
        print_rates(rows)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--items", type=int, default=100_000)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=15)
    parser.add_argument("--zipf", type=float, default=1.0, help="popularity skew exponent")
    asyncio.run(main(parser.parse_args()))
