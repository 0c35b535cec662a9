"""Logs a person can read: short commands on a terminal get structlog's console renderer
and no routine start-up lines; services and pipes get JSON lines."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import pty
import signal
import subprocess
import sys
from pathlib import Path

import aiohttp
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from tests.conftest import ROOT, cli_args, poll, running_service
from traceledger.settings import Settings
from traceledger.store import schema


def on_terminal(args: list[str], env: dict[str, str] | None = None) -> str:
    """Run `traceledger ARGS` with a pseudo-terminal as stdout and stderr; its output."""
    leader, follower = pty.openpty()
    try:
        done = subprocess.run(
            [sys.executable, "-m", "gateway.cli", *args],
            stdin=subprocess.DEVNULL,
            stdout=follower,
            stderr=follower,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            timeout=120,
            check=False,
        )
    finally:
        os.close(follower)
    chunks = []
    with contextlib.suppress(OSError):  # EIO once everything written has been read
        while chunk := os.read(leader, 65536):
            chunks.append(chunk)
    os.close(leader)
    output = b"".join(chunks).decode(errors="replace")
    assert done.returncode == 0, output
    return output


def public_key_file(tmp_path: Path) -> Path:
    path = tmp_path / "acme.pub.pem"
    key = Ed25519PrivateKey.generate().public_key()
    path.write_bytes(key.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo))
    return path


def json_lines(text: str) -> list[dict[str, object]]:
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def test_a_short_command_on_a_terminal_prints_its_result_and_no_start_up_lines(
    settings: Settings, tmp_path: Path
) -> None:
    # A new database: the command applies every migration on the way.
    key = public_key_file(tmp_path)
    output = on_terminal(
        [*cli_args(settings), "enterprise", "add", "ACME", "--gcp", "0614141", "--key", str(key)]
    )
    lines = [line for line in output.splitlines() if line.strip()]
    assert lines[0] == "enterprise 1", output
    assert lines[1].startswith("key "), output
    assert len(lines) == 2, output


def test_verbose_logs_on_a_terminal_are_for_reading_not_json(settings: Settings) -> None:
    output = on_terminal(["-v", *cli_args(settings), "enterprise", "list"])
    logged = [line for line in output.splitlines() if "applied migration 0001_log.sql" in line]
    assert logged, output
    assert not logged[0].lstrip().startswith("{"), logged[0]
    assert "info" in logged[0]
    # Forced, any command writes JSON lines, even to a terminal.
    forced = on_terminal(
        ["-v", *cli_args(settings), "enterprise", "list"], {"TRACELEDGER_LOG_FORMAT": "json"}
    )
    assert any(line.startswith('{"') for line in forced.splitlines()), forced


def test_a_short_command_into_a_pipe_writes_only_its_result_and_json_when_verbose(
    settings: Settings,
) -> None:
    def run(*extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [
                sys.executable,
                "-m",
                "gateway.cli",
                *extra,
                *cli_args(settings),
                "enterprise",
                "list",
            ],
            capture_output=True,
            text=True,
            cwd=ROOT,
            timeout=120,
            check=True,
        )

    quiet = run()
    assert (quiet.stdout, quiet.stderr) == ("", "")
    verbose = run("-v")
    records = json_lines(verbose.stderr)
    latest = schema.migrations()[-1][0]
    assert any(r["event"] == f"schema up to date at version {latest}" for r in records), records


async def test_a_service_logs_json_lines_from_start_to_stop(
    settings: Settings, tmp_path: Path
) -> None:
    log = tmp_path / "service.log"
    async with running_service(settings, log_file=log) as (proc, base):
        headers = {"X-Request-ID": "logged-1"}
        async with (
            aiohttp.ClientSession() as http,
            http.get(base + "/healthz", headers=headers) as response,
        ):
            assert response.status == 200

            async def leading() -> bool:
                async with http.get(base + "/readyz") as ready:
                    body = await ready.json(content_type=None)
                    return bool(body["workers"]["integrator"]["state"] == "leading")

            await poll("the integrator leading", leading)
        proc.send_signal(signal.SIGTERM)
        assert await asyncio.wait_for(proc.wait(), 60) == 0
    records = json_lines(log.read_text())
    events = [str(r["event"]) for r in records]
    assert "applied migration 0001_log.sql" in events
    assert any(e.startswith("database pool traceledger-all open") for e in events), events
    assert "integrator: leading" in events
    access = [r for r in records if r["event"] == "request" and r["request_id"] == "logged-1"]
    assert [(r["route"], r["status"]) for r in access] == [("/healthz", 200)]
