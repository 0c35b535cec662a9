"""`traceledger qr`: a QR code for a label, from an EPC URN or a Digital Link.

Works offline, without the database: the code only carries the item's canonical Digital
Link under the public base URL.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from traceledger.standards import qr

DEFAULT_BASE = "http://127.0.0.1:8080"
_WRITERS = {".png": qr.png, ".svg": qr.svg}


def cmd_qr(args: argparse.Namespace) -> int:
    base = args.base or os.environ.get("TRACELEDGER_PUBLIC_URL") or DEFAULT_BASE
    out: Path | None = args.out
    if out is not None and out.suffix.lower() not in _WRITERS:
        print(f"traceledger qr: {out} must end in .png or .svg", file=sys.stderr)
        return 2
    link = qr.digital_link_for(args.identifier, base)
    if out is None:
        sys.stdout.write(qr.terminal(link, light_background=args.light))
        print(link)
        return 0
    out.write_bytes(_WRITERS[out.suffix.lower()](link))
    print(f"{out}: {link}")
    return 0


def add_qr_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Add the `qr` subcommand to the `traceledger` parser's subcommands."""
    parser = sub.add_parser(
        "qr",
        help="QR code of an item's Digital Link, for label printing",
        description="Encodes the canonical GS1 Digital Link of the identifier under the "
        "public base URL (error correction M, 4-module quiet zone).",
    )
    parser.add_argument(
        "identifier",
        help="EPC URN (urn:epc:id:sgtin:..., urn:epc:class:lgtin:..., sscc, sgln) "
        "or GS1 Digital Link (any host, or just the path 01/<gtin>/...)",
    )
    parser.add_argument(
        "-o", "--out", type=Path, help="write FILE.png or FILE.svg (default: draw in the terminal)"
    )
    parser.add_argument(
        "--base",
        help=f"public base URL (env TRACELEDGER_PUBLIC_URL, else {DEFAULT_BASE})",
    )
    parser.add_argument(
        "--light",
        action="store_true",
        help="terminal drawing for dark text on a light background",
    )
    parser.set_defaults(func=cmd_qr)
