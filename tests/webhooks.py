"""A real webhook receiver for tests: an aiohttp server on a free local port that records
every POST and can be told to fail first."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestServer


@dataclass
class Delivery:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> dict[str, Any]:
        parsed: dict[str, Any] = json.loads(self.body)
        return parsed


@dataclass
class Receiver:
    """`fail` answers 503 to that many requests first (then 200); `failing` to all."""

    fail: int = 0
    failing: bool = False
    received: list[Delivery] = field(default_factory=list)
    refused: int = 0
    _server: TestServer | None = None

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        if self.failing or self.fail > 0:
            self.fail = max(self.fail - 1, 0)
            self.refused += 1
            return web.Response(status=503, text="not now")
        self.received.append(Delivery(request.path, dict(request.headers), body))
        return web.Response(text="ok")

    async def __aenter__(self) -> Receiver:
        app = web.Application()
        app.router.add_post("/{tail:.*}", self._handle)
        self._server = TestServer(app, host="127.0.0.1")
        await self._server.start_server()
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._server is not None:
            await self._server.close()

    def url(self, path: str = "/hook") -> str:
        assert self._server is not None
        return str(self._server.make_url(path))

    def at(self, path: str) -> list[Delivery]:
        return [d for d in self.received if d.path == path]

    async def wait_for(self, count: int, path: str | None = None, within: float = 30) -> None:
        """Poll until `count` deliveries (to `path`, if given) arrived, or fail."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while len(self.received if path is None else self.at(path)) < count:
            if loop.time() > deadline:
                raise TimeoutError(f"{count} deliveries did not arrive within {within}s")
            await asyncio.sleep(0.02)


async def poll(check: Any, within: float = 30, what: str = "the condition") -> Any:
    """Call the async `check` until it returns something truthy (returned), or fail."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        found = await check()
        if found:
            return found
        if loop.time() > deadline:
            raise TimeoutError(f"{what} did not hold within {within}s")
        await asyncio.sleep(0.02)
