#!/usr/bin/env python3
"""Origin and forward trace at scale: a graph of --lots lots, --depth transformation levels.

Level-0 lots are commissioned; each lot of a higher level is blended from two random
lots of the level below (a TransformationEvent), and every lot is received somewhere.
Then `traceledger serve` runs in its own process and this process asks, with an
inspector token, for the origin of random top-level lots (the whole upstream tree) and
the forward trace of random level-0 lots (everything made from them), from --clients
concurrent clients. Baseline: one indexed SELECT on event_keys at the same
concurrency, in the same run. Uses DATABASE_URL if set, else an embedded server.

Events are logged as capture would log them, signed by the enterprise owning their
prefix (so the trust rules believe them), without the HTTP. Neither the loading nor the
service builds lookup answers ahead (TRACELEDGER_PREBUILD_ANSWERS=0): inspectors' queries
never read them, and a builder still working through the bulk load would measure that
backlog, not the trace (bench_capture.py measures the builder's rate).
"""

from __future__ import annotations

import argparse
import asyncio
import random
import time
from pathlib import Path

import aiohttp
import asyncpg
from benchkit import measure, print_rates, scratch_database, served, signed_entries
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from traceledger.accounts import registry, tokens
from traceledger.ledger import Ledger
from traceledger.settings import Settings
from traceledger.standards.gs1 import check_digit

GCP = "0614141"
GTIN = "0" + GCP + "20000" + check_digit("0" + GCP + "20000")


def lot_class(n: int) -> str:
    return f"urn:epc:class:lgtin:{GCP}.020000.L{n}"


def lot_key(n: int) -> str:
    return f"01/{GTIN}/10/L{n}"


def when(n: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_767_225_600 + n * 30))


def graph_events(lots: int, depth: int, rng: random.Random) -> list[dict[str, object]]:
    per_level = lots // (depth + 1)
    events: list[dict[str, object]] = []
    for n in range(lots):
        level = min(n // per_level, depth)
        if level == 0:
            events.append(
                {
                    "type": "ObjectEvent",
                    "action": "ADD",
                    "bizStep": "commissioning",
                    "quantityList": [{"epcClass": lot_class(n), "quantity": 100}],
                    "eventTime": when(n),
                    "eventTimeZoneOffset": "+00:00",
                    "ilmd": {"cbvmda:countryOfOrigin": "NZ"},
                }
            )
        else:
            below = range((level - 1) * per_level, level * per_level)
            inputs = rng.sample(below, 2)
            events.append(
                {
                    "type": "TransformationEvent",
                    "bizStep": "commissioning",
                    "inputQuantityList": [
                        {"epcClass": lot_class(i), "quantity": 50} for i in inputs
                    ],
                    "outputQuantityList": [{"epcClass": lot_class(n), "quantity": 100}],
                    "eventTime": when(n),
                    "eventTimeZoneOffset": "+00:00",
                }
            )
        events.append(
            {
                "type": "ObjectEvent",
                "action": "OBSERVE",
                "bizStep": "receiving",
                "quantityList": [{"epcClass": lot_class(n)}],
                "eventTime": when(n + 1),
                "eventTimeZoneOffset": "+00:00",
                "bizLocation": {"id": f"urn:epc:id:sgln:{GCP}.{n % 500:05d}.0"},
            }
        )
    return events


async def fill(url: str, home: Path, args: argparse.Namespace) -> str:
    settings = Settings(
        home=home, database_url=url, checkpoint_interval=0.5, pool_max=4, prebuild_answers=False
    )
    t = time.perf_counter()
    key = Ed25519PrivateKey.generate()
    async with Ledger.open(settings) as ledger:
        async with ledger.pool.acquire() as conn:
            await registry.add_enterprise(conn, "Bench", [GCP], key.public_key())
            _, token = await tokens.add_token(conn, "bench inspector", "inspector")
        events = graph_events(args.lots, args.depth, random.Random(7))
        for start in range(0, len(events), 5000):
            await ledger.sequencer.append(signed_entries(events[start : start + 5000], key))
        indexed = "SELECT least(next_idx, (SELECT max(size) FROM checkpoints)) FROM index_state"
        while await ledger.pool.fetchval(indexed) < len(events):  # noqa: ASYNC110 - polls
            await asyncio.sleep(1)
        await ledger.pool.execute("ANALYZE")
    print(
        f"{len(events):,} events over {args.lots:,} lots in {args.depth} levels, "
        f"loaded in {time.perf_counter() - t:.0f}s",
        flush=True,
    )
    return token


async def main(args: argparse.Namespace) -> None:
    async with scratch_database() as (url, tmp):
        token = await fill(url, tmp / "home", args)
        per_level = args.lots // (args.depth + 1)
        top = list(range(args.depth * per_level, args.lots))
        bottom = list(range(per_level))
        headers = {"Authorization": f"Bearer {token}"}
        async with served(url, tmp / "home", {"TRACELEDGER_PREBUILD_ANSWERS": "0"}) as base:
            pool = await asyncpg.create_pool(url, min_size=args.clients, max_size=args.clients)
            async with aiohttp.ClientSession(headers=headers) as http:

                async def select(n: int) -> None:
                    async with pool.acquire() as conn:
                        await conn.fetch(
                            "SELECT idx, role FROM event_keys WHERE key = $1", lot_key(n)
                        )

                async def origin(n: int) -> None:
                    async with http.get(f"{base}/v1/origin/{lot_key(n)}") as r:
                        assert r.status == 200, await r.text()
                        await r.read()

                async def forward(n: int) -> None:
                    async with http.get(f"{base}/v1/trace/forward/{lot_key(n)}") as r:
                        assert r.status == 200, await r.text()
                        await r.read()

                results = [
                    (
                        "indexed SELECT (baseline)",
                        *await measure(select, top, args.clients, args.seconds),
                    ),
                    (
                        f"origin, depth {args.depth}",
                        *await measure(origin, top, args.clients, args.seconds),
                    ),
                    (
                        f"forward trace, depth {args.depth}",
                        *await measure(forward, bottom, args.clients, args.seconds),
                    ),
                ]
            await pool.close()
        print(f"\n== {args.clients} concurrent clients, {args.seconds:g}s each")
        print_rates(results)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--lots", type=int, default=100_000)
    parser.add_argument("--depth", type=int, default=6)
    parser.add_argument("--clients", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=15)
    asyncio.run(main(parser.parse_args()))
