"""`traceledger backup`, `restore` and `accept-fork`.

The backup is a pg_dump archive of the database (traceledger/backup.py); the log key and
the published checkpoint stay outside it (traceledger/published.py says why).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path

from gateway.cli.settings import real_reason, settings_from_args
from traceledger.errors import ConfigError
from traceledger.ledger import resolve_dsn
from traceledger.log.published import FORK_AUDIT_FILE, accept_fork
from traceledger.ops import backup
from traceledger.settings import Settings


def _where(settings: Settings) -> str:
    return (
        "the database at DATABASE_URL"
        if settings.database_url
        else f"the embedded PostgreSQL in {settings.pgdata}"
    )


async def _backup(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    snap = await backup.backup(await resolve_dsn(settings), args.file)
    checkpoint = "none" if snap.checkpoint_size is None else f"size {snap.checkpoint_size}"
    print(
        f"backed up {_where(settings)} to {args.file}: {snap.entries} entries, latest "
        f"checkpoint {checkpoint} (pg_dump {snap.tool.major}, {snap.tool.path})"
    )
    print(
        f"reminder: the log key {settings.log_key_file} is NOT in the backup. Keep a copy "
        "of it elsewhere, and secret: without it a restored log cannot sign checkpoints.",
        file=sys.stderr,
    )
    return 0


def cmd_backup(args: argparse.Namespace) -> int:
    return asyncio.run(_backup(args))


async def _restore(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    dsn = await resolve_dsn(settings)
    snap = await backup.restore(dsn, args.file, clean=args.force_clean)
    checkpoint = "none" if snap.checkpoint_size is None else f"size {snap.checkpoint_size}"
    print(
        f"restored {args.file} into {_where(settings)}: {snap.entries} entries, latest "
        f"checkpoint {checkpoint} (pg_restore {snap.tool.major})"
    )
    try:
        integrator, _ = await backup.fork_verdict(settings, dsn)
    except ConfigError as exc:
        print(f"warning: cannot check the restored log yet: {exc}", file=sys.stderr)
        return 1
    if integrator.fork_refusal is not None:
        print(f"WARNING: {integrator.fork_refusal}", file=sys.stderr)
        return 1
    print("the restored log extends the checkpoint it last published; it can be served")
    return 0


def cmd_restore(args: argparse.Namespace) -> int:
    return asyncio.run(_restore(args))


async def _accept_fork(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    dsn = await resolve_dsn(settings)
    integrator, last = await backup.fork_verdict(settings, dsn)
    store = integrator.published
    assert store is not None
    refusal = integrator.fork_refusal
    published = store.read()
    if refusal is None or published is None:
        print(
            "nothing to accept: the database's tree extends the published checkpoint "
            "(or none was published); the log signs normally",
            file=sys.stderr,
        )
        return 1
    archived = accept_fork(
        store,
        settings.forks_dir,
        published,
        refusal.tree_size,
        last.root_hash if last else None,
        args.reason,
    )
    print(
        f"accepted a fork: the checkpoint of size {published.size} is archived as {archived} "
        f"and the reason recorded in {settings.forks_dir / FORK_AUDIT_FILE}.\n"
        "The log will sign its database's tree from its next round (restart every "
        "traceledger process). Anyone holding the old checkpoint will see that the new "
        "ones do not extend it: tell them, with the reason."
    )
    return 0


def cmd_accept_fork(args: argparse.Namespace) -> int:
    return asyncio.run(_accept_fork(args))


def add_backup_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add `backup`, `restore` and `accept-fork` to the `traceledger` subcommands."""
    dump = sub.add_parser(
        "backup",
        help="dump the ledger database to a file (pg_dump custom format), while it serves",
        description="A consistent pg_dump snapshot of the whole database. The log key is "
        "not in it: back up the key file separately.",
    )
    dump.add_argument("file", type=Path, help="the archive to write (replaced atomically)")
    dump.set_defaults(func=cmd_backup)

    load = sub.add_parser(
        "restore",
        help="restore a backup into an empty database (stop the service first)",
        description="Restores in one transaction, then checks the restored log against the "
        "checkpoint it last published (home/published-checkpoint) and says whether it can "
        "be served or how to recover.",
    )
    load.add_argument("file", type=Path, help="an archive written by `traceledger backup`")
    load.add_argument(
        "--force-clean",
        action="store_true",
        help="drop everything in the target database first (refused while others use it)",
    )
    load.set_defaults(func=cmd_restore)

    fork = sub.add_parser(
        "accept-fork",
        help="last resort: give up the published checkpoint the database no longer extends",
        description="Only when the database cannot be brought back to the published "
        "checkpoint (no newer backup, no replica): archives that checkpoint under "
        "home/forks/, appends the reason to home/forks/accepted-forks.jsonl, and lets the "
        "log sign again. Everyone holding the old checkpoint will see a fork.",
    )
    fork.add_argument(
        "--reason", required=True, type=real_reason, help="why; recorded with the archive"
    )
    fork.set_defaults(func=cmd_accept_fork)
