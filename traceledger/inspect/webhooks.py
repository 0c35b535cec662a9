"""Webhooks: how the ledger pushes subscription results and recall notices.

The core speaks no HTTP: the notifier is handed a `WebhookTransport` (the gateway's is
`gateway.clients.webhook.HttpWebhookTransport`). Every delivery is a POST of a JSON body
signed with the receiver's own secret (a subscription's `signatureToken`, a recall
endpoint's secret): `GS1-Signature: sha256=<hex HMAC-SHA256(secret, body)>`, the header
the EPCIS 2.0 REST binding names, with the HMAC it suggests. A 2xx answer is success;
anything else is retried after an exponentially growing delay, and an endpoint that
fails too many times in a row is suspended.
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
from collections.abc import Mapping
from typing import Protocol
from urllib.parse import urlsplit

__all__ = [
    "SIGNATURE_HEADER",
    "WebhookTransport",
    "check_webhook_url",
    "retry_delay",
    "sign",
    "signature_valid",
]

SIGNATURE_HEADER = "GS1-Signature"
MAX_URL = 2048
_LOOPBACK_NAMES = frozenset({"localhost", "localhost.localdomain"})


class WebhookTransport(Protocol):
    """How deliveries reach receivers (HTTP in gateway.clients.webhook).

    Returns the HTTP status; raises WebhookUnreachableError when no answer came (refused,
    timed out, TLS failure). Redirects are not followed."""

    async def post(self, url: str, body: bytes, headers: Mapping[str, str]) -> int: ...


def sign(secret: str, body: bytes) -> str:
    """The GS1-Signature header value for `body` under `secret`."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def signature_valid(secret: str, body: bytes, header: str | None) -> bool:
    """What a receiver checks (constant time)."""
    return header is not None and hmac.compare_digest(header.encode(), sign(secret, body).encode())


def delivery_headers(secret: str | None, body: bytes) -> dict[str, str]:
    headers = {"Content-Type": "application/json"}
    if secret:
        headers[SIGNATURE_HEADER] = sign(secret, body)
    return headers


def retry_delay(failures: int, base: float, cap: float) -> float:
    """Seconds before the next attempt after `failures` failed ones in a row."""
    return float(min(cap, base * 2 ** min(max(failures - 1, 0), 60)))


def _loopback(host: str) -> bool:
    if host.lower() in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_webhook_url(url: object) -> str:
    """A URL deliveries may go to, else ValueError saying why: https anywhere, plain http
    only to this machine (a test or demo receiver), no credentials in the URL."""
    if not isinstance(url, str) or not url or len(url) > MAX_URL:
        raise ValueError(f"a webhook URL is a string of at most {MAX_URL} characters")
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        parts.port  # noqa: B018 - raises ValueError for a bad port
    except ValueError as exc:
        raise ValueError(f"{url[:100]!r} is not a URL: {exc}") from exc
    if parts.scheme not in ("https", "http") or not host:
        raise ValueError(f"{url[:100]!r} must be an https:// URL")
    if parts.username is not None or parts.password is not None:
        raise ValueError("a webhook URL must not carry credentials; use the signature token")
    if parts.scheme == "http" and not _loopback(host):
        raise ValueError(
            f"{url[:100]!r}: plain http is only for receivers on this machine; use https"
        )
    return url
