#!/usr/bin/env python3
"""Bootstrap and run traceledger with nothing but Python 3.11+.

    python3 scripts/dev.py run    # the service on an embedded PostgreSQL, with demo data
    python3 scripts/dev.py test   # install test tools, then ruff, mypy and pytest

Both create `.venv/` in the checkout on first use and reinstall only when
pyproject.toml changes. Extra arguments after `test` go to pytest.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import venv
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
BIN = VENV / ("Scripts" if os.name == "nt" else "bin")


def _run(*cmd: str | Path, env: dict[str, str] | None = None) -> None:
    print("+", " ".join(str(c) for c in cmd), flush=True)
    subprocess.run([str(c) for c in cmd], cwd=ROOT, check=True, env=env)


def ensure_venv(extra: str) -> None:
    if sys.version_info < (3, 11):  # noqa: UP036 - runs before anything checks the version
        sys.exit(f"traceledger needs Python 3.11 or newer, this is {sys.version.split()[0]}")
    if not (BIN / "python").exists():
        venv.create(VENV, with_pip=True)
    stamp = VENV / f".installed-{extra or 'run'}"
    digest = hashlib.sha256((ROOT / "pyproject.toml").read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    target = f".[{extra}]" if extra else "."
    _run(BIN / "python", "-m", "pip", "install", "--quiet", "--upgrade", "pip")
    # setuptools' build backend warns about every editable install; pip passes the
    # environment on to it, so this keeps the quick start's output to what matters.
    quiet = {**os.environ, "PYTHONWARNINGS": "ignore"}
    _run(BIN / "python", "-m", "pip", "install", "--quiet", "-e", target, env=quiet)
    stamp.write_text(digest)


def run(args: list[str]) -> int:
    ensure_venv("")
    os.execv(BIN / "traceledger", [str(BIN / "traceledger"), "demo", *args])
    return 0  # not reached


def _postgres_major() -> str:
    """The newest PostgreSQL server installed the Debian way (15 when there is none)."""
    found = [p.parent.parent.name for p in Path("/usr/lib/postgresql").glob("*/bin/postgres")]
    return max(found, key=int, default="15")


# Programs (or files) the tests use, and the Debian package of each: zbarimg decodes the QR
# codes the service draws, rsvg-convert turns its SVG codes into pictures zbarimg can read,
# chromium loads the pages at phone width and runs their proof script (about 80 s to
# install, once), node runs the proof script's own tests, npm installs axe-core; pg_autoctl
# and the pgautofailover extension run the failover test's monitor and data nodes.
TEST_TOOLS = {
    "zbarimg": "zbar-tools",
    "rsvg-convert": "librsvg2-bin",
    "chromium": "chromium",
    "node": "nodejs",
    "npm": "npm",
    "pg_autoctl": "pg-auto-failover-cli",
    f"/usr/share/postgresql/{_postgres_major()}/extension/pgautofailover.control": (
        f"postgresql-{_postgres_major()}-auto-failover"
    ),
}


def _present(tool: str) -> bool:
    return Path(tool).exists() if tool.startswith("/") else shutil.which(tool) is not None


def ensure_test_tools() -> None:
    """Install missing test programs with apt-get when we can; otherwise say what will skip."""
    missing = {tool: pkg for tool, pkg in TEST_TOOLS.items() if not _present(tool)}
    if not missing:
        return
    root = hasattr(os, "geteuid") and os.geteuid() == 0
    if root and shutil.which("apt-get"):
        apt_env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        try:
            _run("apt-get", "update", "-qq", env=apt_env)
            _run("apt-get", "install", "-y", "-qq", *sorted(set(missing.values())), env=apt_env)
        except (OSError, subprocess.CalledProcessError) as exc:
            print(f"warning: apt-get could not install test tools: {exc}", file=sys.stderr)
    for tool, pkg in missing.items():
        if not _present(tool):
            print(
                f"warning: {tool} not found (Debian/Ubuntu package {pkg}); "
                "the tests that need it will be skipped",
                file=sys.stderr,
            )


# What the page tests run inside Chromium (tests/js/package.json: axe-core), from npm.
JS_TOOLS = ROOT / "tests" / "js"


def ensure_js_tools() -> None:
    """`npm ci` in tests/js when its lock file changed; the tests that need it skip
    (saying so) when npm is missing."""
    npm = shutil.which("npm")
    lock = JS_TOOLS / "package-lock.json"
    stamp = JS_TOOLS / "node_modules" / ".installed"
    digest = hashlib.sha256(lock.read_bytes()).hexdigest()
    if stamp.exists() and stamp.read_text() == digest:
        return
    if npm is None:
        print("warning: npm not found; the accessibility test will be skipped", file=sys.stderr)
        return
    try:
        _run(npm, "ci", "--prefix", JS_TOOLS, "--no-audit", "--no-fund", "--loglevel=error")
    except (OSError, subprocess.CalledProcessError) as exc:
        print(f"warning: npm could not install tests/js: {exc}", file=sys.stderr)
        return
    stamp.write_text(digest)


def test(args: list[str]) -> int:
    ensure_venv("test")
    ensure_test_tools()
    ensure_js_tools()
    _run(BIN / "ruff", "check", ".")
    _run(BIN / "ruff", "format", "--check", ".")
    _run(BIN / "mypy")
    result = subprocess.run([str(BIN / "pytest"), *args], cwd=ROOT, check=False)
    return result.returncode


def main() -> int:
    if len(sys.argv) < 2 or sys.argv[1] not in ("run", "test"):
        print(__doc__)
        return 2
    command, rest = sys.argv[1], sys.argv[2:]
    try:
        return run(rest) if command == "run" else test(rest)
    except subprocess.CalledProcessError as exc:
        return exc.returncode or 1


if __name__ == "__main__":
    sys.exit(main())
