"""Who may say what: each claim judged believed or not, in the order things happened.

The table in docs/trust.md, implemented once:
- identity and origin (commissioning, transformation outputs, ILMD): the goods' prefix
  owner, or an enterprise it delegated;
- recalls and inspection verdicts (`recalled`, `conformant`, `non_conformant`, bizStep
  `inspecting`): the owner, or an authority;
- error declarations: the signer of the event declared erroneous, or an authority;
- destroyed, returned, sold, packing and unpacking another party's goods: a party
  holding them at that time by the log, or an authority;
- everything else (observations, shipping, receiving, transactions, transformation
  inputs) is the signer's account of its own work, believed as such; it never makes
  anyone the goods' producer, never sets their status, and moves custody only as below.

A party holds goods it owns (or was delegated), goods it recorded receiving, and goods
a shipment by their holder named it the destination of; holding a lot or a container is
holding what is in it. Claims are judged in time order, so custody is what the log showed *then*: a
backdated claim cannot lean on later events. Nothing is deleted: a claim not believed
stays in the log, and inspectors are shown the rule it broke.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable, Mapping
from dataclasses import dataclass, field

from traceledger.standards.gs1 import parse_index_key
from traceledger.trust.claims import Claim
from traceledger.trust.parties import Party
from traceledger.trust.roles import CREATED_BY_OBJECT_ADD, CREATED_BY_TRANSFORMATION, WHAT

VERDICT_DISPOSITIONS = frozenset({"recalled", "conformant", "non_conformant"})
SHIPPING_STEPS = frozenset({"shipping", "departing", "loading", "transporting"})
RECEIVING_STEPS = frozenset({"receiving", "arriving", "accepting", "unloading"})
# Claims only a holder (or the owner, or an authority) may make about goods.
CUSTODY_DISPOSITIONS = frozenset({"destroyed", "disposed", "returned", "retail_sold", "dispensed"})
CUSTODY_STEPS = frozenset({"destroying", "retail_selling", "dispensing", "packing", "unpacking"})

ORIGIN, VERDICT, CORRECTION, CUSTODY, UNSIGNED = (
    "origin",
    "verdict",
    "correction",
    "custody",
    "signature",
)


@dataclass(frozen=True, slots=True)
class Verdict:
    """Whether a claim is believed; if not, the rule it broke and why. A custody claim
    naming goods of which the signer held only some (a cage packed with a case it received
    and a case the item's history knows nothing of) is believed about those it held only:
    `refused` are the others."""

    believed: bool
    rule: str | None = None
    reason: str | None = None
    refused: frozenset[str] = frozenset()

    def about(self, key: str) -> bool:
        """Whether the claim is believed about the goods `key`."""
        return self.believed and key not in self.refused

    def to_json(self) -> dict[str, str | bool | None]:
        return {"entitled": self.believed, "rule": self.rule, "reason": self.reason}


BELIEVED = Verdict(True)


@dataclass(slots=True)
class _Custody:
    """Custody as the believed claims so far show it."""

    held: dict[int, set[str]] = field(default_factory=dict)  # party -> keys
    packed: dict[str, set[str]] = field(default_factory=dict)  # container -> contents
    packed_in: dict[str, set[str]] = field(default_factory=dict)  # contents -> containers
    lot_of: dict[str, str] = field(default_factory=dict)  # serial -> its lot

    def around(self, key: str) -> set[str]:
        """The keys whose holder holds `key`: itself, its lot, its class and the
        containers it is packed in (however deep)."""
        found = {key}
        parsed = parse_index_key(key)
        for wider in (parsed.lot_key(), parsed.class_key()) if parsed is not None else ():
            if wider is not None:
                found.add(wider.canonical())
        if key in self.lot_of:
            found.add(self.lot_of[key])
        todo = [key]
        while todo:
            for container in self.packed_in.get(todo.pop(), ()):
                if container not in found:
                    found.add(container)
                    todo.append(container)
        return found

    def within(self, keys: Iterable[str]) -> set[str]:
        """The keys and everything packed in them, however deep."""
        found, todo = set(), list(keys)
        while todo:
            key = todo.pop()
            if key not in found:
                found.add(key)
                todo += self.packed.get(key, ())
        return found

    def holds(self, party: int, key: str) -> bool:
        return bool(self.around(key) & self.held.get(party, set()))


class Judge:
    """Judges claims one by one in time order, keeping custody as it goes."""

    def __init__(self, parties: Mapping[int, Party]) -> None:
        self.parties = parties
        self.custody = _Custody()
        self.signers: dict[Hashable, int | None] = {}
        self.verdicts: dict[Hashable, Verdict] = {}
        # The custody the last judged claim gave (party -> keys), for readers that follow
        # who holds goods now (traceledger/inspect/holding.py).
        self.moved: dict[int, set[str]] = {}

    def judge(self, claim: Claim) -> Verdict:
        party = self.parties.get(claim.signer) if claim.signer is not None else None
        verdict = (
            Verdict(False, UNSIGNED, "no registered enterprise signed it")
            if party is None
            else self._entitled(claim, party)
        )
        self.signers[claim.id] = claim.signer
        self.verdicts[claim.id] = verdict
        self.moved = {}
        # A declaration says its original did not happen: believed or not, it moves no
        # goods (a copy of a receiving, it would otherwise hand them to its signer).
        if verdict.believed and party is not None and not claim.declaration:
            self._record(claim, party, verdict.refused)
        return verdict

    def _entitled(self, claim: Claim, party: Party) -> Verdict:
        if claim.declaration:
            return self._correction(claim, party)
        goods = [k for k, role in claim.keys if role in WHAT]
        created = set(_created(claim))
        for key in created:
            if not party.may_create(key):
                return Verdict(False, ORIGIN, f"only {key}'s owner may say what it is")
        if _is_verdict(claim):
            if party.is_authority:
                return BELIEVED
            for key in goods:
                if not party.owns(key):
                    return Verdict(False, VERDICT, f"only {key}'s owner or an authority may")
            return BELIEVED
        if party.is_authority or not _needs_custody(claim):
            return BELIEVED
        unheld = [k for k in goods if k not in created and not self._holds(party, k)]
        if not unheld:
            return BELIEVED
        reason = f"{party.name or party.id} did not hold {', '.join(unheld)}"
        return Verdict(len(unheld) < len(goods), CUSTODY, reason, frozenset(unheld))

    def _correction(self, claim: Claim, party: Party) -> Verdict:
        original = self.signers.get(claim.corrects) if claim.corrects is not None else None
        if claim.corrects is None or claim.corrects not in self.signers:
            return Verdict(False, CORRECTION, "it names no event its signer may retract")
        if party.is_authority or original == party.id:
            return BELIEVED
        return Verdict(False, CORRECTION, "only the original event's signer or an authority")

    def _holds(self, party: Party, key: str) -> bool:
        return party.may_create(key) or self.custody.holds(party.id, key)

    def _record(self, claim: Claim, party: Party, refused: frozenset[str]) -> None:
        custody = self.custody
        for key, role in claim.keys:
            if role == "lotMember":
                for serial in _created(claim):
                    custody.lot_of.setdefault(serial, key)
        goods = [k for k, role in claim.keys if role in WHAT and k not in refused]
        if claim.event_type == "AggregationEvent" and claim.action in ("ADD", "DELETE"):
            _pack(custody, claim, refused)
        moved = custody.within(goods)
        if claim.biz_step in SHIPPING_STEPS:
            # Only what the shipper held passes to the destination.
            sent = {k for k in moved if party.is_authority or self._holds(party, k)}
            for receiver in self._destinations(claim):
                custody.held.setdefault(receiver, set()).update(sent)
                self.moved[receiver] = sent
        elif claim.biz_step in RECEIVING_STEPS:
            custody.held.setdefault(party.id, set()).update(moved)
            self.moved[party.id] = moved

    def _destinations(self, claim: Claim) -> list[int]:
        places = [k for k, role in claim.keys if role == "destination"]
        return [p.id for p in self.parties.values() if any(p.owns(k) for k in places)]


def _created(claim: Claim) -> list[str]:
    if claim.event_type == "ObjectEvent" and claim.action == "ADD":
        return [k for k, role in claim.keys if role in CREATED_BY_OBJECT_ADD]
    if claim.event_type == "TransformationEvent":
        return [k for k, role in claim.keys if role in CREATED_BY_TRANSFORMATION]
    return []


def _needs_custody(claim: Claim) -> bool:
    packs = claim.event_type == "AggregationEvent" and claim.action in ("ADD", "DELETE")
    return packs or claim.disposition in CUSTODY_DISPOSITIONS or claim.biz_step in CUSTODY_STEPS


def _is_verdict(claim: Claim) -> bool:
    return claim.disposition in VERDICT_DISPOSITIONS or claim.biz_step == "inspecting"


def _pack(custody: _Custody, claim: Claim, refused: frozenset[str]) -> None:
    children = {k for k, role in claim.keys if role in ("child", "childClass")} - refused
    for parent in (k for k, role in claim.keys if role == "parent"):
        inside = custody.packed.setdefault(parent, set())
        for child in children:
            outside = custody.packed_in.setdefault(child, set())
            if claim.action == "ADD":
                inside.add(child)
                outside.add(parent)
            else:
                inside.discard(child)
                outside.discard(parent)


def judge(claims: Iterable[Claim], parties: Mapping[int, Party]) -> dict[Hashable, Verdict]:
    """Every claim's verdict. Claims are taken in time order (then by id), whatever order
    they come in."""
    judge = Judge(parties)
    for claim in sorted(claims, key=lambda c: (c.time, _order(c.id))):
        judge.judge(claim)
    return judge.verdicts


def _order(id: Hashable) -> tuple[str, int]:
    """Ids are (log origin, index) on the server; anything comparable elsewhere."""
    if isinstance(id, tuple) and len(id) == 2:
        return (str(id[0]), int(id[1]))
    return ("", int(id)) if isinstance(id, int) else (str(id), 0)
