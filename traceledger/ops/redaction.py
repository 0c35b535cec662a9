"""Redaction: erase one field of a stored event (personal data, a court order) for good.

Only a version-2 leaf allows it: the leaf commits to each field's salted digest
(traceledger/tlog/disclosure.py), so the field's value and salt can go while its digest
stays (table `redactions`), and the leaf, the tree and every proof still verify. The
value also goes from wherever else the store keeps it: the envelope the event came in
(erased whole: it is one signed document; its hash stays in the leaf), the event index
(its columns and keys), and prebuilt answers. The redaction itself is a log entry saying
who, when and why; it names the field, never the value.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from traceledger.errors import RedactionError
from traceledger.log.sequencer import Entry, Sequencer
from traceledger.standards.epcis import NAMING_FIELDS, now_utc, utc_iso
from traceledger.store.conn import Conn
from traceledger.tlog.disclosure import SALT_SIZE, fields_of
from traceledger.tlog.leaf import DISCLOSURE_VERSION, Leaf, sha256
from traceledger.trust.claims import keys_of

RECORD_TYPE = "traceledger:Redaction"
# The index columns read from a field (traceledger/ingest/indexer.py).
_COLUMNS = {
    "bizStep": "biz_step",
    "disposition": "disposition",
    "readPoint": "read_point",
    "bizLocation": "biz_location",
}


@dataclass(frozen=True, slots=True)
class Redacted:
    index: int
    field: str
    record_index: int  # the log entry saying who, when and why


async def redact(
    sequencer: Sequencer, conn: Conn, index: int, field: str, reason: str, by: str
) -> Redacted:
    """Erase `field` of entry `index`, then log the redaction.

    Erased first: an answer assembled from the old data began its walk before the
    redaction's entry was appended, so lookups take it as stale (traceledger/lookup). A
    redaction whose entry did not get appended is finished by running it again."""
    pending = await conn.fetchval(
        "SELECT digest FROM redactions WHERE idx = $1 AND field = $2 AND entry IS NULL",
        index,
        field,
    )
    if pending is None:
        async with conn.transaction():
            event, salts, leaf = await _stored(conn, index)
            if field not in event:
                raise RedactionError(f"entry {index} has no field {field!r} (or had it erased)")
            if field in NAMING_FIELDS:
                raise RedactionError(f"{field!r} names the event in every answer; never redacted")
            pending = _digest(event, salts, field)
            await _erase(conn, index, event, salts, field, pending)
            await _unindex(conn, index, event, field)
            await conn.execute(
                "UPDATE envelopes SET body = NULL WHERE hash = $1", leaf.envelope_hash
            )
            await conn.execute("DELETE FROM prebuilt_answers")
    record = {
        "type": RECORD_TYPE,
        "redacts": {"index": index, "field": field, "digest": bytes(pending).hex()},
        "reason": reason,
        "by": by,
        "at": utc_iso(now_utc()),
    }
    # The same redaction retried dedups to its first record.
    identity = sha256(b"traceledger redaction\x00" + index.to_bytes(8, "big") + field.encode())
    payload = json.dumps(record, ensure_ascii=False, separators=(",", ":")).encode()
    [appended] = await sequencer.append([Entry(identity, payload)])
    await conn.execute(
        "UPDATE redactions SET entry = $3 WHERE idx = $1 AND field = $2",
        index,
        field,
        appended.index,
    )
    return Redacted(index, field, appended.index)


async def _stored(conn: Conn, index: int) -> tuple[dict[str, Any], bytes, Leaf]:
    row = await conn.fetchrow(
        "SELECT leaf, payload, salts FROM entries WHERE idx = $1 FOR UPDATE", index
    )
    if row is None:
        raise RedactionError(f"no entry at index {index}")
    leaf = Leaf.decode(bytes(row["leaf"]), index=index)
    if leaf.version != DISCLOSURE_VERSION or row["salts"] is None:
        raise RedactionError(
            f"entry {index} has a version-{leaf.version} leaf, which commits to the whole"
            " payload: a field cannot be erased without breaking it"
        )
    if row["payload"] is None:
        raise RedactionError(f"entry {index} holds no payload")
    event = json.loads(bytes(row["payload"]))
    if not isinstance(event, dict):
        raise RedactionError(f"entry {index} is not an event")
    return event, bytes(row["salts"]), leaf


def _digest(event: Mapping[str, Any], salts: bytes, field: str) -> bytes:
    for f in fields_of(event, salts, {}):
        if f.name == field:
            return f.digest
    raise RedactionError(f"no salt for {field!r}")  # unreachable: fields_of checked the fit


async def _erase(
    conn: Conn,
    index: int,
    event: dict[str, Any],
    salts: bytes,
    field: str,
    digest: bytes,
) -> None:
    """The event without the field, the salts without its salt, its digest kept."""
    at = sorted(event).index(field)
    kept_salts = salts[: at * SALT_SIZE] + salts[(at + 1) * SALT_SIZE :]
    kept = {k: v for k, v in event.items() if k != field}
    payload = json.dumps(kept, ensure_ascii=False, separators=(",", ":")).encode()
    await conn.execute(
        "UPDATE entries SET payload = $2, salts = $3 WHERE idx = $1", index, payload, kept_salts
    )
    await conn.execute(
        "INSERT INTO redactions (idx, field, digest) VALUES ($1, $2, $3)",
        index,
        field,
        digest,
    )


async def _unindex(conn: Conn, index: int, event: Mapping[str, Any], field: str) -> None:
    """Drop from the event index what only the erased field said."""
    column = _COLUMNS.get(field)
    if column is not None:
        await conn.execute(f"UPDATE events SET {column} = NULL WHERE idx = $1", index)  # noqa: S608 - a fixed column name
    # The keys as the indexer derives them (lot memberships, from the ILMD, included).
    gone = set(keys_of(event)) - set(keys_of({k: v for k, v in event.items() if k != field}))
    for key, role in gone:
        await conn.execute(
            "DELETE FROM event_keys WHERE idx = $1 AND key = $2 AND role = $3", index, key, role
        )
