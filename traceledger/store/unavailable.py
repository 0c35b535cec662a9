"""Which database failures pass by themselves: the server restarting, a failover, a
dropped connection. Callers retry those (HTTP answers a retriable 503); anything else is
a bug or bad data and is reported as such."""

from __future__ import annotations

import asyncpg

# SQLSTATE classes that describe the server's state, not the statement: connection
# exceptions (08), transaction rollback such as serialization failures and deadlocks (40),
# insufficient resources (53), operator intervention such as a shutdown or a cancel (57),
# and system errors such as I/O failures (58).
_TRANSIENT_CLASSES = frozenset({"08", "40", "53", "57", "58"})
# A read-only transaction: the session reached a standby, as during a failover.
_TRANSIENT_STATES = frozenset({"25006"})
# Operating system errors about files, not the network: a bug or the operator's setup.
_FILE_ERRORS = (
    FileNotFoundError,
    FileExistsError,
    IsADirectoryError,
    NotADirectoryError,
    PermissionError,
)


def database_unavailable(exc: BaseException) -> bool:
    """True when `exc` says the database cannot serve right now, not that a query is wrong.

    asyncpg's interface and internal client errors count: a pooled connection whose
    server session ended (a FATAL error sent to an idle session when the server shuts
    down or a failover starts) refuses its next statement with InternalClientError
    ("cannot switch to state 12; another operation (2) is in progress") until the pool
    notices the closed socket. Operating system errors count unless they are about files;
    the interface errors that are also ValueErrors (bad query arguments, a bad
    configuration) are ours to fix, not transient.
    """
    if isinstance(exc, _FILE_ERRORS) or (
        isinstance(exc, asyncpg.InterfaceError) and isinstance(exc, ValueError)
    ):
        return False
    if isinstance(exc, OSError | asyncpg.InterfaceError | asyncpg.InternalClientError):
        return True
    if isinstance(exc, asyncpg.PostgresError):
        state = exc.sqlstate or ""
        return state[:2] in _TRANSIENT_CLASSES or state in _TRANSIENT_STATES
    return False
