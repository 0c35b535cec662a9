#!/usr/bin/env python3
"""Recall reach: from a recall's acknowledgment to the last holder's webhook receiving it.

A producer's lot is blended into --branches lots, each made into another lot, each of
those into serialized units (--holders in all), each unit packed into its own case and
received by its own shop: a forward trace of depth 4 ending at --holders enterprises,
each with a recall endpoint. Then `traceledger serve` runs in its own process, a webhook
receiver (recording arrival times) in a third, and this process captures --recalls
recalls of the lot over HTTP, timing each from the capture's 201 to the arrival of the
last of the --holders notices. Baseline, in the same run: one webhook round trip (a
notice-sized POST to the same receiver). Uses DATABASE_URL if set, else an embedded
server.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import asyncpg
from aiohttp import web
from benchkit import ROOT, document, free_port, pct, scratch_database, served
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from traceledger.accounts import registry
from traceledger.ingest.capture import CaptureService
from traceledger.inspect.recall_notices import set_endpoint
from traceledger.ledger import Ledger
from traceledger.settings import Settings
from traceledger.standards.dsse import sign_document
from traceledger.standards.schemas import SchemaSet
from traceledger.tlog.leaf import Leaf

GCP = "0614141"
LOT = f"urn:epc:class:lgtin:{GCP}.020000.ROOT"


def lot(level: int, branch: int) -> str:
    return f"urn:epc:class:lgtin:{GCP}.020000.L{level}B{branch}"


def unit(branch: int, n: int) -> str:
    return f"urn:epc:id:sgtin:{GCP}.030000.U{branch}N{n}"


def case(i: int) -> str:
    return f"urn:epc:id:sscc:{GCP}.{i:010d}"


def event(kind: str, minute: int, **fields: Any) -> dict[str, Any]:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(1_767_225_600 + minute * 60))
    return {"type": kind, "eventTime": stamp, "eventTimeZoneOffset": "+00:00", **fields}


def producer_events(branches: int, per_branch: int) -> list[dict[str, Any]]:
    """Depth 1: the lot blended into branch lots; 2: each into a second lot; 3: units made
    of it; 4: each unit packed into its own case."""
    qty = [{"epcClass": LOT, "quantity": 1000, "uom": "KGM"}]
    out = [event("ObjectEvent", 0, action="ADD", bizStep="commissioning", quantityList=qty)]
    out.append(
        event(
            "TransformationEvent",
            1,
            bizStep="commissioning",
            inputQuantityList=qty,
            outputQuantityList=[{"epcClass": lot(1, b), "quantity": 100} for b in range(branches)],
        )
    )
    for b in range(branches):
        out += [
            event(
                "TransformationEvent",
                2,
                bizStep="commissioning",
                inputQuantityList=[{"epcClass": lot(1, b), "quantity": 100}],
                outputQuantityList=[{"epcClass": lot(2, b), "quantity": 100}],
            ),
            event(
                "TransformationEvent",
                3,
                bizStep="commissioning",
                inputQuantityList=[{"epcClass": lot(2, b), "quantity": 100}],
                outputEPCList=[unit(b, n) for n in range(per_branch)],
            ),
        ]
        out += [
            event(
                "AggregationEvent",
                4,
                action="ADD",
                bizStep="packing",
                parentID=case(b * per_branch + n),
                childEPCs=[unit(b, n)],
            )
            for n in range(per_branch)
        ]
    return out


async def fill(url: str, home: Path, args: argparse.Namespace, inbox: str) -> Ed25519PrivateKey:
    """The chain, signed and captured in-process; returns the producer's key."""
    settings = Settings(home=home, database_url=url, checkpoint_interval=0.2, pool_max=4)
    producer = Ed25519PrivateKey.generate()
    per_branch = args.holders // args.branches
    async with Ledger.open(settings) as ledger:
        capture = CaptureService(ledger.pool, ledger.sequencer, SchemaSet(), settings)
        async with ledger.pool.acquire() as conn:
            await registry.add_enterprise(conn, "Producer", [GCP], producer.public_key())
        events = producer_events(args.branches, per_branch)
        for start in range(0, len(events), 5000):
            await capture.capture(*sign_document(document(events[start : start + 5000]), producer))
        for i in range(args.branches * per_branch):
            shop = Ed25519PrivateKey.generate()
            async with ledger.pool.acquire() as conn:
                ent, _ = await registry.add_enterprise(
                    conn, f"Shop {i}", [f"7{i:06d}"], shop.public_key()
                )
                await set_endpoint(conn, ent, f"{inbox}/h/{i}", None)
            receipt = event(
                "ObjectEvent", 5, action="OBSERVE", bizStep="receiving", epcList=[case(i)]
            )
            await capture.capture(*sign_document(document([receipt]), shop))
    return producer


# ---------------------------------------------------------------------------------------------
# The receiver, in its own process: arrival times by recall index


def serve_receiver(port: int) -> None:
    arrivals: dict[int, list[float]] = {}

    async def notice(request: web.Request) -> web.Response:
        body = await request.read()
        seen = time.monotonic()
        index = json.loads(body).get("recall", {}).get("index", -1)
        arrivals.setdefault(index, []).append(seen)
        return web.Response(text="ok")

    async def report(request: web.Request) -> web.Response:
        return web.json_response(arrivals.get(int(request.query["recall"]), []))

    async def ping(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(text="ok")

    app = web.Application()
    app.router.add_post("/h/{n}", notice)
    app.router.add_post("/ping", ping)
    app.router.add_get("/arrivals", report)
    web.run_app(app, host="127.0.0.1", port=port, print=None, access_log=None)


async def started_receiver(port: int) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, __file__, "--serve-receiver", str(port), cwd=ROOT
    )
    async with aiohttp.ClientSession() as http:
        for _ in range(100):
            try:
                async with http.get(f"http://127.0.0.1:{port}/arrivals?recall=0"):
                    return proc
            except aiohttp.ClientError:
                await asyncio.sleep(0.1)
    raise RuntimeError("the receiver did not start")


async def round_trips(http: aiohttp.ClientSession, inbox: str, count: int) -> list[float]:
    body = b"x" * 3000  # about a notice's size
    times = []
    for _ in range(count):
        t = time.perf_counter()
        async with http.post(f"{inbox}/ping", data=body) as r:
            await r.read()
        times.append(time.perf_counter() - t)
    return times


async def one_recall(
    http: aiohttp.ClientSession, base: str, inbox: str, key: Ed25519PrivateKey, n: int, holders: int
) -> float:
    recall = event(
        "ObjectEvent",
        10 + n,
        action="OBSERVE",
        disposition="recalled",
        quantityList=[{"epcClass": LOT}],
    )
    body, content_type = sign_document(document([recall]), key)
    async with http.post(
        f"{base}/v1/capture", data=body, headers={"Content-Type": content_type}
    ) as r:
        assert r.status == 201, await r.text()
        index = (await r.json())["entries"][0]["index"]
    acknowledged = time.monotonic()
    deadline = acknowledged + 600
    while time.monotonic() < deadline:
        async with http.get(f"{inbox}/arrivals?recall={index}") as r:
            arrived: list[float] = await r.json()
        if len(arrived) >= holders:
            return max(arrived) - acknowledged
        await asyncio.sleep(0.05)
    raise TimeoutError(f"recall {index}: {len(arrived)} of {holders} notices arrived")


async def breakdown(url: str) -> list[tuple[float, float]]:
    """Per recall, from the database's clock: seconds from its record time to its notice
    being planned (indexed, under a checkpoint, traced), and from then to the last
    delivery recorded."""
    conn = await asyncpg.connect(url)
    try:
        rows = await conn.fetch(
            "SELECT n.recall_idx, e.leaf, extract(epoch FROM n.created_at) AS planned,"
            " extract(epoch FROM max(d.delivered_at)) AS delivered"
            " FROM recall_notices n JOIN entries e ON e.idx = n.recall_idx"
            " JOIN recall_deliveries d ON d.recall_idx = n.recall_idx"
            " GROUP BY n.recall_idx, e.leaf, n.created_at"
        )
    finally:
        await conn.close()
    out = []
    for r in rows:
        recorded = Leaf.decode(bytes(r["leaf"])).record_time_us / 1e6
        out.append((float(r["planned"]) - recorded, float(r["delivered"]) - float(r["planned"])))
    return out


async def main(args: argparse.Namespace) -> None:
    holders = args.branches * (args.holders // args.branches)
    port = free_port()
    inbox = f"http://127.0.0.1:{port}"
    receiver = await started_receiver(port)
    try:
        async with scratch_database() as (url, tmp):
            t = time.perf_counter()
            producer = await fill(url, tmp / "home", args, inbox)
            print(f"{holders:,} holders at depth 4 loaded in {time.perf_counter() - t:.0f}s")
            env = {
                "TRACELEDGER_CHECKPOINT_INTERVAL": str(args.checkpoint_interval),
                "TRACELEDGER_NOTIFY_INTERVAL": str(args.notify_interval),
                "TRACELEDGER_WEBHOOK_CONCURRENCY": str(args.concurrency),
            }
            async with served(url, tmp / "home", env) as base, aiohttp.ClientSession() as http:
                baseline = await round_trips(http, inbox, 300)
                reach = [
                    await one_recall(http, base, inbox, producer, n, holders)
                    for n in range(args.recalls)
                ]
            phases = await breakdown(url)
    finally:
        receiver.terminate()
        await receiver.wait()
    rtt = statistics.median(baseline)
    print(
        f"\n== {args.recalls} recalls, each reaching {holders:,} holders"
        f" (checkpoint interval {args.checkpoint_interval:g}s, notifier every"
        f" {args.notify_interval:g}s, {args.concurrency} webhooks at once)"
    )
    print(f"{'':>34} {'median ms':>10} {'p99 ms':>10} {'vs round trip':>14}")
    for label, values in (
        ("one webhook round trip (baseline)", baseline),
        ("201 to the last holder's webhook", reach),
        ("  of which: logged to planned", [p for p, _ in phases]),
        ("  of which: planned to delivered", [d for _, d in phases]),
    ):
        mid, top = statistics.median(values), pct(values, 0.99)
        print(f"{label:>34} {mid * 1e3:>10.1f} {top * 1e3:>10.1f} {mid / rtt:>14.0f}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--holders", type=int, default=1000)
    parser.add_argument("--branches", type=int, default=10)
    parser.add_argument("--recalls", type=int, default=20)
    parser.add_argument("--checkpoint-interval", type=float, default=1.0)
    parser.add_argument("--notify-interval", type=float, default=0.2)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--serve-receiver", type=int, help=argparse.SUPPRESS)
    parsed = parser.parse_args()
    if parsed.serve_receiver:
        serve_receiver(parsed.serve_receiver)
    else:
        asyncio.run(main(parsed))
