"""A database that goes away is a retriable 503, never a 500: the failures that pass by
themselves are told apart from bugs, and a pooled session the server has ended (what a
shutdown or a failover does) is one of them."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
from collections.abc import AsyncIterator, Iterator
from urllib.parse import parse_qs, urlsplit

import asyncpg
import pytest
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from tests.conftest import poll, wait_for_checkpoint, with_database
from traceledger.ledger import Ledger
from traceledger.settings import Settings
from traceledger.store.unavailable import database_unavailable


def server_error(sqlstate: str) -> asyncpg.PostgresError:
    """The exception asyncpg raises for an ErrorResponse with this SQLSTATE."""
    return asyncpg.PostgresError.new({"C": sqlstate, "M": f"server said {sqlstate}", "S": "ERROR"})


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (server_error("57P01"), True),  # admin shutdown: the server is stopping
        (server_error("57P03"), True),  # cannot connect now: the server is starting
        (server_error("08006"), True),  # connection failure
        (server_error("40001"), True),  # serialization failure
        (server_error("40P01"), True),  # deadlock
        (server_error("53300"), True),  # too many connections
        (server_error("25006"), True),  # read-only transaction: reached a standby
        (server_error("23505"), False),  # unique violation: our logic
        (server_error("42601"), False),  # syntax error: our bug
        (server_error("22007"), False),  # invalid datetime format: bad data
        (ConnectionRefusedError(111, "refused"), True),
        (OSError("Multiple exceptions: [Errno 111] ..., [Errno 99] ..."), True),
        (TimeoutError(), True),
        (FileNotFoundError(2, "no such file"), False),
        (PermissionError(13, "denied"), False),
        (asyncpg.ConnectionDoesNotExistError("connection was closed"), True),
        (asyncpg.InterfaceError("cannot perform operation: connection is closed"), True),
        (asyncpg.InternalClientError("cannot switch to state 12"), True),
        (asyncpg.TargetServerAttributeNotMatched("no read-write host"), True),
        (asyncpg.exceptions.ClientConfigurationError("bad dsn"), False),
        (RuntimeError("a bug"), False),
    ],
)
def test_only_failures_that_pass_by_themselves_count_as_unavailable(
    exc: BaseException, transient: bool
) -> None:
    assert database_unavailable(exc) is transient


class HoldingProxy:
    """A TCP proxy to PostgreSQL that can hold back the server's end of stream.

    When a server ends a session it sends a FATAL error and closes the socket; the
    client processes the two events one after the other. Holding the close back
    stretches the moment in between, which is when asyncpg's pooled connection refuses
    its next statement with InternalClientError ("cannot switch to state 12; another
    operation (2) is in progress"): the 500 seen during a failover.
    """

    def __init__(self, upstream: str) -> None:
        parts = urlsplit(upstream)
        host = parse_qs(parts.query).get("host", [parts.hostname or "127.0.0.1"])[0]
        self._port = parts.port or 5432
        self._socket = f"{host}/.s.PGSQL.{self._port}" if host.startswith("/") else None
        self._host = host
        self.hold = False
        self.held: list[asyncio.StreamWriter] = []
        self.ended = 0  # sessions the server has closed
        self._server: asyncio.Server | None = None

    async def start(self) -> int:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        port: int = self._server.sockets[0].getsockname()[1]
        return port

    async def close(self) -> None:
        self.release()
        if self._server is not None:
            self._server.close()

    @contextlib.contextmanager
    def holding(self) -> Iterator[None]:
        """Hold back the server's ends of stream inside the block, deliver them after."""
        self.hold = True
        try:
            yield
        finally:
            self.hold = False
            self.release()

    def release(self) -> None:
        for writer in self.held:
            writer.close()
        self.held.clear()

    async def _open(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        if self._socket is not None:
            return await asyncio.open_unix_connection(self._socket)
        return await asyncio.open_connection(self._host, self._port)

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        up_reader, up_writer = await self._open()

        async def pump(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            with contextlib.suppress(OSError):
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()

        to_server = asyncio.create_task(pump(reader, up_writer))
        await pump(up_reader, writer)  # until the server closes its end
        self.ended += 1
        if self.hold and not to_server.done():
            self.held.append(writer)  # the client keeps an open socket for now
        else:
            writer.close()
        await to_server
        up_writer.close()


@contextlib.asynccontextmanager
async def proxied(pg_server: str, database: str) -> AsyncIterator[tuple[HoldingProxy, str]]:
    """A holding proxy to the test server, and the DSN of `database` through it."""
    proxy = HoldingProxy(pg_server)
    port = await proxy.start()
    try:
        yield proxy, f"postgresql://postgres@127.0.0.1:{port}/{database}"
    finally:
        await proxy.close()


async def test_a_pooled_session_the_server_ended_answers_503_never_500(
    settings: Settings, pg_server: str
) -> None:
    # A lookup service: no background worker shares its pool, so every connection the
    # server ends is still idle in the pool when the next request takes one.
    async with Ledger.open(settings) as ledger:
        await wait_for_checkpoint(ledger, 0)
    assert settings.database_url is not None
    database = urlsplit(settings.database_url).path.lstrip("/")
    async with proxied(pg_server, database) as (proxy, url):
        lookup = dataclasses.replace(settings, database_url=url, role="lookup")
        async with TestClient(TestServer(create_app(lookup))) as client:
            assert (await client.get("/v1/log")).status == 200

            # What a fast shutdown or a failover does: every session of the service ends.
            with proxy.holding():
                admin = await asyncpg.connect(with_database(pg_server, database))
                try:
                    ended: int = await admin.fetchval(
                        "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                        " WHERE datname = current_database() AND pid <> pg_backend_pid()"
                    )
                finally:
                    await admin.close()
                assert ended > 0

                async def all_ended() -> bool:
                    return proxy.ended >= ended

                await poll("the sessions' ends", all_ended)
                response = await client.get("/v1/log")
                assert response.status == 503, await response.text()
                problem = await response.json(content_type=None)
                assert problem["type"] == "/problems/unavailable"
                assert response.headers["Retry-After"] == "5"

            # Once the closed sockets arrive, the pool opens new sessions by itself.
            async def answers() -> bool:
                status: int = (await client.get("/v1/log")).status
                return status == 200

            await poll("answers again", answers)
