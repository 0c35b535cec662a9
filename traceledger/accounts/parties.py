"""The registry's enterprises as the trust rules see them (traceledger/trust/parties.py)."""

from __future__ import annotations

from collections.abc import Iterable

from traceledger.store.conn import Conn
from traceledger.trust.parties import Party

# Delegations arrive with migration 0013; a database (or a past shard) migrated before
# has none.
_DELEGATED = """
    SELECT d.delegate_id AS id, array_agg(DISTINCT p.prefix ORDER BY p.prefix) AS prefixes
    FROM delegations d JOIN enterprise_prefixes p ON p.enterprise_id = d.owner_id
    WHERE d.delegate_id = ANY($1::bigint[]) AND (d.prefix IS NULL OR d.prefix = p.prefix)
    GROUP BY d.delegate_id
"""


async def load_parties(conn: Conn, ids: Iterable[int]) -> dict[int, Party]:
    """The registered enterprises among `ids`, with prefixes, delegations and role."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    rows = await conn.fetch(
        "SELECT e.id, e.name, e.role,"
        " coalesce(array_agg(p.prefix ORDER BY p.prefix)"
        "          FILTER (WHERE p.prefix IS NOT NULL), '{}') AS prefixes"
        " FROM enterprises e LEFT JOIN enterprise_prefixes p ON p.enterprise_id = e.id"
        " WHERE e.id = ANY($1::bigint[]) GROUP BY e.id",
        wanted,
    )
    delegated: dict[int, tuple[str, ...]] = {}
    if await conn.fetchval("SELECT to_regclass('delegations') IS NOT NULL"):
        delegated = {r["id"]: tuple(r["prefixes"]) for r in await conn.fetch(_DELEGATED, wanted)}
    return {
        r["id"]: Party(
            r["id"],
            r["name"],
            r["role"] == "authority",
            tuple(r["prefixes"]),
            delegated.get(r["id"], ()),
        )
        for r in rows
    }
