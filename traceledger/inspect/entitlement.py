"""Whether a logged recall or inspection verdict is believed: the trust rules decide.

Everything signed is logged as evidence, but a recall or a `non_conformant` verdict only
lists among the recalls in force and reaches holders when its signer was entitled to say
it about those goods (traceledger/trust/rules.py): an enterprise registered as an
authority (an inspection body, a regulator), or the owner of the GS1 company prefix of
every identifier the event names as goods. A delegation lets a contract manufacturer say
what the brand's goods are; it does not let it recall them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from traceledger.accounts.parties import load_parties
from traceledger.store.conn import Conn
from traceledger.trust.claims import Claim
from traceledger.trust.parties import Party
from traceledger.trust.roles import goods
from traceledger.trust.rules import Judge, Verdict

PAGE = 200  # recalls judged per round trip while filling a list


def verdict_of(claim: Claim, parties: Mapping[int, Party]) -> Verdict:
    """A claim judged on its own, for the rules that need no custody: a recall's or a
    verdict's entitlement, the origin a creating event may state."""
    return Judge(parties).judge(claim)


async def recall_entitled(conn: Conn, signer: int | None, goods: Iterable[str]) -> bool:
    """Whether `signer` (an enterprise id; None for an unsigned entry) may recall, or find
    non-conformant, the goods named by these index keys."""
    parties = await load_parties(conn, [signer]) if signer is not None else {}
    keys = tuple((k, "epc") for k in goods)
    claim = Claim(0, signer, datetime.now(UTC), "ObjectEvent", "OBSERVE", None, "recalled", keys)
    return verdict_of(claim, parties).believed


@dataclass(frozen=True, slots=True)
class LoggedRecall:
    """A recall in force (not retracted by a declaration the index linked to it)."""

    idx: int
    event_time: datetime
    signer: int | None
    signer_name: str | None
    goods: tuple[str, ...]
    verdict: Verdict


async def recalls_in_force(conn: Conn, limit: int) -> tuple[list[LoggedRecall], list[LoggedRecall]]:
    """The newest `limit` believed recalls, and (at most `limit`) not believed ones met on
    the way, newest first."""
    believed: list[LoggedRecall] = []
    refused: list[LoggedRecall] = []
    before: tuple[datetime, int] | None = None
    while len(believed) < limit:
        rows = await _recall_rows(conn, before)
        if not rows:
            break
        parties = await load_parties(conn, {r["enterprise_id"] for r in rows} - {None})
        for r in rows:
            recall = _logged(r, parties)
            mine = believed if recall.verdict.believed else refused
            if len(mine) < limit:
                mine.append(recall)
        before = (rows[-1]["event_time"], rows[-1]["idx"])
    return believed, refused


async def _recall_rows(conn: Conn, before: tuple[datetime, int] | None) -> Sequence[Any]:
    return await conn.fetch(
        "SELECT e.idx, e.event_time, e.event_type, e.action, e.biz_step, e.disposition,"
        " e.enterprise_id, e.declaration, e.corrects, en.name, k.keys, k.roles"
        " FROM events e LEFT JOIN enterprises en ON en.id = e.enterprise_id"
        " CROSS JOIN LATERAL (SELECT array_agg(x.key) AS keys, array_agg(x.role) AS roles"
        "                     FROM event_keys x WHERE x.idx = e.idx) k"
        " WHERE e.disposition = 'recalled' AND e.corrects IS NULL"
        " AND NOT EXISTS (SELECT 1 FROM events d WHERE d.corrects = e.idx)"
        " AND ($1::timestamptz IS NULL OR (e.event_time, e.idx) < ($1, $2))"
        " ORDER BY e.event_time DESC, e.idx DESC LIMIT $3",
        before[0] if before else None,
        before[1] if before else 0,
        PAGE,
    )


def _logged(r: Any, parties: Mapping[int, Party]) -> LoggedRecall:
    keys = tuple(zip(r["keys"] or (), r["roles"] or (), strict=True))
    claim = Claim(
        r["idx"],
        r["enterprise_id"],
        r["event_time"],
        r["event_type"],
        r["action"],
        r["biz_step"],
        r["disposition"],
        keys,
        bool(r["declaration"]),
        r["corrects"],
    )
    return LoggedRecall(
        r["idx"],
        r["event_time"],
        r["enterprise_id"],
        r["name"],
        tuple(goods(keys)),
        verdict_of(claim, parties),
    )
