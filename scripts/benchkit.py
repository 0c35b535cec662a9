"""Plumbing the benchmarks share: a scratch database, a served ledger, percentiles."""

from __future__ import annotations

import asyncio
import contextlib
import os
import random
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import orjson
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from traceledger.log.sequencer import Entry
from traceledger.standards import dsse, eventhash
from traceledger.store import embedded

ROOT = Path(__file__).resolve().parent.parent


def document(events: list[dict[str, Any]]) -> dict[str, Any]:
    """An EPCIS 2.0 document carrying `events`."""
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2026-01-01T00:00:00Z",
        "epcisBody": {"eventList": events},
    }


def signed_entries(events: list[dict[str, Any]], key: Ed25519PrivateKey) -> list[Entry]:
    """`events` as capture logs them, without the HTTP: each with its hash as eventID,
    all under one envelope `key` signed. The indexer credits the enterprise whose key
    that is, so the trust rules believe its events as they would captured ones (events
    with no envelope are nobody's claims, and a trace would follow none of them)."""
    digests = []
    for event in events:
        digest = eventhash.event_hash(event)
        event["eventID"] = eventhash.event_hash_id(digest)
        digests.append(digest)
    body, _ = dsse.sign_document(orjson.dumps(document(events)), key)
    return [
        Entry(digest, orjson.dumps(event), envelope=body)
        for digest, event in zip(digests, events, strict=True)
    ]


async def measure(
    fetch: Callable[[int], Awaitable[None]],
    keys: list[int] | Callable[[], int | None],
    clients: int,
    seconds: float,
) -> tuple[list[float], float]:
    """Latencies and requests/s of `clients` concurrent loops calling fetch(key), the key
    drawn uniformly from `keys` or by calling it; a loop ends early when that gives None
    (a source of items to ask for once has run out, at small sizes)."""
    latencies: list[float] = []
    deadline = time.perf_counter() + seconds
    rng = random.Random(1)
    draw = keys if callable(keys) else lambda: rng.choice(keys)

    async def client() -> None:
        while time.perf_counter() < deadline:
            n = draw()
            if n is None:
                return
            t0 = time.perf_counter()
            await fetch(n)
            latencies.append(time.perf_counter() - t0)

    t = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return latencies, len(latencies) / (time.perf_counter() - t)


def pct(values: list[float], q: float) -> float:
    return sorted(values)[min(len(values) - 1, int(q * len(values)))]


def print_rates(rows: list[tuple[str, list[float], float]]) -> None:
    """A table of (label, latencies, requests/s); the first row is the baseline."""
    print(f"{'':>32} {'p50 ms':>8} {'p99 ms':>8} {'per s':>8} {'vs baseline':>12}")
    base_rate = rows[0][2]
    for label, lat, rate in rows:
        print(
            f"{label:>32} {pct(lat, 0.5) * 1e3:>8.2f} {pct(lat, 0.99) * 1e3:>8.2f}"
            f" {rate:>8,.1f} {rate / base_rate:>12.3f}"
        )


@contextlib.asynccontextmanager
async def scratch_database() -> AsyncIterator[tuple[str, Path]]:
    """(DSN of a new empty database, a temp folder): on DATABASE_URL's server if set,
    else on a throwaway embedded PostgreSQL; the database is dropped afterwards."""
    with tempfile.TemporaryDirectory() as tmp:
        server = os.environ.get("DATABASE_URL") or ""
        if not server:
            server = await asyncio.to_thread(embedded.start_embedded, Path(tmp) / "pgdata")
        name = f"bench_{uuid.uuid4().hex[:10]}"
        admin = await asyncpg.connect(server)
        await admin.execute(f'CREATE DATABASE "{name}"')
        await admin.close()
        try:
            yield urlunsplit(urlsplit(server)._replace(path="/" + name)), Path(tmp)
        finally:
            # A shared server should not keep every run's data.
            admin = await asyncpg.connect(server)
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            await admin.close()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def served(url: str, home: Path, env: dict[str, str] | None = None) -> AsyncIterator[str]:
    """`traceledger serve` on `url` in its own process (with `env` added to the
    environment); yields its base URL once ready."""
    port = free_port()
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli.main",
        "--home",
        str(home),
        "--database-url",
        url,
        "serve",
        "--port",
        str(port),
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession() as http:
            for _ in range(300):
                with contextlib.suppress(aiohttp.ClientError):
                    async with http.get(base + "/v1/log") as r:
                        if r.status == 200:
                            break
                await asyncio.sleep(0.1)
        yield base
    finally:
        proc.terminate()
        await proc.wait()
