"""Who may read a log entry's body (its stored payload and the envelope it came in).

The public reads what verification needs: the leaf, its hash and its fields. The body
goes only to
- inspectors and regulators (every read is in the audit trail);
- the enterprise that signed it (the event's signer, or a catalog version's);
- an enterprise whose goods the event names, in a goods role (traceledger/trust/roles.py
  WHAT): an event naming its lot as a place or a party is not about its goods.
An entry not yet indexed has no known signer or goods: until it is, only officials read it.
A master data entry (the names a document's header gives places and products, which
pages show to anyone) is a public statement: its payload is public, its envelope (the
whole signed document, events included) is not.
"""

from __future__ import annotations

from traceledger.accounts.tokens import AccessToken
from traceledger.inspect.visibility import GOODS_ROLES, owned_key_patterns, viewer_for
from traceledger.store.conn import Conn

# Why a caller may read a body (what `GET /v1/entries/{index}` reports as `access`).
SIGNER = "signer"
GOODS_OWNER = "goods-owner"


async def body_access(conn: Conn, index: int, access: AccessToken | None) -> str | None:
    """The reason `access` may read entry `index`'s body, or None (public fields only)."""
    if access is None:
        return None
    if access.is_authority:
        return access.role
    if access.enterprise_id is None:
        return None
    viewer = await viewer_for(conn, access.enterprise_id)
    row = await conn.fetchrow(
        "SELECT COALESCE(e.enterprise_id, c.signer,"
        " (SELECT min(m.signer) FROM master_data m WHERE m.idx = n.idx)) AS signer,"
        " EXISTS (SELECT 1 FROM event_keys k WHERE k.idx = $1"
        "         AND k.role = ANY($2::text[]) AND k.key LIKE ANY($3::text[])) AS owns"
        " FROM entries n LEFT JOIN events e ON e.idx = n.idx"
        " LEFT JOIN catalog_versions c ON c.idx = n.idx WHERE n.idx = $1",
        index,
        list(GOODS_ROLES),
        owned_key_patterns(viewer.prefixes),
    )
    if row is None:
        return None
    if row["signer"] is not None and row["signer"] == access.enterprise_id:
        return SIGNER
    return GOODS_OWNER if row["owns"] else None


async def public_statement(conn: Conn, index: int) -> bool:
    """Whether entry `index` states master data (names anyone may check a page against)."""
    found: bool = await conn.fetchval(
        "SELECT EXISTS (SELECT 1 FROM master_data WHERE idx = $1)", index
    )
    return found
