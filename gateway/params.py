"""Reading requests: strict parameters (precise 400 problems), Digital Link paths, base URL."""

from __future__ import annotations

from aiohttp import web

from gateway.keys import SETTINGS
from gateway.problems import BAD_REQUEST, ProblemError
from traceledger.standards.gs1 import GS1Key, parse_digital_link
from traceledger.standards.gs1_ai import check_query_attributes

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
    """The GS1 key named by the Digital Link path between `prefix` and `suffix`; the AIs
    in its query string (data attributes such as ?17=271231) are checked as strictly."""
    path = raw_path_between(request, prefix, suffix).lstrip("/")
    key = parse_digital_link("https://id.gs1.org/" + path)
    if request.query_string:
        check_query_attributes(path.split("/")[0::2], list(request.query.items()))
    return key


def public_base(request: web.Request) -> str:
    """The configured public URL, else the scheme and host this request came in on."""
    return request.app[SETTINGS].public_url or f"{request.scheme}://{request.host}"
