"""Settings from the `traceledger` command line's global options and the environment,
and argument types the subcommands share.

Its own module because the subcommand modules (backup, rotate, redact) need it and the
main CLI module imports them.
"""

from __future__ import annotations

import argparse

from traceledger.settings import Settings


def settings_from_args(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        home=args.home,
        database_url=args.database_url,
        read_database_url=args.read_database_url,
        role=getattr(args, "service_role", None),  # `token add --role` is another thing
        origin=args.origin,
        log_key_path=args.log_key,
        past_shards=tuple(args.past_shard) if args.past_shard else None,
    )


MIN_REASON = 10


def real_reason(text: str) -> str:
    """An argparse type for `--reason` of commands that leave a record (accept-fork,
    redact): a few characters are not a reason. Refused with exit status 2."""
    if len(text.strip()) < MIN_REASON:
        raise argparse.ArgumentTypeError(f"give a real reason ({MIN_REASON} characters or more)")
    return text
