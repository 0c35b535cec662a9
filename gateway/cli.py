"""The `traceledger` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from aiohttp import web

from gateway.app import create_app
from gateway.demo import load_demo
from traceledger import db
from traceledger.errors import IntegrityError, TraceledgerError
from traceledger.ledger import resolve_dsn
from traceledger.logkey import load_or_create_log_key
from traceledger.note import Signer, Verifier
from traceledger.settings import Settings
from traceledger.verify import verify_log


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(
        home=args.home,
        database_url=args.database_url,
        origin=args.origin,
        log_key_path=args.log_key,
    )


def cmd_serve(args: argparse.Namespace) -> int:
    settings = _settings(args)
    app = create_app(settings)
    if args.command == "demo":
        app.on_startup.append(load_demo)
    where = (settings.database_url and "the PostgreSQL at DATABASE_URL") or (
        f"the embedded PostgreSQL in {settings.pgdata}"
    )
    base = f"http://{args.host}:{args.port}"
    banner = (
        f"traceledger: log {settings.origin!r} on {where}\n"
        f"  log info     {base}/v1/log\n"
        f"  checkpoint   {base}/checkpoint\n"
        f"  an entry     {base}/v1/entries/0\n"
        f"  its proof    {base}/v1/proof/inclusion?index=0&treeSize=<treeSize from /v1/log>\n"
        f"  tiles        {base}/tile/0/000 (C2SP tlog-tiles, for stock auditors)\n"
        f"  audit        traceledger verify   (recomputes the whole log)\n"
        "  (Ctrl-C stops; the final checkpoint is signed on the way out)"
    )
    web.run_app(
        app,
        host=args.host,
        port=args.port,
        print=lambda _: print(banner),
        handle_signals=True,
    )
    return 0


def cmd_log_key(args: argparse.Namespace) -> int:
    settings = _settings(args)
    signer = Signer(settings.origin, load_or_create_log_key(settings.log_key_file))
    print(signer.verifier.encode())
    return 0


class _ProgressPrinter:
    """Progress on stderr: a live line on a terminal, a line every few seconds otherwise."""

    def __init__(self) -> None:
        self.started = time.perf_counter()
        self.last = 0.0
        self.tty = sys.stderr.isatty()

    def __call__(self, done: int, total: int) -> None:
        now = time.perf_counter()
        if not self.tty and now - self.last < 5:
            return
        self.last = now
        rate = done / max(now - self.started, 1e-9)
        pct = 100 * done / total if total else 100.0
        end = "\r" if self.tty else "\n"
        print(
            f"verified {done:,} / {total:,} entries ({pct:.0f}%, {rate:,.0f}/s)",
            end=end,
            file=sys.stderr,
            flush=True,
        )


async def _verify(settings: Settings, trusted: Verifier | None) -> int:
    pool = await db.connect_pool(await resolve_dsn(settings), min_size=1, max_size=2)
    try:
        report = await verify_log(pool, trusted=trusted, progress=_ProgressPrinter())
    except IntegrityError as exc:
        print(f"\nFAILED at {exc}", file=sys.stderr)
        if exc.index is not None:
            print(f"first bad index: {exc.index}")
        return 1
    finally:
        await pool.close()
    rate = report.entries / report.seconds if report.seconds else 0.0
    print(
        f"\nOK: {report.entries} entries, {report.checkpoints} checkpoints, "
        f"{report.envelopes} envelopes verified in {report.seconds:.2f}s ({rate:,.0f} entries/s)"
        + (f"; {report.redacted} payloads redacted" if report.redacted else "")
    )
    return 0


def cmd_verify(args: argparse.Namespace) -> int:
    trusted = Verifier.parse(args.key) if args.key else None
    return asyncio.run(_verify(_settings(args), trusted))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="traceledger", description="Product traceability event ledger."
    )
    parser.add_argument("--home", type=Path, help="data folder (env TRACELEDGER_HOME)")
    parser.add_argument(
        "--database-url",
        help="PostgreSQL DSN (env DATABASE_URL); default: embedded PostgreSQL in the home folder",
    )
    parser.add_argument("--origin", help="log origin (env TRACELEDGER_ORIGIN)")
    parser.add_argument(
        "--log-key", type=Path, help="log signing key file (env TRACELEDGER_LOG_KEY)"
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.set_defaults(func=cmd_serve)

    demo = sub.add_parser("demo", help="serve with demo data loaded (what the quick start runs)")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8080)
    demo.set_defaults(func=cmd_serve)

    verify = sub.add_parser("verify", help="recompute and check the whole stored log")
    verify.add_argument("--key", help="trusted verifier key (default: the key stored with the log)")
    verify.set_defaults(func=cmd_verify)

    log_key = sub.add_parser("log-key", help="print the log's verifier key")
    log_key.set_defaults(func=cmd_log_key)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    try:
        code: int = args.func(args)
    except TraceledgerError as exc:
        print(f"traceledger: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
