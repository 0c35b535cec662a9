"""No single request may stall the service or write anything partial: slow and abandoned
uploads, huge numbers, hostile Digital Link paths. Times are compared with a baseline
request made in the same test, never with a fixed number of seconds."""

from __future__ import annotations

import asyncio
import dataclasses
import statistics
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.keys import LEDGER, OPERATOR_TOKEN
from gateway.params import BODY_BUDGET
from tests.epcis_samples import document, object_event
from tests.ingest.test_capture import Signer, post_raw, register
from traceledger.settings import Settings
from traceledger.standards.dsse import sign_document

Client = TestClient[web.Request, web.Application]


@pytest.fixture
async def tight(settings: Settings) -> AsyncIterator[Client]:
    """A service with a short body deadline and a small budget for bodies in flight."""
    narrow = dataclasses.replace(settings, body_deadline=0.5, max_buffered_body_bytes=200_000)
    async with TestClient(TestServer(create_app(narrow))) as client:
        yield client


class SlowUpload:
    """A capture request whose headers declare `length` bytes, of which only a few come."""

    def __init__(self, client: Client, length: int) -> None:
        self._client, self._length = client, length
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def start(self) -> None:
        server = self._client.server
        self.reader, self.writer = await asyncio.open_connection(server.host, server.port)
        self.writer.write(
            (
                "POST /v1/capture HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                f"Content-Length: {self._length}\r\n\r\n{{"
            ).encode()
        )
        await self.writer.drain()

    async def status(self) -> int:
        assert self.reader is not None
        line = await asyncio.wait_for(self.reader.readline(), 30)
        return int(line.split()[1])

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


async def head_size(client: Client) -> int:
    async with client.app[LEDGER].pool.acquire() as conn:
        size: int = await conn.fetchval("SELECT size FROM log_head")
        return size


async def median_seconds(make: Callable[[], Awaitable[object]], times: int = 9) -> float:
    spent = []
    for _ in range(times):
        start = time.perf_counter()
        await make()
        spent.append(time.perf_counter() - start)
    return statistics.median(spent)


async def healthz(client: Client) -> None:
    async with client.get("/healthz") as response:
        assert response.status == 200


async def test_a_body_that_never_finishes_gets_408_and_writes_nothing(tight: Client) -> None:
    upload = SlowUpload(tight, 100_000)
    await upload.start()
    try:
        assert await upload.status() == 408
    finally:
        upload.close()
    assert await head_size(tight) == 0
    assert tight.app[BODY_BUDGET].used == 0


async def test_slow_uploads_past_the_budget_are_refused_at_once_and_healthz_keeps_up(
    tight: Client,
) -> None:
    baseline = await median_seconds(lambda: healthz(tight))
    holding = SlowUpload(tight, 150_000)  # most of the 200,000-byte budget, never finished
    await holding.start()
    try:
        await asyncio.sleep(0)  # let the server reserve the declared length
        for _ in range(100):
            if tight.app[BODY_BUDGET].used:
                break
            await asyncio.sleep(0.01)
        response = await tight.post(
            "/v1/capture", data=b"{" * 100_000, headers={"Content-Type": "application/json"}
        )
        assert response.status == 503
        assert response.headers["Retry-After"] == "1"
        assert (await response.json())["type"] == "/problems/busy"
        during = await median_seconds(lambda: healthz(tight))
        assert during < baseline * 20 + 0.05  # the loop is free: no stall behind uploads
        assert await holding.status() == 408
    finally:
        holding.close()
    # Once the slow upload is gone, its reservation is released and bodies flow again.
    assert tight.app[BODY_BUDGET].used == 0
    status, _ = await post_raw(tight, b"{" * 100_000, "application/json")
    assert status == 400
    assert await head_size(tight) == 0


async def test_a_legitimate_capture_passes_under_the_same_limits(tight: Client) -> None:
    signer = await register(tight, "Dairy", ["0614141"])
    body, content_type = sign_document(document(object_event(1)), signer.key)
    status, receipt = await post_raw(tight, body, content_type)
    assert status == 201, receipt
    assert tight.app[BODY_BUDGET].used == 0


async def test_a_number_too_long_to_read_is_a_400_at_capture_and_in_the_admin_api(
    client: Client,
) -> None:
    signer: Signer = await register(client, "Dairy", ["0614141"])
    huge = b'{"type": "EPCISDocument", "schemaVersion": ' + b"1" * 5000 + b"}"
    body, content_type = sign_document(huge, signer.key)
    status, problem = await post_raw(client, body, content_type)
    assert status == 400, problem
    assert problem["type"] == "/problems/malformed-body"
    response = await client.post(
        "/v1/admin/enterprises",
        data=b'{"name": "X", "gcp": [' + b"9" * 5000 + b"]}",
        headers={"Authorization": f"Bearer {client.app[OPERATOR_TOKEN]}"},
    )
    assert response.status == 400
    assert await head_size(client) == 0


async def test_a_hostile_digital_link_path_costs_about_what_a_normal_one_does(
    client: Client,
) -> None:
    async def lookup(path: str) -> None:
        async with client.get(path, headers={"Accept": "application/json"}) as response:
            assert response.status in (400, 404), await response.text()

    normal = await median_seconds(lambda: lookup("/01/09421023100156/10/NOPE"))
    repeated = "/414" * 250  # just under the path cap, every segment a key AI
    hostile = await median_seconds(lambda: lookup(repeated + "/0"))
    assert hostile < normal * 10 + 0.05
    async with client.get("/01/09421023100156/10/" + "A" * 8000) as response:
        assert response.status == 400
        assert "at most 1024" in (await response.json())["detail"]
