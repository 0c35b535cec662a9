"""Reading requests: strict parameters (precise 400 problems), Digital Link paths, base URL."""

from __future__ import annotations

import asyncio

from aiohttp import web

from gateway.keys import SETTINGS
from gateway.problems import BAD_REQUEST, BUSY, PAYLOAD_TOO_LARGE, REQUEST_TIMEOUT, ProblemError
from traceledger.standards.gs1 import GS1Key, parse_digital_link
from traceledger.standards.gs1_ai import check_query_attributes

MAX_INDEX = 2**63 - 1
# The longest Digital Link path we parse. A key with every qualifier and a few data
# attributes fits in a few hundred characters (and a QR code holds little more); anything
# longer is refused before parsing, whatever its shape.
MAX_DIGITAL_LINK_PATH = 1024


def parse_int(raw: str | None, name: str) -> int:
    if raw is None:
        raise ProblemError(BAD_REQUEST, f"query parameter {name!r} is required", parameter=name)
    if not raw.isdigit() or (len(raw) > 1 and raw[0] == "0") or len(raw) > 19:
        raise ProblemError(
            BAD_REQUEST,
            f"{name} must be a non-negative decimal integer, got {raw!r}",
            parameter=name,
        )
    value = int(raw)
    if value > MAX_INDEX:
        raise ProblemError(BAD_REQUEST, f"{name} is too large", parameter=name)
    return value


def query_int(request: web.Request, name: str) -> int:
    return parse_int(request.query.get(name), name)


def raw_path_between(request: web.Request, prefix: str = "", suffix: str = "") -> str:
    """The undecoded path between `prefix` and `suffix`: percent-encoding kept, so a lot
    "A/B" (sent as A%2FB) stays one value."""
    return request.raw_path.split("?", 1)[0].removeprefix(prefix).removesuffix(suffix)


def digital_link_key(request: web.Request, prefix: str = "", suffix: str = "") -> GS1Key:
    """The GS1 key named by the Digital Link path between `prefix` and `suffix`; the AIs
    in its query string (data attributes such as ?17=271231) are checked as strictly."""
    path = raw_path_between(request, prefix, suffix).lstrip("/")
    if len(path) > MAX_DIGITAL_LINK_PATH:
        raise ProblemError(
            BAD_REQUEST,
            f"the Digital Link path is {len(path)} characters; at most "
            f"{MAX_DIGITAL_LINK_PATH} are accepted",
        )
    key = parse_digital_link("https://id.gs1.org/" + path)
    if request.query_string:
        check_query_attributes(path.split("/")[0::2], list(request.query.items()))
    return key


def public_base(request: web.Request) -> str:
    """The configured public URL, else the scheme and host this request came in on."""
    return request.app[SETTINGS].public_url or f"{request.scheme}://{request.host}"


class BodyBudget:
    """Bytes of request bodies being buffered right now, across every request.

    A body is reserved (its declared length at once, otherwise chunk by chunk) while it
    arrives and released once read: past the limit a request is refused with 503 before
    more of it is read, so slow or abandoned uploads cannot exhaust memory."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.used = 0

    def take(self, size: int) -> None:
        if self.used + size > self.limit:
            raise ProblemError(
                BUSY,
                "too many request bodies are arriving at once; retry shortly",
                {"Retry-After": "1"},
            )
        self.used += size


BODY_BUDGET = web.AppKey("body_budget", BodyBudget)


async def read_limited(request: web.Request, limit: int) -> bytes:
    """The body, refusing anything over `limit` without reading it all, any body that
    takes longer than the body deadline (408), and bodies past the shared budget (503)."""
    declared = request.content_length
    if declared is not None and declared > limit:
        raise ProblemError(PAYLOAD_TOO_LARGE, f"the body is {declared} bytes; the limit is {limit}")
    budget, deadline = request.app[BODY_BUDGET], request.app[SETTINGS].body_deadline
    reserved = 0
    try:
        if declared is not None:
            budget.take(declared)
            reserved = declared
        body = bytearray()
        async with asyncio.timeout(deadline):
            async for chunk in request.content.iter_chunked(64 * 1024):
                body += chunk
                if len(body) > limit:
                    raise ProblemError(
                        PAYLOAD_TOO_LARGE, f"the body exceeds the limit of {limit} bytes"
                    )
                if len(body) > reserved:
                    budget.take(len(body) - reserved)
                    reserved = len(body)
        return bytes(body)
    except TimeoutError as exc:
        raise ProblemError(
            REQUEST_TIMEOUT, f"the body did not arrive within {deadline:g} seconds"
        ) from exc
    finally:
        budget.used -= reserved


def client_address(request: web.Request) -> str:
    """The address of whoever sent the request: the peer, or behind a trusted reverse
    proxy (TRACELEDGER_TRUSTED_PROXIES) the nearest untrusted X-Forwarded-For hop."""
    trusted = request.app[SETTINGS].trusted_proxies
    peer = request.remote or ""
    if peer not in trusted:
        return peer
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",")]
    for hop in reversed(hops):
        if hop and hop not in trusted:
            return hop
    return peer
