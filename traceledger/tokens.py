"""Bearer tokens: the operator's admin token, created on first start, kept 0600."""

from __future__ import annotations

import hmac
import os
import secrets
from pathlib import Path

from traceledger.errors import ConfigError


def load_or_create_token(path: Path) -> str:
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        token = secrets.token_urlsafe(32)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return load_or_create_token(path)
        with os.fdopen(fd, "w") as out:
            out.write(token + "\n")
        return token
    if path.stat().st_mode & 0o077:
        raise ConfigError(f"{path} is readable by others; run: chmod 600 {path}")
    token = path.read_text().strip()
    if len(token) < 16:
        raise ConfigError(f"{path} holds no usable token (at least 16 characters)")
    return token


def same_token(given: str, expected: str) -> bool:
    """Constant-time comparison, so response timing leaks nothing about the token."""
    return hmac.compare_digest(given.encode(), expected.encode())
