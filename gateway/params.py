"""Strict parsing of path and query parameters into precise 400 problems."""

from __future__ import annotations

from aiohttp import web

from gateway.problems import BAD_REQUEST, ProblemError

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
