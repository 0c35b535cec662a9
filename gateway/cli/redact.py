"""`traceledger redact INDEX FIELD --reason TEXT`: erase one field of a stored event."""

from __future__ import annotations

import argparse
import asyncio
import getpass

from gateway.cli.settings import real_reason, settings_from_args
from traceledger.errors import RedactionError
from traceledger.ledger import resolve_dsn
from traceledger.log.sequencer import Sequencer
from traceledger.ops.redaction import redact
from traceledger.store.pool import connect_pool


async def _redact(args: argparse.Namespace) -> int:
    pool = await connect_pool(await resolve_dsn(settings_from_args(args)), min_size=1, max_size=3)
    try:
        async with Sequencer(pool) as sequencer, pool.acquire() as conn:
            done = await redact(sequencer, conn, args.index, args.field, args.reason, args.by)
    except RedactionError as exc:
        print(f"traceledger redact: {exc}")
        return 1
    finally:
        await pool.close()
    print(
        f"entry {done.index}: {done.field} erased (its digest stays committed);"
        f" the redaction is log entry {done.record_index}"
    )
    return 0


def cmd_redact(args: argparse.Namespace) -> int:
    return asyncio.run(_redact(args))


def add_redact_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    erase = sub.add_parser(
        "redact",
        help="erase one field of a stored event (personal data, a court order)",
        description="Erases the field's value and salt from the stored event, the envelope "
        "it came in (whole) and the event index; the field's digest stays, so the entry "
        "and every proof keep verifying. The redaction is itself a log entry: who, when, why.",
    )
    erase.add_argument("index", type=int, help="the log index of the event")
    erase.add_argument("field", help="a top-level field of the event, e.g. ilmd or sourceList")
    erase.add_argument(
        "--reason", required=True, type=real_reason, help="why (logged; 10 characters or more)"
    )
    erase.add_argument("--by", default=getpass.getuser(), help="who (default: your user name)")
    erase.set_defaults(func=cmd_redact)
