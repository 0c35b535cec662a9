"""The registry's enterprises as the trust rules see them (traceledger/trust/parties.py)."""

from __future__ import annotations

from collections.abc import Iterable

from traceledger.accounts.registry import DELEGATED_PREFIXES
from traceledger.store.conn import Conn
from traceledger.trust.parties import Party


async def load_parties(
    conn: Conn, ids: Iterable[int], *, delegations: bool = True
) -> dict[int, Party]:
    """The registered enterprises among `ids`, with prefixes, delegations and role, in one
    query. `delegations` off for a past time shard frozen before migration 0013 (it has
    no delegations table, and so no delegations)."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    delegated = DELEGATED_PREFIXES if delegations else "'{}'::text[]"
    rows = await conn.fetch(
        "SELECT e.id, e.name, e.role,"  # noqa: S608 - fixed SQL only
        " coalesce((SELECT array_agg(p.prefix ORDER BY p.prefix) FROM enterprise_prefixes p"
        "           WHERE p.enterprise_id = e.id), '{}') AS prefixes,"
        f" {delegated} AS delegated"
        " FROM enterprises e WHERE e.id = ANY($1::bigint[])",
        wanted,
    )
    return {
        r["id"]: Party(
            r["id"],
            r["name"],
            r["role"] == "authority",
            tuple(r["prefixes"]),
            tuple(r["delegated"]),
        )
        for r in rows
    }
