"""Reading requests: strict parameters (precise 400 problems), Digital Link paths, base URL."""

from __future__ import annotations

from aiohttp import web

from gateway.keys import SETTINGS
from gateway.problems import BAD_REQUEST, ProblemError
from traceledger.standards.gs1 import GS1Key, parse_digital_link

MAX_INDEX = 2**63 - 1


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
    """The GS1 key named by the Digital Link path between `prefix` and `suffix`."""
    path = raw_path_between(request, prefix, suffix).lstrip("/")
    return parse_digital_link("https://id.gs1.org/" + path)


def public_base(request: web.Request) -> str:
    """The configured public URL, else the scheme and host this request came in on."""
    return request.app[SETTINGS].public_url or f"{request.scheme}://{request.host}"


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
