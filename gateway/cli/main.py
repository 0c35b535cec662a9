"""The `traceledger` command line."""

from __future__ import annotations

import argparse
import asyncio
import logging
import os
import sys
import time
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path

import aiohttp
import asyncpg
from aiohttp import web
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
)

from gateway.app import create_app
from gateway.cli.backup import add_backup_parser
from gateway.cli.qr import add_qr_parser
from gateway.cli.redact import add_redact_parser
from gateway.cli.settings import settings_from_args
from gateway.cli.shards import add_rotate_parser
from gateway.cli.witness import add_witness_parser
from gateway.clients.capture import CaptureClient
from gateway.demo import demo_inbox, setup_demo
from gateway.observability import configure_logging
from traceledger.accounts import registry, tokens
from traceledger.audit.history_check import verify_history
from traceledger.audit.index_check import verify_index
from traceledger.audit.verify import stored_verifier, verify_log
from traceledger.errors import CaptureRejectedError, ConfigError, IntegrityError, TraceledgerError
from traceledger.ingest.masterdata import add_location
from traceledger.inspect.recall_notices import remove_endpoint, set_endpoint
from traceledger.ledger import resolve_dsn
from traceledger.log.cosigned import log_reader
from traceledger.log.logkey import load_or_create_log_key
from traceledger.log.sequencer import Sequencer
from traceledger.log.shards import open_past_shards
from traceledger.lookup.history import HistoryService
from traceledger.lookup.prebuilt_check import check_prebuilt
from traceledger.settings import ROLES, Settings
from traceledger.standards.dsse import keyid, load_private_key, load_public_key_pem
from traceledger.store.conn import Conn
from traceledger.store.pool import connect_pool
from traceledger.tlog.note import Signer, Verifier


def cmd_serve(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
    app = create_app(settings)
    if args.command == "demo":
        setup_demo(
            app,
            settings.public_url or f"http://{args.host}:{args.port}",
            demo_inbox(args.host, args.port),
        )
    where = (settings.database_url and "the PostgreSQL at DATABASE_URL") or (
        f"the embedded PostgreSQL in {settings.pgdata}"
    )
    if settings.read_database_url:
        where += ", reading from READ_DATABASE_URL"
    base = f"http://{args.host}:{args.port}"
    banner = (
        f"traceledger ({settings.role}): log {settings.origin!r} on {where}\n"
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
        # The observability middleware writes the access log (JSON, with the request id).
        access_log=None,
    )
    return 0


def cmd_log_key(args: argparse.Namespace) -> int:
    settings = settings_from_args(args)
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
    pool = await connect_pool(await resolve_dsn(settings), min_size=1, max_size=2)
    try:
        report = await verify_log(pool, trusted=trusted, progress=_ProgressPrinter())
        derived = await _verify_derived(settings, pool)
    except IntegrityError as exc:
        print(f"\nFAILED at {exc}", file=sys.stderr)
        if exc.index is not None:
            print(f"first bad index: {exc.index}")
        return 1
    finally:
        await pool.close()
    rate = report.entries / report.seconds if report.seconds else 0.0
    print(
        f"\nlog OK: {report.entries} entries, {report.checkpoints} checkpoints, "
        f"{report.envelopes} envelopes verified in {report.seconds:.2f}s ({rate:,.0f} entries/s)"
        + (f"; {report.redacted} payloads redacted" if report.redacted else "")
    )
    if derived:
        print(f"FAILED: {len(derived)} difference(s) between the log and what is built from it:")
        for line in derived:
            print(f"  {line}")
        return 1
    print("OK")
    return 0


async def _verify_derived(settings: Settings, pool: asyncpg.Pool) -> list[str]:
    """What is built from the log and read as if it were the log: the event-key index and
    the prebuilt answers, each rebuilt from the log and compared."""
    index = await verify_index(pool)
    print(f"index: {index.events} events match their stored payloads", file=sys.stderr)
    async with pool.acquire() as conn:
        verifier = await stored_verifier(conn)
    async with open_past_shards(settings.past_shards, settings.origin, pool_max=2) as past:
        service = HistoryService(
            pool,
            log_reader(pool, settings.witness_policy),
            verifier_key=verifier.encode(),
            origin=verifier.name,
            past=past,
        )
        prebuilt = await check_prebuilt(pool, service)
    print(
        f"prebuilt answers: {prebuilt.checked} assembled again and compared"
        f" ({prebuilt.stale} stale ones are rebuilt before they are served)",
        file=sys.stderr,
    )
    extra = index.count - len(index.differences)
    return (
        index.differences
        + ([f"... and {extra} more index differences"] if extra > 0 else [])
        + prebuilt.differences
    )


def cmd_verify(args: argparse.Namespace) -> int:
    trusted = Verifier.parse(args.key) if args.key else None
    return asyncio.run(_verify(settings_from_args(args), trusted))


async def _on_pool(settings: Settings, work: Callable[[Conn], Awaitable[int]]) -> int:
    pool = await connect_pool(await resolve_dsn(settings), min_size=1, max_size=2)
    try:
        async with pool.acquire() as conn:
            return await work(conn)
    finally:
        await pool.close()


def _read_public_key(path: Path) -> Ed25519PublicKey:
    try:
        return load_public_key_pem(path.read_bytes())
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc}") from exc


def cmd_enterprise_add(args: argparse.Namespace) -> int:
    key = _read_public_key(args.key)

    async def work(conn: Conn) -> int:
        ent_id, key_id = await registry.add_enterprise(
            conn, args.name, args.gcp, key, role=args.role, rate_limit=args.rate_limit
        )
        print(f"enterprise {ent_id}\nkey {key_id}")
        return 0

    return asyncio.run(_on_pool(settings_from_args(args), work))


def cmd_enterprise_list(args: argparse.Namespace) -> int:
    async def work(conn: Conn) -> int:
        for e in await registry.list_enterprises(conn):
            rate = f"{e.rate_limit:g}/s" if e.rate_limit else "unlimited"
            print(f"{e.id:>4}  {e.name}  [{e.role}]  gcp {','.join(e.prefixes)}  {rate}")
            if e.delegated_prefixes:
                print(f"        delegated gcp {','.join(e.delegated_prefixes)}")
            for key_id, revoked in e.keys:
                state = f"revoked {revoked:%Y-%m-%d %H:%M}" if revoked else "active"
                print(f"        key {key_id}  {state}")
        return 0

    return asyncio.run(_on_pool(settings_from_args(args), work))


def cmd_enterprise_delegate(args: argparse.Namespace) -> int:
    async def work(conn: Conn) -> int:
        d = await registry.delegate(conn, args.owner, args.to, args.gcp)
        scope = f"prefix {d.gcp}" if d.gcp else f"all its prefixes (now {', '.join(d.prefixes)})"
        print(
            f"enterprise {d.delegate_id} may create goods of enterprise {d.owner_id} under {scope}"
        )
        return 0

    return asyncio.run(_on_pool(settings_from_args(args), work))


def cmd_enterprise_notify(args: argparse.Namespace) -> int:
    async def work(conn: Conn) -> int:
        if args.remove:
            await remove_endpoint(conn, args.enterprise)
            print(f"enterprise {args.enterprise}: recall notices no longer sent")
            return 0
        if not args.url:
            raise ConfigError("give --url URL (or --remove)")
        secret = await set_endpoint(conn, args.enterprise, args.url, args.secret)
        print(f"enterprise {args.enterprise}: recall notices go to {args.url}")
        print("they are signed (GS1-Signature: sha256=<HMAC-SHA256>) with this secret, shown once:")
        print(secret)
        return 0

    return asyncio.run(_on_pool(settings_from_args(args), work))


def cmd_location_add(args: argparse.Namespace) -> int:
    """Name a registered enterprise's site: a statement the ledger signs with its log key
    and appends to the log, so the name on a page is provable like an event."""
    settings = settings_from_args(args)
    log_key = load_or_create_log_key(settings.log_key_file)
    names = {"": args.name} | ({"zh": args.name_zh} if args.name_zh else {})

    async def work() -> int:
        pool = await connect_pool(await resolve_dsn(settings), min_size=1, max_size=2)
        try:
            async with Sequencer(pool) as sequencer, pool.acquire() as conn:
                named = await add_location(conn, sequencer, log_key, args.gln, names)
        finally:
            await pool.close()
        print(f"location {args.gln} named in log entry {named.index} ({named.status})")
        return 0

    return asyncio.run(work())


def cmd_key_add(args: argparse.Namespace) -> int:
    key = _read_public_key(args.key)

    async def work(conn: Conn) -> int:
        print(f"key {await registry.add_key(conn, args.enterprise, key)}")
        return 0

    return asyncio.run(_on_pool(settings_from_args(args), work))


def cmd_key_revoke(args: argparse.Namespace) -> int:
    async def work(conn: Conn) -> int:
        revoked = await registry.revoke_key(conn, args.key_id)
        print(f"key {args.key_id} revoked at {revoked.isoformat()}")
        return 0

    return asyncio.run(_on_pool(settings_from_args(args), work))


def cmd_keygen(args: argparse.Namespace) -> int:
    private_path = Path(f"{args.out}.pem")
    public_path = Path(f"{args.out}.pub.pem")
    for path in (private_path, public_path):
        if path.exists():
            raise ConfigError(f"{path} exists; refusing to overwrite a key")
    key = Ed25519PrivateKey.generate()
    fd = os.open(private_path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    public_path.write_bytes(
        key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    )
    print(f"private key {private_path} (keep it secret)\npublic key  {public_path}")
    print(f"key id      {keyid(key.public_key())}")
    return 0


def _documents(path: Path) -> list[Path]:
    if path.is_dir():
        return sorted(p for p in path.iterdir() if p.suffix in (".json", ".jsonld", ".xml"))
    return [path]


async def _push(args: argparse.Namespace) -> int:
    key = load_private_key(args.key)
    files = _documents(args.path)
    failed = 0
    events = 0
    async with CaptureClient(args.url, key, retries=args.retries, as_msgpack=args.msgpack) as c:
        for n, path in enumerate(files, start=1):
            try:
                kind = "application/xml" if path.suffix == ".xml" else "application/ld+json"
                receipt = await c.push(path.read_bytes(), kind)
            except CaptureRejectedError as exc:
                failed += 1
                print(f"\n{path}: refused, {exc}", file=sys.stderr)
                for err in exc.problem.get("errors", [])[:20]:
                    print(
                        f"  event {err.get('event')} {err.get('pointer')}: {err.get('reason')}",
                        file=sys.stderr,
                    )
                continue
            events += len(receipt["entries"])
            done = n * 30 // len(files)
            print(
                f"\r[{'#' * done}{'.' * (30 - done)}] {n}/{len(files)} documents, {events} events",
                end="",
                file=sys.stderr,
                flush=True,
            )
    print(f"\npushed {len(files) - failed} of {len(files)} documents ({events} events)")
    return 1 if failed else 0


def cmd_push(args: argparse.Namespace) -> int:
    return asyncio.run(_push(args))


def cmd_token_add(args: argparse.Namespace) -> int:
    async def work(conn: Conn) -> int:
        token_id, token = await tokens.add_token(conn, args.name, args.role, args.enterprise)
        print(f"token {token_id} for {args.name} ({args.role}); it is shown only once:")
        print(token)
        return 0

    return asyncio.run(_on_pool(settings_from_args(args), work))


def cmd_token_revoke(args: argparse.Namespace) -> int:
    async def work(conn: Conn) -> int:
        await tokens.revoke_token(conn, args.token_id)
        print(f"token {args.token_id} revoked")
        return 0

    return asyncio.run(_on_pool(settings_from_args(args), work))


async def _verify_history(args: argparse.Namespace) -> int:
    url = args.url
    if "format=json" not in url:
        url += ("&" if "?" in url else "?") + "format=json"
    async with (
        aiohttp.ClientSession() as http,
        http.get(url, headers={"Accept": "application/json"}) as response,
    ):
        if response.status != 200:
            print(f"{url}: HTTP {response.status}", file=sys.stderr)
            return 1
        answer = await response.json(content_type=None)
    if args.key:
        # One key per log: the current one, and one per earlier time shard.
        pinned = [Verifier.parse(k) for k in args.key]
    else:
        pinned = [Verifier.parse(answer["verifierKey"])] + [
            Verifier.parse(log["verifierKey"])
            for log in answer.get("logs") or ()
            if log.get("verifierKey") and log["verifierKey"] != answer["verifierKey"]
        ]
        print(
            "warning: no --key given, trusting the keys the server sent; pin each log's "
            "verifier key for a real check",
            file=sys.stderr,
        )
    trusted = {v.name: v for v in pinned}
    try:
        report = verify_history(answer, trusted)
    except IntegrityError as exc:
        print(f"FAILED: {exc}")
        return 1
    for failure in report.failures:
        print(f"FAILED: {failure}")
    for origin, size in report.logs.items():
        print(f"checkpoint of size {size} signed by {origin}")
    print(
        f"{report.verified} events verified, {report.withheld} included but withheld "
        f"(confidential), {len(report.failures)} failed"
    )
    if report.disclosed_fields or report.withheld_fields:
        print(
            f"{report.disclosed_fields} fields proven with their salts,"
            f" {report.withheld_fields} withheld (confidential or redacted) as digests"
        )
    return 1 if report.failures else 0


def cmd_verify_history(args: argparse.Namespace) -> int:
    return asyncio.run(_verify_history(args))


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="traceledger", description="Product traceability event ledger."
    )
    parser.add_argument("--home", type=Path, help="data folder (env TRACELEDGER_HOME)")
    parser.add_argument(
        "--database-url",
        help="PostgreSQL DSN (env DATABASE_URL); default: embedded PostgreSQL in the home folder",
    )
    parser.add_argument(
        "--read-database-url",
        help="PostgreSQL DSN read-only queries use, e.g. a streaming replica "
        "(env READ_DATABASE_URL; needs --database-url for writes)",
    )
    parser.add_argument("--origin", help="log origin (env TRACELEDGER_ORIGIN)")
    parser.add_argument(
        "--log-key", type=Path, help="log signing key file (env TRACELEDGER_LOG_KEY)"
    )
    parser.add_argument(
        "--past-shard",
        action="append",
        help="DSN of an earlier, frozen log lookups also read (repeat; env "
        "TRACELEDGER_PAST_SHARDS, comma-separated); see `traceledger rotate`",
    )
    parser.add_argument("-v", "--verbose", action="store_true")
    sub = parser.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP service")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8080)
    serve.add_argument(
        "--role",
        dest="service_role",
        choices=ROLES,
        help="ingest: capture, admin and the log, runs the sequencer and integrator; "
        "lookup: read-only queries and the log, runs no workers, needs no log key; "
        "all (default). Env TRACELEDGER_ROLE",
    )
    serve.set_defaults(func=cmd_serve, service=True)

    demo = sub.add_parser("demo", help="serve with demo data loaded (what the quick start runs)")
    demo.add_argument("--host", default="127.0.0.1")
    demo.add_argument("--port", type=int, default=8080)
    demo.set_defaults(func=cmd_serve, service=True)

    verify = sub.add_parser("verify", help="recompute and check the whole stored log")
    verify.add_argument("--key", help="trusted verifier key (default: the key stored with the log)")
    verify.set_defaults(func=cmd_verify)

    log_key = sub.add_parser("log-key", help="print the log's verifier key")
    log_key.set_defaults(func=cmd_log_key)

    enterprise = sub.add_parser("enterprise", help="the enterprise registry").add_subparsers(
        dest="action", required=True
    )
    ent_add = enterprise.add_parser("add", help="register an enterprise with its first key")
    ent_add.add_argument("name")
    ent_add.add_argument(
        "--gcp", action="append", required=True, help="GS1 company prefix (repeat for several)"
    )
    ent_add.add_argument("--key", type=Path, required=True, help="Ed25519 public key, PEM")
    ent_add.add_argument("--role", choices=registry.ROLES, default="enterprise")
    ent_add.add_argument("--rate-limit", type=float, help="events per second (default: none)")
    ent_add.set_defaults(func=cmd_enterprise_add)
    enterprise.add_parser("list", help="list enterprises and keys").set_defaults(
        func=cmd_enterprise_list
    )
    delegate = enterprise.add_parser(
        "delegate",
        help="let another enterprise create goods under this one's prefixes "
        "(a contract manufacturer)",
    )
    delegate.add_argument("owner", type=int, help="the owner's enterprise id")
    delegate.add_argument("--to", type=int, required=True, help="the delegate's enterprise id")
    delegate.add_argument("--gcp", help="only this prefix of the owner (default: all of them)")
    delegate.set_defaults(func=cmd_enterprise_delegate)
    notify = enterprise.add_parser(
        "notify", help="where the enterprise gets recall notices (a webhook it runs)"
    )
    notify.add_argument("enterprise", type=int, help="enterprise id")
    notify.add_argument("--url", help="https URL (plain http only on this machine)")
    notify.add_argument("--secret", help="HMAC key signing the notices (default: generated)")
    notify.add_argument("--remove", action="store_true", help="stop sending recall notices")
    notify.set_defaults(func=cmd_enterprise_notify)

    location = sub.add_parser(
        "location", help="names of enterprises' sites (signed into the log)"
    ).add_subparsers(dest="action", required=True)
    loc_add = location.add_parser(
        "add", help="name a site (GLN) of a registered enterprise, as master data in the log"
    )
    loc_add.add_argument("gln", help="the site's GLN (13 digits) or its sgln EPC URN")
    loc_add.add_argument("name", help="its name (shown when no name in the page's language)")
    loc_add.add_argument("--name-zh", help="its name in Chinese")
    loc_add.set_defaults(func=cmd_location_add)

    key = sub.add_parser("key", help="enterprise signing keys").add_subparsers(
        dest="action", required=True
    )
    key_add = key.add_parser("add", help="add a key to an enterprise (rotation)")
    key_add.add_argument("enterprise", type=int, help="enterprise id")
    key_add.add_argument("--key", type=Path, required=True, help="Ed25519 public key, PEM")
    key_add.set_defaults(func=cmd_key_add)
    key_revoke = key.add_parser("revoke", help="refuse events signed with this key from now on")
    key_revoke.add_argument("key_id")
    key_revoke.set_defaults(func=cmd_key_revoke)

    keygen = sub.add_parser("keygen", help="make an Ed25519 key pair for an enterprise")
    keygen.add_argument(
        "-o",
        "--out",
        default="enterprise-key",
        help="file name stem: writes STEM.pem and STEM.pub.pem",
    )
    keygen.set_defaults(func=cmd_keygen)

    push = sub.add_parser("push", help="sign EPCIS documents and send them to a ledger")
    push.add_argument("path", type=Path, help="an EPCIS JSON document or a folder of them")
    push.add_argument("--key", type=Path, required=True, help="the enterprise's private key")
    push.add_argument("--url", default="http://127.0.0.1:8080")
    push.add_argument("--msgpack", action="store_true", help="send MessagePack envelopes")
    push.add_argument("--retries", type=int, default=6)
    push.set_defaults(func=cmd_push)

    token = sub.add_parser("token", help="inspector and regulator access tokens").add_subparsers(
        dest="action", required=True
    )
    token_add = token.add_parser("add", help="create a token (printed once, stored hashed)")
    token_add.add_argument("name", help="who holds it")
    token_add.add_argument("--role", choices=tokens.ROLES, required=True)
    token_add.add_argument("--enterprise", type=int, help="enterprise id (role enterprise)")
    token_add.set_defaults(func=cmd_token_add)
    token_revoke = token.add_parser("revoke", help="revoke a token")
    token_revoke.add_argument("token_id", type=int)
    token_revoke.set_defaults(func=cmd_token_revoke)

    verify_history_cmd = sub.add_parser(
        "verify-history", help="check a trace history answer offline against the log's key"
    )
    verify_history_cmd.add_argument("url", help="a Digital Link URL served by the ledger")
    verify_history_cmd.add_argument(
        "--key",
        action="append",
        help="the log's verifier key (pin it!); repeat it, one per log, for an answer "
        "spanning time shards",
    )
    verify_history_cmd.set_defaults(func=cmd_verify_history)
    add_qr_parser(sub)
    add_backup_parser(sub)
    add_redact_parser(sub)
    add_witness_parser(sub)
    add_rotate_parser(sub)
    return parser


LOG_FORMATS = ("json", "console")


def setup_logging(args: argparse.Namespace) -> None:
    """Services (serve, demo, witness serve) log every start-up step as JSON lines, for
    their log collectors. Short commands print their results themselves and log only
    warnings and errors (-v: everything), with structlog's console renderer when a
    person reads the terminal and JSON lines into a pipe. TRACELEDGER_LOG_FORMAT=json or
    console chooses the format for any command."""
    service = getattr(args, "service", False)
    chosen = os.environ.get("TRACELEDGER_LOG_FORMAT", "").strip().lower()
    if chosen and chosen not in LOG_FORMATS:
        raise ConfigError(f"TRACELEDGER_LOG_FORMAT must be json or console, not {chosen!r}")
    console = chosen == "console" or (not chosen and not service and sys.stderr.isatty())
    quiet = logging.INFO if service else logging.WARNING
    configure_logging(logging.DEBUG if args.verbose else quiet, console=console)


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        setup_logging(args)
    except ConfigError as exc:
        print(f"traceledger: {exc}", file=sys.stderr)
        return 2
    try:
        code: int = args.func(args)
    except TraceledgerError as exc:
        print(f"traceledger: {exc}", file=sys.stderr)
        return 2
    return code


if __name__ == "__main__":
    sys.exit(main())
