"""The enterprise registry: who may push events, under which company prefixes, with which keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from traceledger.errors import RegistryError, SignatureError
from traceledger.standards.dsse import Envelope, keyid, verify
from traceledger.store.conn import Conn

ROLES = ("enterprise", "authority")


@dataclass(frozen=True, slots=True)
class KeyInfo:
    key_id: str
    enterprise_id: int
    public_key: Ed25519PublicKey
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class Enterprise:
    id: int
    name: str
    role: str
    prefixes: tuple[str, ...]
    rate_limit: float | None
    keys: tuple[tuple[str, datetime | None], ...] = ()  # (key_id, revoked_at)

    @property
    def is_authority(self) -> bool:
        return self.role == "authority"

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "gcp": list(self.prefixes),
            "rateLimit": self.rate_limit,
            "keys": [{"keyId": k, "revokedAt": r.isoformat() if r else None} for k, r in self.keys],
        }


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(Encoding.Raw, PublicFormat.Raw)


def _check_prefixes(prefixes: list[str]) -> None:
    if not prefixes:
        raise RegistryError("an enterprise needs at least one GS1 company prefix (--gcp)")
    for p in prefixes:
        if not (p.isdigit() and 4 <= len(p) <= 12):
            raise RegistryError(f"GS1 company prefix {p!r} must be 4 to 12 digits")


async def add_enterprise(
    conn: Conn,
    name: str,
    prefixes: list[str],
    public_key: Ed25519PublicKey,
    *,
    role: str = "enterprise",
    rate_limit: float | None = None,
) -> tuple[int, str]:
    """Register an enterprise with its first key; returns (enterprise id, key id)."""
    if role not in ROLES:
        raise RegistryError(f"role must be one of {ROLES}")
    if rate_limit is not None and not rate_limit > 0:
        raise RegistryError("rate limit must be a positive number of events per second")
    _check_prefixes(prefixes)
    async with conn.transaction():
        try:
            ent_id: int = await conn.fetchval(
                "INSERT INTO enterprises (name, role, rate_limit) VALUES ($1, $2, $3) RETURNING id",
                name,
                role,
                rate_limit,
            )
        except asyncpg.UniqueViolationError as exc:
            raise RegistryError(f"an enterprise named {name!r} already exists") from exc
        await conn.executemany(
            "INSERT INTO enterprise_prefixes (enterprise_id, prefix) VALUES ($1, $2)",
            [(ent_id, p) for p in sorted(set(prefixes))],
        )
        kid = await _insert_key(conn, ent_id, public_key)
    return ent_id, kid


async def _insert_key(conn: Conn, enterprise_id: int, public_key: Ed25519PublicKey) -> str:
    kid = keyid(public_key)
    try:
        await conn.execute(
            "INSERT INTO enterprise_keys (key_id, enterprise_id, public_key) VALUES ($1, $2, $3)",
            kid,
            enterprise_id,
            _raw(public_key),
        )
    except asyncpg.UniqueViolationError as exc:
        raise RegistryError(f"key {kid} is already registered") from exc
    return kid


async def add_key(conn: Conn, enterprise_id: int, public_key: Ed25519PublicKey) -> str:
    if not await conn.fetchval("SELECT true FROM enterprises WHERE id = $1", enterprise_id):
        raise RegistryError(f"no enterprise with id {enterprise_id}")
    return await _insert_key(conn, enterprise_id, public_key)


async def revoke_key(conn: Conn, key_id: str) -> datetime:
    revoked: datetime | None = await conn.fetchval(
        "UPDATE enterprise_keys SET revoked_at = coalesce(revoked_at, now())"
        " WHERE key_id = $1 RETURNING revoked_at",
        key_id,
    )
    if revoked is None:
        raise RegistryError(f"no key with id {key_id}")
    return revoked


async def keys_by_id(conn: Conn, key_ids: list[str]) -> dict[str, KeyInfo]:
    rows = await conn.fetch(
        "SELECT key_id, enterprise_id, public_key, revoked_at FROM enterprise_keys"
        " WHERE key_id = ANY($1::text[])",
        key_ids,
    )
    return {
        r["key_id"]: KeyInfo(
            r["key_id"],
            r["enterprise_id"],
            Ed25519PublicKey.from_public_bytes(bytes(r["public_key"])),
            r["revoked_at"],
        )
        for r in rows
    }


async def get_enterprise(conn: Conn, enterprise_id: int) -> Enterprise:
    found = await list_enterprises(conn, enterprise_id)
    if not found:
        raise RegistryError(f"no enterprise with id {enterprise_id}")
    return found[0]


async def list_enterprises(conn: Conn, only: int | None = None) -> list[Enterprise]:
    rows = await conn.fetch(
        "SELECT e.id, e.name, e.role, e.rate_limit,"
        " coalesce((SELECT array_agg(prefix ORDER BY prefix) FROM enterprise_prefixes p"
        "           WHERE p.enterprise_id = e.id), '{}') AS prefixes,"
        " coalesce((SELECT array_agg(key_id ORDER BY added_at) FROM enterprise_keys k"
        "           WHERE k.enterprise_id = e.id), '{}') AS key_ids,"
        " coalesce((SELECT array_agg(revoked_at ORDER BY added_at) FROM enterprise_keys k"
        "           WHERE k.enterprise_id = e.id), '{}') AS revoked"
        " FROM enterprises e WHERE $1::bigint IS NULL OR e.id = $1 ORDER BY e.id",
        only,
    )
    return [
        Enterprise(
            r["id"],
            r["name"],
            r["role"],
            tuple(r["prefixes"]),
            r["rate_limit"],
            tuple(zip(r["key_ids"], r["revoked"], strict=True)),
        )
        for r in rows
    ]


async def verified_signer(conn: Conn, envelope: Envelope) -> Enterprise:
    """The enterprise whose registered, active key signed the envelope.

    Unknown keys are ignored, a wrong signature by a known key is refused, and an
    envelope signed only by revoked keys is refused saying when they were revoked.
    """
    keys = await keys_by_id(conn, [s.keyid for s in envelope.signatures])
    active = {k: info.public_key for k, info in keys.items() if info.revoked_at is None}
    if keys and not active:
        revoked = ", ".join(
            f"{k} (revoked {i.revoked_at:%Y-%m-%d %H:%M:%SZ})" for k, i in keys.items()
        )
        raise SignatureError(f"the envelope is signed only by revoked keys: {revoked}")
    signer_key = verify(envelope, active.get)
    return await get_enterprise(conn, keys[signer_key].enterprise_id)
