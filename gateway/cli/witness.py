"""`traceledger witness`: run a C2SP tlog-witness, or print its verifier key.

The witness needs no database and nothing of the log but the log's verifier key: it is
meant to run on another party's machine, with its own home folder.
"""

from __future__ import annotations

import argparse
import os
from collections.abc import Sequence
from pathlib import Path

import platformdirs
from aiohttp import web

from gateway.witness_app import WitnessConfig, create_witness_app
from traceledger.errors import ConfigError, NoteError
from traceledger.log.logkey import load_or_create_log_key
from traceledger.log.witness import parse_log_spec
from traceledger.tlog.cosignature import CosignatureSigner
from traceledger.tlog.note import Verifier

DEFAULT_PORT = 8081


def _home(args: argparse.Namespace) -> Path:
    if args.witness_home is not None:
        return Path(args.witness_home)
    if os.environ.get("TRACELEDGER_WITNESS_HOME"):
        return Path(os.environ["TRACELEDGER_WITNESS_HOME"])
    return Path(platformdirs.user_data_dir("traceledger-witness", appauthor=False))


def _name(args: argparse.Namespace) -> str:
    name: str | None = args.name or os.environ.get("TRACELEDGER_WITNESS_NAME")
    if not name:
        raise ConfigError(
            "the witness needs a name (--name or TRACELEDGER_WITNESS_NAME), "
            "e.g. witness.example.org/w1"
        )
    return name


def read_logs(specs: Sequence[str], files: Sequence[Path]) -> dict[str, list[Verifier]]:
    """Origin -> trusted log keys, from --log ORIGIN=VKEY and files of such lines."""
    lines = list(specs)
    for path in files:
        try:
            text = path.read_text("utf-8")
        except OSError as exc:
            raise ConfigError(f"logs file {path}: {exc}") from exc
        lines += [ln for ln in text.splitlines() if ln.strip() and not ln.lstrip().startswith("#")]
    logs: dict[str, list[Verifier]] = {}
    for line in lines:
        origin, verifier = parse_log_spec(line)
        logs.setdefault(origin, []).append(verifier)
    return logs


def cmd_witness_serve(args: argparse.Namespace) -> int:
    logs = read_logs(args.log or [], args.logs_file or [])
    if not logs:
        raise ConfigError("the witness watches no log: give --log ORIGIN=VKEY or --logs-file")
    config = WitnessConfig(_home(args), _name(args), logs)
    base = f"http://{args.host}:{args.port}"
    banner = (
        f"traceledger witness {config.name!r} in {config.home}, watching "
        f"{', '.join(sorted(logs))}\n  submission prefix {base} (POST {base}/add-checkpoint)"
    )
    web.run_app(
        create_witness_app(config),
        host=args.host,
        port=args.port,
        print=lambda _: print(banner),
        handle_signals=True,
    )
    return 0


def cmd_witness_key(args: argparse.Namespace) -> int:
    """Print the witness's verifier key (type 0x04), creating the key on first use."""
    key = load_or_create_log_key(_home(args) / "witness-key.pem")
    try:
        print(CosignatureSigner(_name(args), key).verifier.encode())
    except NoteError as exc:
        raise ConfigError(f"witness name: {exc}") from exc
    return 0


def add_witness_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `witness` subcommand to the `traceledger` parser's subcommands."""
    witness = sub.add_parser(
        "witness", help="cosign other logs' checkpoints (C2SP tlog-witness)"
    ).add_subparsers(dest="action", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--witness-home",
        type=Path,
        help="the witness's folder: key, state, lock (env TRACELEDGER_WITNESS_HOME)",
    )
    common.add_argument(
        "--name",
        help="witness key name, e.g. witness.example.org/w1 (env TRACELEDGER_WITNESS_NAME)",
    )
    serve = witness.add_parser("serve", parents=[common], help="answer POST /add-checkpoint")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=DEFAULT_PORT)
    serve.add_argument(
        "--log",
        action="append",
        metavar="ORIGIN=VKEY",
        help="a log to witness: its origin and verifier key (repeat for several)",
    )
    serve.add_argument(
        "--logs-file",
        action="append",
        type=Path,
        help="a file of ORIGIN=VKEY lines (# comments allowed)",
    )
    serve.set_defaults(func=cmd_witness_serve, service=True)
    key = witness.add_parser("key", parents=[common], help="print the witness's verifier key")
    key.set_defaults(func=cmd_witness_key)
