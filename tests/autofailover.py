"""A pg_auto_failover formation on loopback ports for tests: a monitor and two data nodes
with synchronous replication, run by `pg_autoctl` as an unprivileged user.

pg_autoctl refuses to run as root; as root the formation runs as the `postgres` user
(created by Debian's PostgreSQL packages), otherwise as whoever runs the tests. The
monitor's health checks are tightened so a lost primary is noticed within seconds (the
defaults take about a minute; docs/operations.md says what to use in production).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import pwd
import shutil
import signal
import subprocess
import tempfile
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import psutil

from tests.conftest import free_port, poll
from traceledger.store.embedded import server_processes

DATABASE = "traceledger"
MONITOR_DATABASE = "pg_auto_failover"
# The monitor notices a lost node after a 1 s health check with one retry, calls it
# unhealthy after 2 s, and waits 3 s for an unreachable primary to demote itself.
MONITOR_SETTINGS = {
    "pgautofailover.health_check_period": "1000",
    "pgautofailover.health_check_timeout": "1000",
    "pgautofailover.health_check_max_retries": "1",
    "pgautofailover.health_check_retry_delay": "200",
    "pgautofailover.node_considered_unhealthy_timeout": "2000",
    "pgautofailover.primary_demote_timeout": "3000",
}
WRITABLE_STATES = ("single", "wait_primary", "primary")


def pg_ctl_with_extension() -> Path | None:
    """pg_ctl of a PostgreSQL whose pgautofailover extension is installed (Debian layout)."""
    for control in sorted(Path("/usr/share/postgresql").glob("*/extension/pgautofailover.control")):
        pg_ctl = Path("/usr/lib/postgresql") / control.parent.parent.name / "bin" / "pg_ctl"
        if pg_ctl.exists():
            return pg_ctl
    return None


def missing() -> str | None:
    """Why a formation cannot run here, or None."""
    if shutil.which("pg_autoctl") is None:
        return "pg_autoctl is not installed (Debian package pg-auto-failover-cli)"
    if pg_ctl_with_extension() is None:
        return "no pgautofailover extension (Debian package postgresql-15-auto-failover)"
    if os.geteuid() == 0:
        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root, and there is no postgres user to run pg_autoctl as"
    return None


@dataclass
class Node:
    name: str
    port: int
    pgdata: Path
    process: subprocess.Popen[bytes] | None = None

    def postmaster_pid(self) -> int:
        return int((self.pgdata / "postmaster.pid").read_text().split("\n", 1)[0])


@dataclass
class Formation:
    folder: Path
    user: pwd.struct_passwd
    pg_ctl: Path
    monitor: Node
    nodes: list[Node]
    logs: list[Path] = field(default_factory=list)

    @property
    def dsn(self) -> str:
        """What the ledger connects with: both nodes, whichever is writable."""
        hosts = ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)
        return (
            f"postgresql://{self.user.pw_name}@{hosts}/{DATABASE}?target_session_attrs=read-write"
        )

    def node_dsn(self, node: Node, database: str = DATABASE) -> str:
        return f"postgresql://{self.user.pw_name}@127.0.0.1:{node.port}/{database}"

    def log_tail(self) -> str:
        return "\n".join(
            f"--- {log.name}\n{log.read_text(errors='replace')[-3000:]}"
            for log in self.logs
            if log.exists()
        )

    def _env(self) -> dict[str, str]:
        home = str(self.folder)
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": home,
            "XDG_CONFIG_HOME": f"{home}/config",
            "XDG_DATA_HOME": f"{home}/data",
            "XDG_RUNTIME_DIR": f"{home}/run",
        }

    def _popen(self, args: list[str], log: Path) -> subprocess.Popen[bytes]:
        self.logs.append(log)
        as_user = os.geteuid() == 0
        with log.open("ab") as out:
            return subprocess.Popen(
                ["pg_autoctl", *args],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self._env(),
                cwd=self.folder,
                # Its own process group: a node is killed whole, like a machine.
                start_new_session=True,
                user=self.user.pw_uid if as_user else None,
                group=self.user.pw_gid if as_user else None,
                extra_groups=[] if as_user else None,
            )

    async def _create(self, node: Node, *args: str) -> None:
        command = [
            "create",
            *args,
            "--pgdata",
            str(node.pgdata),
            "--pgport",
            str(node.port),
            "--hostname",
            "127.0.0.1",
            "--auth",
            "trust",
            "--no-ssl",
            "--pgctl",
            str(self.pg_ctl),
        ]
        proc = self._popen(command, self.folder / f"create-{node.name}.log")
        code = await asyncio.to_thread(proc.wait, 120)
        if code != 0:
            raise RuntimeError(f"pg_autoctl create {args[0]} failed ({code}):\n{self.log_tail()}")

    def _run(self, node: Node) -> None:
        node.process = self._popen(
            ["run", "--pgdata", str(node.pgdata)], self.folder / f"{node.name}.log"
        )

    async def states(self) -> dict[int, tuple[str, str]]:
        """Each data node's (reported, assigned) state, by port, as the monitor has them."""
        conn = await asyncpg.connect(self.node_dsn(self.monitor, MONITOR_DATABASE), timeout=5)
        try:
            rows = await conn.fetch(
                "SELECT nodeport, reportedstate::text, goalstate::text FROM pgautofailover.node"
            )
        finally:
            await conn.close()
        return {r["nodeport"]: (r["reportedstate"], r["goalstate"]) for r in rows}

    async def wait_for(self, what: str, want: dict[int, tuple[str, ...]], within: float) -> None:
        """Until every node in `want` reports (and is assigned) one of its states."""

        async def reached() -> bool:
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                states = await self.states()
                return all(
                    port in states and states[port][0] in ok and states[port][1] in ok
                    for port, ok in want.items()
                )
            return False

        try:
            await poll(what, reached, within)
        except TimeoutError as exc:
            raise TimeoutError(f"{exc}\n{self.log_tail()}") from None

    async def start(self) -> None:
        await self._create(self.monitor, "monitor")
        self._run(self.monitor)

        async def monitor_up() -> bool:
            with contextlib.suppress(OSError, asyncpg.PostgresError):
                await (await asyncpg.connect(self.node_dsn(self.monitor, "postgres"))).close()
                return True
            return False

        await poll("the monitor", monitor_up, 60)
        conn = await asyncpg.connect(self.node_dsn(self.monitor, MONITOR_DATABASE))
        try:
            for name, value in MONITOR_SETTINGS.items():
                await conn.execute(f"ALTER SYSTEM SET {name} = {value}")
            await conn.execute("SELECT pg_reload_conf()")
        finally:
            await conn.close()
        monitor_uri = f"postgres://autoctl_node@127.0.0.1:{self.monitor.port}/{MONITOR_DATABASE}"
        first, second = self.nodes
        node_args = ("postgres", "--dbname", DATABASE, "--listen", "127.0.0.1")
        await self._create(first, *node_args, "--monitor", monitor_uri)
        self._run(first)
        await self.wait_for("a single primary", {first.port: WRITABLE_STATES}, 60)
        await self._create(second, *node_args, "--monitor", monitor_uri)
        self._run(second)
        await self.wait_for(
            "a primary with a synchronous standby",
            {first.port: ("primary",), second.port: ("secondary",)},
            90,
        )

    def kill(self, node: Node) -> None:
        """kill -9 the node's postgres, then its pg_autoctl (which would restart it): as
        if its machine died."""
        os.kill(node.postmaster_pid(), signal.SIGKILL)
        assert node.process is not None
        with contextlib.suppress(ProcessLookupError):
            os.killpg(node.process.pid, signal.SIGKILL)
        node.process.wait()
        # Its backends too, wherever they are: none may finish a commit after this.
        left = server_processes(node.pgdata)
        for proc in left:
            with contextlib.suppress(Exception):
                proc.kill()
        psutil.wait_procs(left, timeout=30)

    def stop(self) -> None:
        """Stop every node still running (SIGTERM: pg_autoctl stops its postgres), then
        kill whatever did not stop in time and anything left in the data folders."""
        running = [n for n in (*self.nodes, self.monitor) if n.process is not None]
        for node in running:
            assert node.process is not None
            with contextlib.suppress(ProcessLookupError):
                os.killpg(node.process.pid, signal.SIGTERM)
        for node in running:
            assert node.process is not None
            try:
                node.process.wait(30)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(node.process.pid, signal.SIGKILL)
                node.process.wait()
        for node in (*self.nodes, self.monitor):
            for proc in server_processes(node.pgdata):
                with contextlib.suppress(Exception):
                    proc.kill()


@contextlib.asynccontextmanager
async def formation() -> AsyncIterator[Formation]:
    """A running formation; every process it started is stopped on the way out."""
    pg_ctl = pg_ctl_with_extension()
    assert pg_ctl is not None
    user = pwd.getpwnam("postgres") if os.geteuid() == 0 else pwd.getpwuid(os.geteuid())
    folder = Path(tempfile.mkdtemp(prefix="tl-failover-"))
    os.chown(folder, user.pw_uid, user.pw_gid)
    ports = [free_port() for _ in range(3)]
    nodes = [Node(f"node{i}", port, folder / f"node{i}") for i, port in enumerate(ports[1:], 1)]
    found = Formation(folder, user, pg_ctl, Node("monitor", ports[0], folder / "monitor"), nodes)
    try:
        await found.start()
        yield found
    finally:
        await asyncio.to_thread(found.stop)
        shutil.rmtree(folder, ignore_errors=True)
