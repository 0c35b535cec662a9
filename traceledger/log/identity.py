"""Which log a database holds: its origin and public key, bound on first start."""

from __future__ import annotations

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from traceledger.errors import ConfigError, StoreError
from traceledger.store.conn import Conn
from traceledger.tlog.note import Verifier, key_hash


async def stored_identity(conn: Conn) -> Verifier | None:
    """The verifier of whichever log this database holds (its origin comes with it)."""
    row = await conn.fetchrow("SELECT origin, public_key FROM log_meta")
    if row is None:
        return None
    origin: str = row["origin"]
    public = bytes(row["public_key"])
    return Verifier(origin, key_hash(origin, public), Ed25519PublicKey.from_public_bytes(public))


async def read_log_identity(conn: Conn, origin: str) -> Verifier:
    """The log's verifier key as the database records it (a lookup holds no signing key)."""
    stored = await stored_identity(conn)
    if stored is None:
        raise StoreError("the database holds no log yet; start the ingest service first")
    if stored.name != origin:
        raise ConfigError(
            f"this database holds the log {stored.name!r}, not {origin!r}; "
            "set TRACELEDGER_ORIGIN (or --origin) to the log's origin"
        )
    return stored


async def check_log_identity(conn: Conn, origin: str, verifier: Verifier) -> None:
    """Bind the database to one origin and key on first start; refuse any other later."""
    public = verifier.public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    await conn.execute(
        "INSERT INTO log_meta (origin, public_key) VALUES ($1, $2) ON CONFLICT DO NOTHING",
        origin,
        public,
    )
    if await read_log_identity(conn, origin) != verifier:
        raise ConfigError(
            "the log key does not match the key this log was created with; "
            "point TRACELEDGER_LOG_KEY (or --log-key) at the original key file"
        )
