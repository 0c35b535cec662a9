"""A multi-host DSN reaches the host that answers even when another never does (a primary
whose machine died without a word), and keeps going to the one that worked."""

from __future__ import annotations

import asyncio
from urllib.parse import urlsplit

import pytest

from tests.store.test_unavailable import proxied
from traceledger.store.hosts import split_hosts
from traceledger.store.pool import connect_pool


@pytest.mark.parametrize(
    ("dsn", "hosts"),
    [
        (
            "postgresql://u:pw@h1:5432,h2:5433/db?target_session_attrs=read-write",
            [
                "postgresql://u:pw@h1:5432/db?target_session_attrs=read-write",
                "postgresql://u:pw@h2:5433/db?target_session_attrs=read-write",
            ],
        ),
        ("postgres://h1,[::1]:6000/db", ["postgres://h1/db", "postgres://[::1]:6000/db"]),
        ("postgresql://u@h1:5432/db", ["postgresql://u@h1:5432/db"]),
        ("postgresql:///db?host=h1,h2", ["postgresql:///db?host=h1,h2"]),
        ("host=h1,h2 dbname=db", ["host=h1,h2 dbname=db"]),
    ],
)
def test_a_multi_host_uri_splits_into_one_dsn_per_host(dsn: str, hosts: list[str]) -> None:
    assert split_hosts(dsn) == hosts


async def test_a_pool_gets_past_a_host_that_never_answers(
    database_url: str, pg_server: str
) -> None:
    attempts: list[asyncio.StreamWriter] = []

    async def silent(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        attempts.append(writer)  # accepted, then never a byte back: a hung server
        await reader.read()

    mute = await asyncio.start_server(silent, "127.0.0.1", 0)
    mute_port = mute.sockets[0].getsockname()[1]
    database = urlsplit(database_url).path.lstrip("/")
    try:
        async with proxied(pg_server, database) as (_, url):
            live = urlsplit(url).netloc.rpartition("@")[2]
            dsn = f"postgresql://postgres@127.0.0.1:{mute_port},{live}/{database}"
            pool = await connect_pool(dsn, min_size=1, max_size=3)
            try:
                async with pool.acquire() as a, pool.acquire() as b, pool.acquire() as c:
                    pids = {await conn.fetchval("SELECT pg_backend_pid()") for conn in (a, b, c)}
                assert len(pids) == 3
            finally:
                await pool.close()
    finally:
        for writer in attempts:
            writer.close()
        mute.close()
    # Only the first connection tried the silent host; the next two went where one worked.
    assert len(attempts) == 1
