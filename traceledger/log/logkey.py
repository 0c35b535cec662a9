"""The log's Ed25519 signing key: created on first start, kept in a 0600 file, never in the DB."""

from __future__ import annotations

import os
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from traceledger.errors import ConfigError


def load_or_create_log_key(path: Path, *, create: bool = True) -> Ed25519PrivateKey:
    """Load the PEM (PKCS#8) key at `path`, creating it atomically with mode 0600 if absent."""
    if not path.exists():
        if not create:
            raise ConfigError(f"log key {path} does not exist")
        path.parent.mkdir(parents=True, exist_ok=True)
        key = Ed25519PrivateKey.generate()
        pem = key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
        # O_EXCL: if two processes race on first start, exactly one key wins and both load it.
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            return load_or_create_log_key(path, create=False)
        with os.fdopen(fd, "wb") as out:
            out.write(pem)
            out.flush()
            os.fsync(out.fileno())
        return key
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise ConfigError(
            f"log key {path} is readable by others (mode {mode:o}); run: chmod 600 {path}"
        )
    try:
        loaded = serialization.load_pem_private_key(path.read_bytes(), password=None)
    except ValueError as exc:
        raise ConfigError(f"log key {path} is not a PEM private key: {exc}") from exc
    if not isinstance(loaded, Ed25519PrivateKey):
        raise ConfigError(f"log key {path} is not an Ed25519 key")
    return loaded
