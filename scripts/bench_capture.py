#!/usr/bin/env python3
"""Capture throughput and ack latency over real HTTP, next to a raw COPY baseline.

Starts `traceledger serve` in its own process on a fresh database, registers an
enterprise, pre-signs EPCIS documents, then posts them from this process with several
concurrent clients. The baseline COPYs the same number of rows of the same size with
the same number of commits, in the same run. Uses DATABASE_URL if set, otherwise a
throwaway embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import aiohttp
import asyncpg
from benchkit import pct, scratch_database, served
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from traceledger.accounts import registry
from traceledger.standards.dsse import sign_document
from traceledger.store.pool import connect_pool

ROOT = Path(__file__).resolve().parent.parent


def event(n: int) -> dict[str, object]:
    return {
        "type": "ObjectEvent",
        "eventTime": "2026-10-01T08:00:00+08:00",
        "eventTimeZoneOffset": "+08:00",
        "epcList": [f"urn:epc:id:sgtin:0614141.107346.{n}"],
        "action": "ADD",
        "bizStep": "commissioning",
        "disposition": "active",
        "readPoint": {"id": "urn:epc:id:sgln:0614141.00001.0"},
    }


def document(start: int, size: int) -> dict[str, object]:
    return {
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-10-01T08:00:00Z",
        "epcisBody": {"eventList": [event(n) for n in range(start, start + size)]},
    }


async def copy_baseline(url: str, rows: int, per_commit: int, row_bytes: int) -> float:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute("CREATE TEMP TABLE copy_baseline (LIKE entries INCLUDING ALL)")
        payload = b"x" * row_bytes
        records = [(i, uuid.uuid4().bytes * 2, payload[:120], payload, None) for i in range(rows)]
        t = time.perf_counter()
        for i in range(0, rows, per_commit):
            async with conn.transaction():
                await conn.copy_records_to_table(
                    "copy_baseline",
                    records=records[i : i + per_commit],
                    columns=["idx", "identity", "leaf", "payload", "envelope_hash"],
                )
        return rows / (time.perf_counter() - t)
    finally:
        await conn.close()


async def run(args: argparse.Namespace) -> None:
    async with scratch_database() as (url, tmp):
        pool = await connect_pool(url, min_size=1, max_size=2)
        key = Ed25519PrivateKey.generate()
        async with pool.acquire() as conn:
            await registry.add_enterprise(conn, "Bench", ["0614141"], key.public_key())
        await pool.close()
        async with served(url, tmp / "home") as base, aiohttp.ClientSession() as http:
            print(
                "== capture over HTTP (server in its own process) vs raw COPY of as many"
                " rows with as many commits"
            )
            print(
                f"{'events/doc':>10} {'clients':>7} {'events/s':>9} {'COPY rows/s':>11}"
                f" {'ratio':>6} {'ack p50 ms':>10} {'ack p99 ms':>10}"
            )
            serial = 0
            for per_doc, clients, docs in ((1, 16, 2000), (100, 4, 300), (1000, 2, 40)):
                bodies = []
                for _ in range(docs):
                    bodies.append(sign_document(document(serial, per_doc), key))
                    serial += per_doc
                latencies: list[float] = []
                queue = iter(bodies)

                async def client(
                    queue: Iterator[tuple[bytes, str]] = queue,
                    latencies: list[float] = latencies,
                ) -> None:
                    for body, ctype in queue:
                        t0 = time.perf_counter()
                        async with http.post(
                            base + "/v1/capture", data=body, headers={"Content-Type": ctype}
                        ) as r:
                            await r.read()
                            assert r.status == 201, r.status
                        latencies.append(time.perf_counter() - t0)

                t = time.perf_counter()
                await asyncio.gather(*(client() for _ in range(clients)))
                rate = per_doc * docs / (time.perf_counter() - t)
                copy = await copy_baseline(url, per_doc * docs, per_doc, 400)
                print(
                    f"{per_doc:>10} {clients:>7} {rate:>9,.0f} {copy:>11,.0f}"
                    f" {rate / copy:>6.2f} {pct(latencies, 0.5) * 1e3:>10.1f}"
                    f" {pct(latencies, 0.99) * 1e3:>10.1f}"
                )


if __name__ == "__main__":
    asyncio.run(run(argparse.ArgumentParser(description=__doc__).parse_args()))
