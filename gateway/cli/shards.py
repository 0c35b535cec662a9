"""`traceledger rotate`: start a new time shard of the log (traceledger/rotation.py)."""

from __future__ import annotations

import argparse
import asyncio
import shlex
import sys

from gateway.cli.settings import settings_from_args
from traceledger.ops.rotation import rotate


def cmd_rotate(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    done = asyncio.run(rotate(settings, args.new_origin, args.new_database_url))
    print(
        f"froze the log {settings.origin!r} at its final checkpoint of size "
        f"{done.final_size}; created the log {done.origin!r} with the key {done.log_key}\n"
        f"its verifier key: {done.verifier_key}\n"
        + (
            f"the old log's published checkpoint moved to {done.archived_published}\n"
            if done.archived_published
            else ""
        )
        + "Run every traceledger process with these settings from now on:",
        file=sys.stderr,
    )
    for name, value in done.environment().items():
        print(f"{name}={shlex.quote(value)}")
    return 0


def add_rotate_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `rotate` subcommand to the `traceledger` parser's subcommands."""
    parser = sub.add_parser(
        "rotate",
        help="freeze the current log and start a new time shard (new origin, key, database)",
        description="Stop the ingest service first. Checks the current log's head is "
        "covered by its final signed checkpoint, creates the new database and log key "
        "(next to the current key), copies the enterprise registry and access tokens, "
        "and prints the settings to run with from now on (the current database becomes "
        "the first of TRACELEDGER_PAST_SHARDS).",
    )
    parser.add_argument(
        "--new-origin", required=True, help="the new log's origin, e.g. trace.example.org/log/2027"
    )
    parser.add_argument(
        "--new-database-url",
        required=True,
        help="DSN of the new log's database (created if it does not exist)",
    )
    parser.set_defaults(func=cmd_rotate)
