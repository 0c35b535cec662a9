"""The ledger's HTTP transport to webhook receivers (subscriptions, recall notices)."""

from __future__ import annotations

from collections.abc import Mapping

import aiohttp

from traceledger.errors import WebhookUnreachableError

_MAX_RESPONSE = 64 * 1024  # receivers answer with a status; their bodies are not read on


class HttpWebhookTransport:
    """One aiohttp session for every receiver; use as an async context manager.

    Redirects are not followed: a receiver is the URL its owner registered, nothing it
    points elsewhere to."""

    def __init__(self, *, timeout: float = 10.0, connections: int = 100) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._connections = connections
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HttpWebhookTransport:
        self._session = aiohttp.ClientSession(
            timeout=self._timeout, connector=aiohttp.TCPConnector(limit=self._connections)
        )
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int:
        assert self._session is not None, "use the transport as an async context manager"
        try:
            async with self._session.post(
                url, data=body, headers=dict(headers), allow_redirects=False
            ) as response:
                await response.content.read(_MAX_RESPONSE)
                return response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WebhookUnreachableError(f"{url}: {exc or type(exc).__name__}") from exc
