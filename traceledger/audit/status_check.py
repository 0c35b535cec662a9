"""Offline proof of what an answer says about an item: its status, producer and lot.

The proofs show each listed event is in the log; this module shows the answer drew the
right conclusions from them, with the same code the server uses (traceledger/trust).
From the proven payloads it re-judges each shown event's claim, and recomputes which
events were declared erroneous, the status block, the producer and the lot of a
serial. An answer whose stored status was edited (a recall removed) fails here.

Custody can depend on events outside the answer, so a custody verdict is taken on the
answer's word; the other rules (origin, verdicts, corrections, signatures) depend only on
the claim, its signer and the parties the answer names.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from traceledger.standards.epcis import ilmd_fact
from traceledger.trust.claims import Claim, from_event
from traceledger.trust.parties import Party
from traceledger.trust.rules import CUSTODY, judge
from traceledger.trust.status import creates_item, producer_event, status_of

# Status fields recomputed and compared (`expired` depends on the day it is read).
COMPARED = ("recalled", "recalls", "inspections", "destroyed", "returned")
EventKey = tuple[str, int]


def check_status(
    answer: Mapping[str, Any], proven: Mapping[EventKey, Mapping[str, Any]], top: str
) -> list[str]:
    """What the answer claims that its proven events do not support ([] if all holds).
    `proven` holds each event whose payload was checked against its leaf, by (log, index)."""
    events = [e for e in answer.get("events") or () if isinstance(e, Mapping)]
    try:
        parties = {p.id: p for p in map(Party.from_json, answer.get("parties") or ())}
    except ValueError as exc:
        return [f"parties: {exc}"]
    failures = _check_verdicts(events, proven, parties, top)
    failures += _check_erroneous(events, top)
    recomputed = status_of(events, _product(answer).get("expiryDate"), datetime.now(UTC).date())
    status = answer.get("status") or {}
    failures += [
        f"status.{name} says {status.get(name)!r}; its events say {recomputed[name]!r}"
        for name in COMPARED
        if status.get(name) != recomputed[name]
    ]
    return failures + _check_origin(answer, events, proven, top)


def _key(event: Mapping[str, Any], top: str) -> EventKey:
    return (str(event.get("log", top)), int(event.get("index", -1)))


def _product(answer: Mapping[str, Any]) -> Mapping[str, Any]:
    product = answer.get("product")
    return product if isinstance(product, Mapping) else {}


def _check_verdicts(
    events: Sequence[Mapping[str, Any]],
    proven: Mapping[EventKey, Mapping[str, Any]],
    parties: Mapping[int, Party],
    top: str,
) -> list[str]:
    claims: list[Claim] = []
    for e in events:
        payload = proven.get(_key(e, top))
        if payload is None:
            continue
        corrects = e.get("correctsIndex")
        target = (_key(e, top)[0], corrects) if isinstance(corrects, int) else None
        signer = e.get("signer") if isinstance(e.get("signer"), int) else None
        try:
            claims.append(from_event(payload, _key(e, top), signer, target))
        except (ValueError, KeyError, TypeError) as exc:
            return [f"event {_key(e, top)}: {exc}"]
    verdicts = judge(claims, parties)
    failures = []
    for e in events:
        verdict = verdicts.get(_key(e, top))
        if verdict is None or verdict.rule == CUSTODY:
            continue
        shown = e.get("entitled", True) is True
        if shown != verdict.believed:
            failures.append(
                f"event {_key(e, top)}: shown as {'believed' if shown else 'not believed'},"
                f" but the rules say {verdict.reason or 'it is'}"
            )
    return failures


def _check_erroneous(events: Sequence[Mapping[str, Any]], top: str) -> list[str]:
    """An event is erroneous exactly when a believed declaration in the answer says so."""
    declared = {
        (_key(e, top)[0], e["correctsIndex"])
        for e in events
        if isinstance(e.get("correctsIndex"), int) and e.get("entitled", True) is True
    }
    return [
        f"event {_key(e, top)}: erroneous is {bool(e.get('erroneous'))!r}, declarations say"
        f" {_key(e, top) in declared!r}"
        for e in events
        if bool(e.get("erroneous")) != (_key(e, top) in declared)
    ]


def _check_origin(
    answer: Mapping[str, Any],
    events: Sequence[Mapping[str, Any]],
    proven: Mapping[EventKey, Mapping[str, Any]],
    top: str,
) -> list[str]:
    """The producer is the signer of the first believed event that created the item or
    its lot; a serial's lot is one such event's ILMD lot."""
    failures = []
    product = _product(answer)
    first = producer_event(events)
    producer = product.get("producer")
    claimed = producer.get("name") if isinstance(producer, Mapping) else None
    who = first.get("who") if first is not None else None
    expected = who.get("name") if isinstance(who, Mapping) else None
    if claimed != expected:
        failures.append(f"product.producer is {claimed!r}; the creating events say {expected!r}")
    identifier = answer.get("identifier") or {}
    if identifier.get("lot") is None and product.get("lot") is not None:
        lots = {
            ilmd_fact(proven[_key(e, top)].get("ilmd"), "lotNumber")
            for e in events
            if creates_item(e) and e.get("entitled", True) is True and _key(e, top) in proven
        } - {None}
        if lots and product.get("lot") not in lots:
            failures.append(
                f"product.lot is {product.get('lot')!r}; the creating events say {lots}"
            )
    return failures
