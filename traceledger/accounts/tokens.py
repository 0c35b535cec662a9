"""Bearer tokens: the operator's admin token (a 0600 file) and inspectors', regulators' and
enterprises' tokens (in the database, hashed, revocable, every use audited)."""

from __future__ import annotations

import hashlib
import hmac
import os
import secrets
from dataclasses import dataclass
from pathlib import Path

from traceledger.errors import ConfigError, RegistryError
from traceledger.store.conn import Conn


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


ROLES = ("inspector", "regulator", "enterprise")
AUTHORITY_ROLES = frozenset({"inspector", "regulator"})


@dataclass(frozen=True, slots=True)
class AccessToken:
    id: int
    name: str
    role: str
    enterprise_id: int | None = None  # set exactly when role is "enterprise"

    @property
    def is_authority(self) -> bool:
        """Inspectors and regulators see every event; an enterprise only its own."""
        return self.role in AUTHORITY_ROLES


def _hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()


async def add_token(
    conn: Conn, name: str, role: str, enterprise_id: int | None = None
) -> tuple[int, str]:
    """Create a token; returns (id, the token). Only its hash is stored.

    An enterprise token belongs to one registered enterprise (`enterprise_id`); inspectors'
    and regulators' tokens belong to none.
    """
    if role not in ROLES:
        raise RegistryError(f"role must be one of {ROLES}")
    if not name.strip():
        raise RegistryError("a token needs a name (who holds it)")
    if role == "enterprise":
        if enterprise_id is None:
            raise RegistryError("an enterprise token needs the enterprise it belongs to")
        if await conn.fetchval("SELECT id FROM enterprises WHERE id = $1", enterprise_id) is None:
            raise RegistryError(f"no enterprise with id {enterprise_id}")
    elif enterprise_id is not None:
        raise RegistryError(f"a {role} token belongs to no enterprise")
    token = "tl_" + secrets.token_urlsafe(32)
    token_id: int = await conn.fetchval(
        "INSERT INTO access_tokens (name, role, token_hash, enterprise_id)"
        " VALUES ($1, $2, $3, $4) RETURNING id",
        name,
        role,
        _hash(token),
        enterprise_id,
    )
    return token_id, token


async def revoke_token(conn: Conn, token_id: int) -> None:
    done = await conn.fetchval(
        "UPDATE access_tokens SET revoked_at = coalesce(revoked_at, now()) WHERE id = $1"
        " RETURNING id",
        token_id,
    )
    if done is None:
        raise RegistryError(f"no token with id {token_id}")


async def check_token(conn: Conn, token: str) -> AccessToken | None:
    """The active token with this value, or None (hash lookup: no timing to exploit)."""
    row = await conn.fetchrow(
        "SELECT id, name, role, enterprise_id FROM access_tokens"
        " WHERE token_hash = $1 AND revoked_at IS NULL",
        _hash(token),
    )
    if row is None:
        return None
    return AccessToken(row["id"], row["name"], row["role"], row["enterprise_id"])


async def record_access(
    conn: Conn, token_id: int, method: str, path: str, status: int | None
) -> None:
    await conn.execute(
        "INSERT INTO audit_log (token_id, method, path, status) VALUES ($1, $2, $3, $4)",
        token_id,
        method,
        path,
        status,
    )
