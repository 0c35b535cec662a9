"""Settings from the `traceledger` command line's global options and the environment.

Its own module because the subcommand modules (backup, rotate) need it and the main
CLI module imports them.
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
