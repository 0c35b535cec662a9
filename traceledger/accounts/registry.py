"""The enterprise registry: who may push events, under which company prefixes, with which keys."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from traceledger.errors import (
    DelegationError,
    RegistryError,
    UnknownEnterpriseError,
    UnverifiedSignatureError,
)
from traceledger.standards.dsse import Envelope, keyid, verified_keyids, verify
from traceledger.store.conn import Conn

ROLES = ("enterprise", "authority")


@dataclass(frozen=True, slots=True)
class KeyInfo:
    key_id: str
    enterprise_id: int
    public_key: Ed25519PublicKey
    revoked_at: datetime | None


@dataclass(frozen=True, slots=True)
class Delegation:
    owner_id: int
    delegate_id: int
    gcp: str | None  # None: every prefix the owner holds
    prefixes: tuple[str, ...]  # what that covers now
    created_at: datetime

    def to_json(self) -> dict[str, object]:
        return {
            "owner": self.owner_id,
            "delegate": self.delegate_id,
            "gcp": self.gcp,
            "prefixes": list(self.prefixes),
            "createdAt": self.created_at.isoformat(),
        }


@dataclass(frozen=True, slots=True)
class Enterprise:
    id: int
    name: str
    role: str
    prefixes: tuple[str, ...]
    rate_limit: float | None
    keys: tuple[tuple[str, datetime | None], ...] = ()  # (key_id, revoked_at)
    # Other owners' prefixes this enterprise may create goods under (see delegate()).
    delegated_prefixes: tuple[str, ...] = ()

    @property
    def is_authority(self) -> bool:
        return self.role == "authority"

    def to_json(self) -> dict[str, object]:
        return {
            "id": self.id,
            "name": self.name,
            "role": self.role,
            "gcp": list(self.prefixes),
            "delegatedGcp": list(self.delegated_prefixes),
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
    if not 0 <= enterprise_id < 2**63:  # not a bigint: no such row, and no query to fail
        raise UnknownEnterpriseError(enterprise_id)
    found = await list_enterprises(conn, enterprise_id)
    if not found:
        raise UnknownEnterpriseError(enterprise_id)
    return found[0]


# The owner prefixes enterprise `e` may create goods under (see delegate()), as a column.
DELEGATED_PREFIXES = (
    "coalesce((SELECT array_agg(DISTINCT p.prefix ORDER BY p.prefix)"
    " FROM delegations d JOIN enterprise_prefixes p ON p.enterprise_id = d.owner_id"
    " AND (d.prefix IS NULL OR d.prefix = p.prefix)"
    " WHERE d.delegate_id = e.id), '{}')"
)


async def list_enterprises(conn: Conn, only: int | None = None) -> list[Enterprise]:
    rows = await conn.fetch(
        "SELECT e.id, e.name, e.role, e.rate_limit,"  # noqa: S608 - fixed SQL only
        " coalesce((SELECT array_agg(prefix ORDER BY prefix) FROM enterprise_prefixes p"
        "           WHERE p.enterprise_id = e.id), '{}') AS prefixes,"
        " coalesce((SELECT array_agg(key_id ORDER BY added_at) FROM enterprise_keys k"
        "           WHERE k.enterprise_id = e.id), '{}') AS key_ids,"
        " coalesce((SELECT array_agg(revoked_at ORDER BY added_at) FROM enterprise_keys k"
        "           WHERE k.enterprise_id = e.id), '{}') AS revoked,"
        f" {DELEGATED_PREFIXES} AS delegated"
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
            tuple(r["delegated"]),
        )
        for r in rows
    ]


async def delegate(conn: Conn, owner_id: int, to_id: int, gcp: str | None) -> Delegation:
    """Let `to_id` create goods under the owner's prefix `gcp` (None: all of them).
    Delegating the same thing again changes nothing and answers the first delegation."""
    if owner_id == to_id:
        raise DelegationError("to", f"enterprise {owner_id} cannot delegate to itself")
    owner = await get_enterprise(conn, owner_id)
    await get_enterprise(conn, to_id)
    if gcp is not None and gcp not in owner.prefixes:
        raise DelegationError(
            "gcp",
            f"{gcp!r} is not a company prefix of {owner.name} "
            f"(it holds {', '.join(owner.prefixes)})",
        )
    created: datetime | None = await conn.fetchval(
        "INSERT INTO delegations (owner_id, delegate_id, prefix) VALUES ($1, $2, $3)"
        " ON CONFLICT DO NOTHING RETURNING created_at",
        owner_id,
        to_id,
        gcp,
    )
    if created is None:  # delegated before: answer that delegation
        created = await conn.fetchval(
            "SELECT created_at FROM delegations WHERE owner_id = $1 AND delegate_id = $2"
            " AND prefix IS NOT DISTINCT FROM $3",
            owner_id,
            to_id,
            gcp,
        )
    assert created is not None  # inserted, or there by the conflict
    return Delegation(owner_id, to_id, gcp, (gcp,) if gcp else owner.prefixes, created)


async def verified_signer(conn: Conn, envelope: Envelope) -> Enterprise:
    """The enterprise whose active key made the envelope's first signature, once every
    signature verifies against an active key of a registered enterprise.

    Unknown and revoked key ids are refused like wrong signatures: a dummy signature
    with an authority's key id must not make an envelope look co-signed by it.
    """
    keys = await keys_by_id(conn, [s.keyid for s in envelope.signatures])
    for i, s in enumerate(envelope.signatures):
        info = keys.get(s.keyid)
        if info is not None and info.revoked_at is not None:
            why = f"the key was revoked {info.revoked_at.isoformat(timespec='seconds')}"
            raise UnverifiedSignatureError(s.keyid, f"/signatures/{i}", why)
    signer_key = verify(envelope, {k: info.public_key for k, info in keys.items()}.get)
    return await get_enterprise(conn, keys[signer_key].enterprise_id)


async def signing_enterprise(conn: Conn, envelope: Envelope) -> int | None:
    """The enterprise credited with a stored envelope: the first signature that verifies
    against a registered key (revoked since or not). Signatures that do not verify, as
    envelopes captured before every signature had to could carry, credit nobody."""
    keys = await keys_by_id(conn, [s.keyid for s in envelope.signatures])
    if len(envelope.signatures) == 1:
        # Capture verified a lone signature whatever the rules of its day, and checking it
        # again would cost the indexer ~0.2 ms of CPU per envelope on the event loop.
        info = keys.get(envelope.signatures[0].keyid)
        return info.enterprise_id if info is not None else None
    verified = verified_keyids(envelope, {k: info.public_key for k, info in keys.items()}.get)
    return keys[verified[0]].enterprise_id if verified else None
