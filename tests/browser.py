"""Headless Chromium driven over the Chrome DevTools Protocol, for the page tests.

A real browser loads the real page from a real server and runs its script; tests read
what it shows (text, not pixels). Chromium comes from the system (`scripts/dev.py test`
installs the Debian package); tests skip when it is missing.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import itertools
import json
import shutil
import tempfile
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
PHONE_WIDTH = 390
# What this machine's Chromium needs to run headless, unattended and offline.
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--remote-debugging-port=0",
)


class Page:
    """One tab, attached with its own session."""

    def __init__(self, browser: Browser, session: str) -> None:
        self._browser = browser
        self._session = session

    async def send(self, method: str, **params: Any) -> dict[str, Any]:
        return await self._browser.send(method, session=self._session, **params)

    async def goto(self, url: str, within: float = 60.0) -> None:
        """Load `url` and wait for its load event (the page's module script has run)."""
        loaded = self._browser.expect("Page.loadEventFired", self._session)
        await self.send("Page.navigate", url=url)
        await asyncio.wait_for(loaded, within)

    async def evaluate(self, expression: str, *, promise: bool = False) -> Any:
        result = await self.send(
            "Runtime.evaluate", expression=expression, returnByValue=True, awaitPromise=promise
        )
        if "exceptionDetails" in result:
            raise RuntimeError(f"{expression!r} failed: {result['exceptionDetails']}")
        return result["result"].get("value")

    async def wait_for(self, expression: str, within: float = 60.0) -> Any:
        """Poll `expression` until it is truthy; its value."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + within
        while not (value := await self.evaluate(expression)):
            if loop.time() > deadline:
                raise TimeoutError(f"{expression!r} stayed falsy for {within}s")
            await asyncio.sleep(0.05)
        return value

    async def text(self) -> str:
        """What a reader sees: the rendered text of the page."""
        value: str = await self.evaluate("document.body.innerText")
        return value

    async def screenshot(self, path: Path) -> bytes:
        """The whole page at its width, as PNG (saved to `path` for people to look at)."""
        shot = await self.send("Page.captureScreenshot", format="png", captureBeyondViewport=True)
        data = base64.b64decode(shot["data"])
        await asyncio.to_thread(path.write_bytes, data)
        return data


class Browser:
    """A headless Chromium with a fresh profile, closed (and its profile removed) on exit."""

    def __init__(self) -> None:
        self._ws: aiohttp.ClientWebSocketResponse | None = None
        self._ids = itertools.count(1)
        self._waiting: dict[int, asyncio.Future[dict[str, Any]]] = {}
        self._events: list[tuple[str, str | None, asyncio.Future[dict[str, Any]]]] = []

    @classmethod
    @contextlib.asynccontextmanager
    async def launch(cls) -> AsyncIterator[Browser]:
        assert CHROMIUM is not None
        browser = cls()
        # Chromium's helper processes may still write to the profile as it goes away.
        with tempfile.TemporaryDirectory(
            prefix="traceledger-chromium-", ignore_cleanup_errors=True
        ) as profile:
            proc = await asyncio.create_subprocess_exec(
                CHROMIUM,
                *FLAGS,
                f"--user-data-dir={profile}",
                "about:blank",
                stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.DEVNULL,
            )
            try:
                endpoint = await _endpoint(Path(profile) / "DevToolsActivePort")
                async with (
                    aiohttp.ClientSession() as http,
                    http.ws_connect(endpoint, max_msg_size=0) as ws,
                ):
                    browser._ws = ws
                    reader = asyncio.create_task(browser._read())
                    try:
                        yield browser
                    finally:
                        # Closed from inside, Chromium takes its helper processes along.
                        with contextlib.suppress(Exception):
                            await asyncio.wait_for(browser.send("Browser.close"), 10)
                        reader.cancel()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(proc.wait(), 30)
            finally:
                if proc.returncode is None:
                    proc.kill()
                await proc.wait()

    async def _read(self) -> None:
        assert self._ws is not None
        async for message in self._ws:
            data = json.loads(message.data)
            if "id" in data:
                future = self._waiting.pop(data["id"], None)
                if future is not None and not future.done():
                    future.set_result(data)
                continue
            for entry in list(self._events):
                method, session, future = entry
                if data.get("method") == method and data.get("sessionId") == session:
                    self._events.remove(entry)
                    if not future.done():
                        future.set_result(data.get("params", {}))

    def expect(self, method: str, session: str | None) -> asyncio.Future[dict[str, Any]]:
        """A future for the next `method` event of `session` (register before causing it)."""
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._events.append((method, session, future))
        return future

    async def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        ident = next(self._ids)
        future: asyncio.Future[dict[str, Any]] = asyncio.get_running_loop().create_future()
        self._waiting[ident] = future
        message: dict[str, Any] = {"id": ident, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        assert self._ws is not None
        await self._ws.send_str(json.dumps(message))
        reply = await asyncio.wait_for(future, 120)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        result: dict[str, Any] = reply.get("result", {})
        return result

    async def page(
        self, width: int = PHONE_WIDTH, height: int = 844, *, javascript: bool = True
    ) -> Page:
        """A new tab with a phone-sized viewport."""
        target = await self.send("Target.createTarget", url="about:blank")
        attached = await self.send(
            "Target.attachToTarget", targetId=target["targetId"], flatten=True
        )
        page = Page(self, attached["sessionId"])
        await page.send("Page.enable")
        await page.send(
            "Emulation.setDeviceMetricsOverride",
            width=width,
            height=height,
            deviceScaleFactor=1,
            mobile=True,
        )
        if not javascript:
            await page.send("Emulation.setScriptExecutionDisabled", value=True)
        return page


async def _endpoint(port_file: Path, within: float = 60.0) -> str:
    """The browser's DevTools WebSocket, once Chromium has written where it listens."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        with contextlib.suppress(FileNotFoundError, ValueError):
            port, path = (await asyncio.to_thread(port_file.read_text)).split()[:2]
            return f"ws://127.0.0.1:{int(port)}{path}"
        if loop.time() > deadline:
            raise TimeoutError("Chromium did not start its DevTools endpoint")
        await asyncio.sleep(0.05)
