"""Names for places, parties and products, kept in the log like risk catalogs are.

Two sources, each one log entry per statement of names:
- a captured document's header (``epcisHeader.epcisMasterData``): capture appends the
  header's vocabulary list as an entry of the sender's own envelope, so the sender's
  signature covers it and the entry's inclusion proof shows the log recorded it;
- the registry (``traceledger location add``): the operator names an enterprise's site,
  and the ledger signs that statement with its log key, as it signs custody envelopes.

The indexer derives `master_data` from those entries in log order: one row per version
of an attribute, a new version only when the value changes. A sender is believed only
about identifiers under its own company prefixes (a competitor cannot rename another's
plant); the registry, which the operator keeps, about any registered enterprise's. What
nobody entitled has named stays unnamed, and pages show its code.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from traceledger.errors import IdentifierError, NotFoundError
from traceledger.log.sequencer import Appended, Entry, Sequencer
from traceledger.standards import dsse
from traceledger.standards.gs1 import GS1Key, parse_digital_link, parse_identifier, parse_index_key
from traceledger.standards.masterdata import (
    MASTER_DATA_TYPE,
    Statement,
    canonical,
    header_vocabularies,
    statements,
)
from traceledger.store.conn import Conn
from traceledger.tlog.leaf import sha256

log = logging.getLogger(__name__)

PAYLOAD_TYPE: Final = "application/vnd.traceledger.master-data+json"
MARKER: Final = json.dumps(MASTER_DATA_TYPE).encode()
FROM_DOCUMENT: Final = "document"
FROM_REGISTRY: Final = "registry"
LOCATION_VOCABULARY: Final = "urn:epcglobal:epcis:vtype:BusinessLocation"
NAME: Final = "urn:epcglobal:cbv:mda#name"
GS1_RESOLVER: Final = "https://id.gs1.org"


def header_entry(document: object, sender: str) -> tuple[bytes, bytes] | None:
    """(identity, payload) of the entry recording a document header's master data.

    The identity names the sender too: the same vocabulary from two senders is two
    statements (only one of them may be entitled), the same again from one a duplicate.
    """
    vocabularies = header_vocabularies(document)
    if vocabularies is None or not statements(vocabularies):
        return None
    payload = canonical(
        {"type": MASTER_DATA_TYPE, "source": FROM_DOCUMENT, "vocabularyList": vocabularies}
    )
    return sha256(MARKER + b"\x00" + sender.encode() + b"\x00" + payload), payload


def location_document(gln: str, names: Mapping[str, str]) -> dict[str, Any]:
    """The registry's statement naming one site, `names` by language ("" for no language)."""
    # A GLN's check digit is verified: a mistyped site must not get a name.
    key = (
        parse_digital_link(f"{GS1_RESOLVER}/414/{gln}") if gln.isdigit() else parse_identifier(gln)
    )
    if key is None or key.scheme != "gln":
        raise IdentifierError(f"{gln[:80]!r} is not a GLN")
    values = [
        {"@value": text, "@language": lang} if lang else text
        for lang, text in names.items()
        if text.strip()
    ]
    element = {"id": key.canonical(), "attributes": [{"id": NAME, "attribute": values}]}
    vocabulary = {"type": LOCATION_VOCABULARY, "vocabularyElementList": [element]}
    return {"type": MASTER_DATA_TYPE, "source": FROM_REGISTRY, "vocabularyList": [vocabulary]}


@dataclass(frozen=True, slots=True)
class Named:
    index: int
    status: str  # appended | duplicate


async def add_location(
    conn: Conn,
    sequencer: Sequencer,
    log_key: Ed25519PrivateKey,
    gln: str,
    names: Mapping[str, str],
) -> Named:
    """Name a registered enterprise's site: the ledger signs the statement and logs it."""
    document = location_document(gln, names)
    key = parse_index_key(document["vocabularyList"][0]["vocabularyElementList"][0]["id"])
    assert key is not None
    owner = await _owner(conn, key)
    if owner is None:
        raise NotFoundError(f"no registered enterprise holds the company prefix of GLN {key.key}")
    payload = canonical(document)
    envelope = dsse.sign(PAYLOAD_TYPE, payload, log_key).to_json()
    identity = sha256(MARKER + b"\x00" + payload)

    def receipt(appended: list[Appended], tree_size: int) -> bytes:
        status = "duplicate" if appended[0].duplicate else "appended"
        return json.dumps({"index": appended[0].index, "status": status}).encode()

    done = await sequencer.append_envelope(envelope, [Entry(identity, payload, envelope)], receipt)
    stated = json.loads(done.body)
    return Named(int(stated["index"]), str(stated["status"]))


async def _owner(conn: Conn, key: GS1Key) -> int | None:
    """The registered enterprise whose company prefix the key lies under."""
    rows = await conn.fetch("SELECT enterprise_id, prefix FROM enterprise_prefixes")
    owners = [r["enterprise_id"] for r in rows if key.owned_by(r["prefix"])]
    return owners[0] if owners else None


def _in_payload(payload: bytes) -> tuple[str, list[Any]] | None:
    """(source, vocabulary list) of a master data entry; None for any other entry."""
    if MARKER not in payload:
        return None
    try:
        obj = json.loads(payload)
    except ValueError:
        return None
    if not isinstance(obj, dict) or obj.get("type") != MASTER_DATA_TYPE:
        return None
    source, vocabularies = obj.get("source"), obj.get("vocabularyList")
    if source not in (FROM_DOCUMENT, FROM_REGISTRY) or not isinstance(vocabularies, list):
        return None
    return str(source), vocabularies


async def _entitled(conn: Conn, said: Sequence[Statement], signer: int | None) -> list[Statement]:
    """What the signer may say: about keys under its own company prefixes (the registry,
    signer None, about any key)."""
    if signer is None:
        return list(said)
    prefixes = [
        r["prefix"]
        for r in await conn.fetch(
            "SELECT prefix FROM enterprise_prefixes WHERE enterprise_id = $1", signer
        )
    ]

    def owned(statement: Statement) -> bool:
        key = parse_index_key(statement.key)
        return key is not None and any(key.owned_by(p) for p in prefixes)

    return [s for s in said if owned(s)]


async def index_entry(conn: Conn, idx: int, payload: bytes | None, signer: int | None) -> None:
    """Derive master_data rows from one log entry, if it states names (log order)."""
    found = _in_payload(payload) if payload is not None else None
    if found is None:
        return
    source, vocabularies = found
    # A document's names come from its signer; the registry's from nobody but the ledger.
    if (source == FROM_DOCUMENT) != (signer is not None):
        log.warning("entry %d: master data from %s with signer %s ignored", idx, source, signer)
        return
    if await conn.fetchval("SELECT EXISTS (SELECT 1 FROM master_data WHERE idx = $1)", idx):
        return  # indexed before a crash; the cursor had not moved
    said = await _entitled(conn, statements(vocabularies), signer)
    if not said:
        return
    current = {
        (r["key"], r["attribute"], r["lang"]): (r["value"], r["version"])
        for r in await conn.fetch(
            "SELECT DISTINCT ON (key, attribute, lang) key, attribute, lang, value, version"
            " FROM master_data WHERE key = ANY($1::text[])"
            " ORDER BY key, attribute, lang, version DESC",
            list({s.key for s in said}),
        )
    }
    rows = []
    for s in said:
        value, version = current.get((s.key, s.attribute, s.lang), (None, 0))
        if value != s.value:
            rows.append((s.key, s.attribute, s.lang, s.value, version + 1, idx, signer))
    if rows:
        await conn.copy_records_to_table(
            "master_data",
            records=rows,
            columns=["key", "attribute", "lang", "value", "version", "idx", "signer"],
        )
