"""Error declarations name the event they correct by eventID: which event is that?

A sender's eventID is not proof of anything: two enterprises may use the same one, and
one sender may reuse it for different events. So a declaration is matched only to
events of its own signer (an authority's, to anyone's), and when its eventID still
names several different events the declaration is refused rather than guessed at: the
sender can name the event by its hash ID, which names exactly one.

Matching uses the index, which trails the log by well under a second; the indexer
applies the same rule when it links a declaration (traceledger/ingest/indexer.py).
"""

from __future__ import annotations

from collections.abc import Mapping

from traceledger.errors import AmbiguousEventIDError
from traceledger.store.conn import Conn


async def check_declared_targets(
    conn: Conn,
    declared: Mapping[int, str],
    enterprise_id: int,
    is_authority: bool,
    pointer: str,
) -> None:
    """Refuse (422) declarations whose eventID names several events they may correct;
    `declared` maps each error declaration's position to the eventID it names."""
    if not declared:
        return
    rows = await conn.fetch(
        "SELECT event_id, array_agg(idx ORDER BY idx) AS candidates FROM events"
        " WHERE event_id = ANY($1::text[]) AND corrects IS NULL"
        " AND NOT declaration AND ($2 OR enterprise_id = $3)"
        " GROUP BY event_id HAVING count(*) > 1",
        sorted(set(declared.values())),
        is_authority,
        enterprise_id,
    )
    ambiguous = {r["event_id"]: list(r["candidates"]) for r in rows}
    errors: list[dict[str, object]] = [
        {
            "event": i,
            "pointer": f"{pointer}/{i}/eventID",
            "reason": (
                f"eventID {event_id} names {len(ambiguous[event_id])} different events "
                f"(indexes {', '.join(map(str, ambiguous[event_id]))}); declare the error "
                "with the hash ID of the one you mean"
            ),
            "candidates": ambiguous[event_id],
        }
        for i, event_id in sorted(declared.items())
        if event_id in ambiguous
    ]
    if errors:
        raise AmbiguousEventIDError(
            f"{len(errors)} error declaration(s) name an ambiguous eventID", errors
        )
