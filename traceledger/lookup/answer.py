"""An item's history answer, from a walk: which events are believed, and what they show.

The walk gathers every event that could belong to the history; the trust rules
(traceledger/trust) judge each; a second walk over the believed ones decides what the
item's history is. The public sees believed events only; inspectors see the others too,
each with the rule it broke. Status, producer and lot come from believed events only.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from traceledger.accounts.parties import load_parties
from traceledger.accounts.provenance import provenance
from traceledger.lookup.walk import EventId, EventRow, Via, Walk
from traceledger.lookup.wording import local_iso
from traceledger.standards.epcis import CONFIDENTIAL_FIELD, NAMING_FIELDS, utc_iso
from traceledger.standards.gs1 import GS1Key
from traceledger.tlog.disclosure import fields_of
from traceledger.tlog.note import b64encode
from traceledger.trust.claims import Claim
from traceledger.trust.parties import Party
from traceledger.trust.rules import Verdict, judge
from traceledger.trust.status import CREATING, status_of


def _identifier_json(key: GS1Key) -> dict[str, Any]:
    return {
        "key": key.canonical(),
        "digitalLink": key.digital_link(),
        "level": key.level,
        "scheme": key.scheme,
        "gtin": key.key if key.scheme == "gtin" else None,
        "lot": key.lot,
        "serial": key.serial,
    }


# The event field each walk role of a place or a party is read from.
_FIELD_OF_ROLE = {
    "readPoint": "readPoint",
    "bizLocation": "bizLocation",
    "source": "sourceList",
    "destination": "destinationList",
}


def withheld(event: Mapping[str, Any], inspector: bool) -> frozenset[str]:
    """The top-level fields the public is not shown: those the sender marked confidential."""
    hidden = event.get(CONFIDENTIAL_FIELD)
    if inspector or not isinstance(hidden, list):
        return frozenset()
    return frozenset(h for h in hidden if isinstance(h, str)) - NAMING_FIELDS


def _public_event(event: Mapping[str, Any], inspector: bool) -> tuple[dict[str, Any], bool]:
    """The event as shown: fields its sender marked confidential are withheld."""
    names = withheld(event, inspector)
    return {k: v for k, v in event.items() if k not in names}, bool(event.get(CONFIDENTIAL_FIELD))


def _unless(hidden: frozenset[str], name: str, value: str | None) -> str | None:
    """An index column's value, unless the event's sender marked its field confidential."""
    return None if name in hidden else value


# What a version-2 leaf's event discloses: its fields' salts, and redacted fields' digests.
Salted = tuple[bytes, Mapping[str, bytes]]


def _disclosed(event: Mapping[str, Any], salted: Salted, hidden: frozenset[str]) -> dict[str, Any]:
    """A version-2 event as fields: each shown one with its salt (`[salt, name, canonical
    JSON]`), each withheld or redacted one as its bare digest, sorted so the order tells
    nothing (traceledger/tlog/disclosure.py)."""
    fields = fields_of(event, *salted)
    return {
        "disclosures": [
            [b64encode(f.salt), f.name, f.value.decode()]
            for f in fields
            if f.salt is not None and f.value is not None and f.name not in hidden
        ],
        "withheldDigests": sorted(
            b64encode(f.digest) for f in fields if f.salt is None or f.name in hidden
        ),
        "redacted": sorted(salted[1]),
        "payload": None,
    }


def _event_json(
    row: EventRow,
    via: Via,
    role: str,
    proof: list[bytes] | None,
    erroneous: bool,
    inspector: bool,
    salted: Salted | None = None,
) -> dict[str, Any]:
    leaf, payload = row.leaf or b"", row.payload
    event: dict[str, Any] = json.loads(payload) if payload is not None else {}
    shown, confidential = _public_event(event, inspector)
    hidden = withheld(event, inspector)
    # The sender as named in the event's own log (each shard has its own registry).
    who = row.who if row.enterprise_id else None
    return {
        "log": row.log,
        "index": row.idx,
        "eventID": row.event_id,
        **({} if row.event_id_verified is None else {"eventIDVerified": row.event_id_verified}),
        "provenance": provenance(row.submitted_with),
        "type": row.event_type,
        "action": row.action,
        # The index columns too: a confidential disposition is not shown (nor counted in
        # the public status, which verify-history recomputes from what is shown).
        "bizStep": _unless(hidden, "bizStep", row.biz_step),
        "disposition": _unless(hidden, "disposition", row.disposition),
        "eventTime": utc_iso(row.event_time),
        "eventTimeZoneOffset": shown.get("eventTimeZoneOffset"),
        "where": {
            "readPoint": _unless(hidden, "readPoint", row.read_point),
            "bizLocation": _unless(hidden, "bizLocation", row.biz_location),
        },
        "who": {"name": who[0], "role": who[1]} if who else None,
        "relation": via.relation,
        "via": via.via,
        # What the `via` key is in this event (epc, input, output, child, parent...).
        "role": role,
        "sources": [
            {"type": s.get("type"), "id": s.get("source")}
            for s in shown.get("sourceList") or ()
            if isinstance(s, Mapping)
        ],
        "destinations": [
            {"type": d.get("type"), "id": d.get("destination")}
            for d in shown.get("destinationList") or ()
            if isinstance(d, Mapping)
        ],
        "certifications": _certifications(shown),
        "ilmd": shown.get("ilmd"),
        # User extension fields (namespaced keys), e.g. a recall's reason.
        "extensions": {k: v for k, v in shown.items() if ":" in k and k != CONFIDENTIAL_FIELD},
        "erroneous": erroneous,
        "correctsIndex": row.corrects,
        "confidential": confidential,
        "leaf": b64encode(leaf),
        # The exact stored bytes make the event checkable against its leaf; withheld
        # when the sender marked fields confidential (the leaf still proves inclusion).
        "payload": b64encode(payload)
        if payload is not None and (inspector or not confidential)
        else None,
        # None only in answers made for the service's own use (HistoryService.lookup).
        "inclusionProof": None if proof is None else [b64encode(h) for h in proof],
    } | ({} if salted is None else _disclosed(event, salted, hidden))


def _certifications(event: Mapping[str, Any]) -> list[dict[str, Any]]:
    info = event.get("certificationInfo")
    items: Iterable[Any] = info if isinstance(info, list) else [info] if info else []
    out: list[dict[str, Any]] = []
    for item in items:
        if isinstance(item, str):
            out.append({"certificate": item})
        elif isinstance(item, Mapping):
            out.append(dict(item))
    return out


class _Provenance:
    """Who made the item, its lot and its inputs: facts of the events that created them."""

    def __init__(self, walk: Walk) -> None:
        self._walk = walk
        self._described: dict[frozenset[str], dict[str, Any]] = {}
        # Lots already listed with their own inputs: a lot reached again (a layered graph
        # reaches each lot by many paths) is listed by key only, so the tree's size is
        # linear in distinct lots, never in paths.
        self._expanded: set[str] = set()
        # Which events created which key, found once (the input tree asks about each key).
        self._created_by: dict[str, list[EventRow]] = {}
        retracted = {(r.log, r.corrects) for r in walk.events.values() if r.declaration}
        for row in sorted(walk.events.values(), key=lambda r: (r.event_time, r.idx)):
            # A declaration repeats the event it retracts; neither says what anything is.
            if row.declaration or row.id in retracted:
                continue
            for k, role in row.keys:
                if role in CREATING.get(row.event_type, ()) and (
                    row.event_type != "ObjectEvent" or row.action == "ADD"
                ):
                    self._created_by.setdefault(k, []).append(row)

    def describe(self, keys: set[str]) -> dict[str, Any]:
        """ILMD facts, producer, place and time of the events that created `keys`."""
        frozen = frozenset(keys)
        if frozen not in self._described:
            self._described[frozen] = self._describe(keys)
        return self._described[frozen]

    def _creating(self, keys: set[str]) -> list[EventRow]:
        rows = {r.id: r for k in keys for r in self._created_by.get(k, ())}
        return sorted(rows.values(), key=lambda r: (r.event_time, r.idx))

    def _describe(self, keys: set[str]) -> dict[str, Any]:
        facts: dict[str, Any] = {}
        first: EventRow | None = None
        place_hidden: frozenset[str] = frozenset()
        offset = None
        for row in self._creating(keys):
            event = json.loads(row.payload) if row.payload else {}
            shown, _ = _public_event(event, inspector=False)
            if first is None:
                first, offset = row, shown.get("eventTimeZoneOffset")
                place_hidden = withheld(event, inspector=False)
            ilmd = shown.get("ilmd")
            if isinstance(ilmd, Mapping):
                for k, v in ilmd.items():
                    facts.setdefault(k.rsplit(":", 1)[-1].rsplit("#", 1)[-1], v)
        producer = first.who if first and first.enterprise_id else None
        return {
            "facts": facts,
            "producer": producer[0] if producer else None,
            "producerId": first.enterprise_id if first else None,
            "place": (
                _unless(place_hidden, "bizLocation", first.biz_location)
                or _unless(place_hidden, "readPoint", first.read_point)
            )
            if first
            else None,
            # At the event's own offset, as its journey entry shows it.
            "commissionedAt": local_iso(first.event_time, offset) if first else None,
        }

    def inputs(self, of: str, seen: frozenset[str]) -> list[dict[str, Any]]:
        """The lots `of` was made from, recursively, each with what its creators said."""
        out = []
        for k in self._walk.input_tree.get(of, []):
            if k in seen:
                continue  # cycles are possible in bad data; never loop
            info = self.describe({k})
            again = k in self._expanded
            self._expanded.add(k)
            out.append(
                {
                    "key": k,
                    "product": info["facts"].get("regulatedProductName")
                    or info["facts"].get("productName"),
                    "producer": info["producer"],
                    "country": info["facts"].get("countryOfOrigin"),
                    # Listed once with its inputs; `listedAbove` where it appears again.
                    "inputs": [] if again else self.inputs(k, seen | {k}),
                }
                | ({"listedAbove": True} if again else {})
            )
        return out


def _product_and_origin(walk: Walk, key: GS1Key) -> tuple[dict[str, Any], dict[str, Any]]:
    """Product facts and origin from the (believed) events that created the item or its lot."""
    provenance = _Provenance(walk)
    own_keys = {key.item_key().canonical()}
    own_lot = key.lot_key()
    lot_key = own_lot.canonical() if own_lot is not None else walk.lot_of_item
    if lot_key:
        own_keys.add(lot_key)
    mine = provenance.describe(own_keys)
    # The same inputs are reached from the output lot and from each output serial.
    inputs = list(
        {
            i["key"]: i for k in sorted(own_keys) for i in provenance.inputs(k, frozenset(own_keys))
        }.values()
    )
    origin = {
        "producer": mine["producer"],
        "country": mine["facts"].get("countryOfOrigin"),
        "place": mine["place"],
        "commissionedAt": mine["commissionedAt"],
        "inputs": inputs,
    }
    return _product(key, mine, lot_key), origin


def _product(key: GS1Key, mine: Mapping[str, Any], lot_key: str | None) -> dict[str, Any]:
    """The product card: names, lot, dates and producer from the creating events' facts."""
    facts = mine["facts"]
    return {
        "name": facts.get("regulatedProductName")
        or facts.get("productName")
        or facts.get("descriptionShort"),
        "gtin": key.key if key.scheme == "gtin" else None,
        "lot": key.lot
        or facts.get("lotNumber")
        or (lot_key.rsplit("/", 1)[-1] if lot_key else None),
        "productionDate": facts.get("productionDate") or facts.get("harvestStartDate"),
        "expiryDate": facts.get("itemExpirationDate") or facts.get("bestBeforeDate"),
        "originCountry": facts.get("countryOfOrigin"),
        "producer": {"name": mine["producer"], "enterpriseId": mine["producerId"]}
        if mine["producer"]
        else None,
        "facts": facts,
    }


class Signers:
    """Who signed the gathered events, as parties the trust rules judge.

    Each log (time shard) has its own registry, so an enterprise id means something only
    within its log: the current log's ids are kept, a past log's signers get ids of
    their own (negative) for the length of one answer.
    """

    def __init__(self, ids: Mapping[tuple[str, int], int], parties: Mapping[int, Party]) -> None:
        self._ids = ids
        self.parties = parties

    @classmethod
    async def load(cls, sources: Sequence[tuple[str, Any]], rows: Iterable[EventRow]) -> Signers:
        current = sources[0][0]
        ids: dict[tuple[str, int], int] = {}
        for row in rows:
            if row.enterprise_id is not None and (row.log, row.enterprise_id) not in ids:
                mine = row.enterprise_id if row.log == current else -len(ids) - 1
                ids[(row.log, row.enterprise_id)] = mine
        parties: dict[int, Party] = {}
        for origin, conn in sources:
            wanted = [e for (log, e) in ids if log == origin]
            if not wanted:
                continue
            # Past shards are never migrated: one frozen before 0013 has no delegations.
            has_delegations = origin == current or bool(
                await conn.fetchval("SELECT to_regclass('delegations') IS NOT NULL")
            )
            found = await load_parties(conn, wanted, delegations=has_delegations)
            for e, party in found.items():
                parties[ids[(origin, e)]] = dataclasses.replace(party, id=ids[(origin, e)])
        return cls(ids, parties)

    def of(self, row: EventRow) -> int | None:
        if row.enterprise_id is None:
            return None
        return self._ids.get((row.log, row.enterprise_id))

    def claim(self, row: EventRow) -> Claim:
        corrects = (row.log, row.corrects) if row.corrects is not None else None
        return row.claim(row.id, self.of(row), corrects)


@dataclass(slots=True)
class Judged:
    """A gathered walk, its events judged, and the walk again over believed events."""

    gathered: Walk
    believed: Walk
    verdicts: Mapping[Any, Verdict]
    signers: Signers

    @classmethod
    def of(cls, key: GS1Key, gathered: Walk, signers: Signers) -> Judged:
        verdicts = judge((signers.claim(r) for r in gathered.events.values()), signers.parties)
        believed = Walk(gathered.sources, lambda row: verdicts[row.id])
        believed.replay(key, gathered.events.values())
        return cls(gathered, believed, verdicts, signers)

    def shown(self, inspector: bool) -> list[EventId]:
        """The events an answer lists: believed ones the item's history reaches; for
        inspectors also every claim not believed that names the item's goods."""
        ids = list(self.believed.events)
        if inspector:
            ids += [
                i
                for i in self.gathered.relation
                if i not in self.believed.events and not self._about_item(i)
            ]
            return ids
        return [i for i in ids if not self._found_by_secret(i)]

    def _found_by_secret(self, i: EventId) -> bool:
        """Whether the event is on a place's or party's page only through a field its
        sender marked confidential: listing it there would tell what the field says."""
        field = _FIELD_OF_ROLE.get(self._via(i)[1])
        payload = self.gathered.events[i].payload
        if field is None or payload is None or CONFIDENTIAL_FIELD.encode() not in payload:
            return False
        return field in withheld(json.loads(payload), inspector=False)

    def _about_item(self, i: EventId) -> bool:
        """Whether the claim is believed about the goods the gathering walk found it by."""
        return self.verdicts[i].about(self.gathered.named[i])

    def _via(self, i: EventId) -> tuple[Via, str]:
        walk = self.believed if i in self.believed.relation else self.gathered
        return walk.relation[i], walk.roles[i]

    def answer(
        self,
        key: GS1Key,
        covered: Sequence[EventId],
        proofs: Mapping[EventId, list[bytes]],
        inspector: bool,
        origins: Sequence[str],
        salted: Mapping[EventId, Salted] | None = None,
    ) -> dict[str, Any]:
        """The answer's content (the caller adds checkpoints): events, product, status."""
        rows = self.gathered.events
        erroneous = {
            (r.log, r.corrects)
            for r in self.believed.events.values()
            if r.corrects is not None and r.declaration
        }
        events = []
        for i in covered:
            via, role = self._via(i)
            shown = _event_json(
                rows[i], via, role, proofs.get(i), i in erroneous, inspector, (salted or {}).get(i)
            )
            shown["signer"] = self.signers.of(rows[i])
            if inspector:
                shown |= self.verdicts[i].to_json()
                shown["entitled"] = i in self.believed.events or self._about_item(i)
            events.append(shown)
        # At the same time, the older log's event first (it was recorded first).
        order = {origin: -n for n, origin in enumerate(origins)}
        events.sort(key=lambda e: (e["eventTime"], order[e["log"]], e["index"]))
        product, made = _product_and_origin(self.believed, key)
        signed = {e["signer"] for e in events}
        return {
            "identifier": _identifier_json(key),
            "product": product,
            "origin": made,
            "status": status_of(events, product.get("expiryDate"), datetime.now(UTC).date()),
            "events": events,
            "parties": [
                p.to_json() for i, p in sorted(self.signers.parties.items()) if i in signed
            ],
            "truncated": bool(self.gathered.truncated),
            "leftOut": self.gathered.truncated,
        }
