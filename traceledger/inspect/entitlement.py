"""Whether a logged recall or inspection verdict is believed, so that it sends notices.

Everything signed is logged as evidence, but a recall or a `non_conformant` verdict only
reaches holders when its signer was entitled to say it about those goods. Today: an
enterprise registered as an authority (an inspection body, a regulator), or the company
whose GS1 prefixes own every GS1 identifier the event names as goods, the same rule
capture enforces before anything is logged.

TODO(issue 11): entitlement is decided by the trust package (traceledger/trust/): the
signer, the goods' prefix owner, custody by the log, delegations and the authority role.
Once it is merged, `recall_entitled` asks it; the notifier calls nothing else to decide.
"""

from __future__ import annotations

from collections.abc import Iterable

from traceledger.accounts.registry import get_enterprise
from traceledger.errors import RegistryError
from traceledger.standards.gs1 import parse_index_key
from traceledger.store.conn import Conn


async def recall_entitled(conn: Conn, signer: int | None, goods: Iterable[str]) -> bool:
    """Whether `signer` (an enterprise id; None for an unsigned entry) may recall, or find
    non-conformant, the goods named by these index keys."""
    if signer is None:
        return False
    try:
        enterprise = await get_enterprise(conn, signer)
    except RegistryError:
        return False
    if enterprise.is_authority:
        return True
    keys = [parse_index_key(k) for k in goods]
    return all(k is None or any(k.owned_by(p) for p in enterprise.prefixes) for k in keys)
