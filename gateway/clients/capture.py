"""A small client for systems that push events from Python.

    async with CaptureClient("https://ledger.example", load_private_key("me.pem")) as client:
        receipt = await client.push(document)   # dict, or the JSON bytes of an EPCIS document

Documents are signed as DSSE envelopes (Ed25519). Retries with backoff on 429, 503 and
connection errors, honouring Retry-After; a replay after a lost response is safe
because the ledger answers an identical envelope with the original receipt.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from traceledger.errors import CaptureRejectedError
from traceledger.standards.dsse import sign_document

RETRY_STATUSES = frozenset({429, 502, 503, 504})


class CaptureClient:
    def __init__(
        self,
        base_url: str,
        key: Ed25519PrivateKey,
        *,
        retries: int = 6,
        as_msgpack: bool = False,
        timeout: float = 60.0,
    ) -> None:
        self._url = base_url.rstrip("/") + "/v1/capture"
        self._key = key
        self._retries = retries
        self._as_msgpack = as_msgpack
        self._timeout = aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> CaptureClient:
        self._session = aiohttp.ClientSession(timeout=self._timeout)
        return self

    async def __aexit__(self, *exc: object) -> None:
        if self._session is not None:
            await self._session.close()

    async def push(
        self, document: Mapping[str, Any] | bytes, payload_type: str = "application/ld+json"
    ) -> dict[str, Any]:
        """Sign and send one document (EPCIS XML: bytes with payload_type application/xml);
        the receipt (201 new, or 200 replayed)."""
        assert self._session is not None, "use 'async with CaptureClient(...)'"
        body, content_type = sign_document(
            document, self._key, as_msgpack=self._as_msgpack, payload_type=payload_type
        )
        delay = 0.5
        for attempt in range(self._retries + 1):
            try:
                async with self._session.post(
                    self._url, data=body, headers={"Content-Type": content_type}
                ) as response:
                    answer = await response.json(content_type=None)
                    if response.status in (200, 201):
                        result: dict[str, Any] = answer
                        return result
                    if response.status not in RETRY_STATUSES or attempt == self._retries:
                        raise CaptureRejectedError(response.status, answer)
                    wait = float(response.headers.get("Retry-After", delay))
            except (aiohttp.ClientConnectionError, TimeoutError):
                if attempt == self._retries:
                    raise
                wait = delay
            await asyncio.sleep(wait)
            delay = min(delay * 2, 30.0)
        raise AssertionError("unreachable")
