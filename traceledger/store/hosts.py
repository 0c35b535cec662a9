"""Connecting through a multi-host DSN, one host at a time.

asyncpg tries the hosts of `postgresql://u@h1:p1,h2:p2/db?target_session_attrs=read-write`
in order under one timeout for all of them (60 s). When a primary's machine dies without
a word (packets dropped, no refusal), the attempt on it uses up that whole budget, the
next host is never tried, and the ledger never reaches the promoted standby. So a pool
with several hosts connects to each on its own, with its own timeout, and starts with
the host that last worked: after a failover only the first new connection pays for the
dead one.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

# Seconds one host may take to accept a connection (TCP, TLS, authentication, and the
# read-write check) before the next is tried.
HOST_TIMEOUT = 5.0


def split_hosts(dsn: str) -> list[str]:
    """One DSN per host of a multi-host URI, in the URI's order; [dsn] for anything else
    (one host, a host list in the query string, a key=value string)."""
    parts = urlsplit(dsn)
    if parts.scheme not in ("postgres", "postgresql"):
        return [dsn]
    user, at, hosts = parts.netloc.rpartition("@")
    if "," not in hosts:
        return [dsn]
    return [urlunsplit(parts._replace(netloc=f"{user}{at}{host}")) for host in hosts.split(",")]


class HostByHost:
    """asyncpg's `connect` for a pool: each host with its own timeout, the last good first."""

    def __init__(self, dsns: list[str], timeout: float = HOST_TIMEOUT) -> None:
        self._dsns = dsns
        self._timeout = timeout
        self._last_good = 0

    async def __call__(self, dsn: str | None = None, **kwargs: Any) -> asyncpg.Connection:
        """Called by the pool with its own DSN (all hosts, ignored) and the connection
        arguments."""
        order = [self._last_good] + [i for i in range(len(self._dsns)) if i != self._last_good]
        failures: list[Exception] = []
        for i in order:
            try:
                conn: asyncpg.Connection = await asyncpg.connect(
                    self._dsns[i], **{**kwargs, "timeout": self._timeout}
                )
            except (
                OSError,  # refused, unreachable, or the timeout
                asyncpg.PostgresError,  # starting up, shutting down, too many connections
                asyncpg.InterfaceError,
                asyncpg.InternalClientError,  # not read-write (target_session_attrs)
            ) as exc:
                failures.append(exc)
                continue
            self._last_good = i
            return conn
        last = failures[-1]
        for i, failure in zip(order, failures, strict=True):
            last.add_note(f"host {i + 1} of {len(self._dsns)}: {type(failure).__name__}: {failure}")
        raise last
