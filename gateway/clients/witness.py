"""The log's HTTP transport to witnesses (c2sp.org/tlog-witness add-checkpoint)."""

from __future__ import annotations

import aiohttp

from traceledger.errors import WitnessUnreachableError
from traceledger.log.cosigner import WitnessReply

_MAX_RESPONSE = 64 * 1024  # a few cosignature lines; anything bigger is not a witness


class HttpWitnessTransport:
    """One aiohttp session for every witness; use as an async context manager."""

    def __init__(self, *, timeout: float = 10.0) -> None:
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> HttpWitnessTransport:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def add_checkpoint(self, url: str, body: bytes) -> WitnessReply:
        assert self._session is not None, "use the transport as an async context manager"
        try:
            async with self._session.post(
                url + "/add-checkpoint",
                data=body,
                headers={"Content-Type": "text/plain; charset=utf-8"},
            ) as response:
                raw = await response.content.read(_MAX_RESPONSE)
                return WitnessReply(
                    response.status, response.content_type, raw.decode("utf-8", "replace")
                )
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise WitnessUnreachableError(f"{url}: {exc or type(exc).__name__}") from exc
