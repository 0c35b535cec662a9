"""EPCIS 2.0 events beyond the schema: identifiers, vocabulary, time, and who may say what.

The JSON Schema checks shape; this module checks meaning. It finds every identifier an
event mentions (with its role and JSON pointer), normalizes GS1 identifiers to keys,
checks CBV values, event times and units, and decides whether a signer may record the
event: identifiers an event *creates* must lie under the signer's own company prefixes,
or prefixes their owner delegated to the signer.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from traceledger.errors import IdentifierError
from traceledger.standards import cbv
from traceledger.standards.gs1 import GS1Key, parse_identifier
from traceledger.standards.schemas import Violation

EVENT_TYPES = (
    "ObjectEvent",
    "AggregationEvent",
    "TransformationEvent",
    "TransactionEvent",
    "AssociationEvent",
)
# Verdicts the public relies on: about someone else's goods, only an authority (an
# inspection body or regulator) may record an inspection outcome or a recall. Anyone may
# record that goods were inspected, held or destroyed while handling them.
AUTHORITY_DISPOSITIONS = frozenset({"recalled", "conformant", "non_conformant"})

# The earliest eventTime or declarationTime accepted.
EARLIEST_TIME = datetime(1900, 1, 1, tzinfo=UTC)

_UOM = re.compile(r"^[A-Z0-9]{2,3}$")  # UN/ECE Recommendation 20 common codes


@dataclass(frozen=True, slots=True)
class Mention:
    """One identifier an event names."""

    uri: str
    key: GS1Key | None  # None for identifiers outside GS1 (urn:uuid:, private URLs)
    role: str  # epc, class, parent, child, childClass, input, inputClass, output, outputClass,
    #            readPoint, bizLocation, source, destination
    pointer: str  # JSON pointer inside the event


@dataclass(frozen=True, slots=True)
class CheckedEvent:
    event: Mapping[str, Any]
    mentions: tuple[Mention, ...]
    biz_step: str | None  # CBV short name, or the extension URI as given
    disposition: str | None
    event_time: datetime


def ilmd_fact(ilmd: Mapping[str, Any] | None, name: str) -> Any:
    """An ILMD attribute by CBV name, however the sender prefixed it."""
    if not isinstance(ilmd, Mapping):
        return None
    for key in (
        f"cbvmda:{name}",
        name,
        f"urn:epcglobal:cbv:mda:{name}",
        f"urn:epcglobal:cbv:mda#{name}",
        f"https://ref.gs1.org/cbv/mda/{name}",
    ):
        if key in ilmd:
            return ilmd[key]
    for key, value in ilmd.items():
        if isinstance(key, str) and key.rsplit(":", 1)[-1] == name:
            return value
    return None


def parse_time(value: object) -> datetime:
    if not isinstance(value, str):
        raise ValueError("must be an RFC 3339 date-time string")  # noqa: TRY004 - a value error to callers
    text = value.replace("Z", "+00:00").replace("z", "+00:00")
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        raise ValueError("needs a time zone offset or Z")
    return parsed


_IDENTIFIER_FIELDS: tuple[tuple[str, str, bool], ...] = (
    # (field, role, is a list)
    ("epcList", "epc", True),
    ("parentID", "parent", False),
    ("childEPCs", "child", True),
    ("inputEPCList", "input", True),
    ("outputEPCList", "output", True),
)
_QUANTITY_FIELDS = (
    ("quantityList", "class"),
    ("childQuantityList", "childClass"),
    ("inputQuantityList", "inputClass"),
    ("outputQuantityList", "outputClass"),
)


def raw_mentions(event: Mapping[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(uri, role, pointer) for every identifier field present."""
    for field, role, many in _IDENTIFIER_FIELDS:
        value = event.get(field)
        if value is None:
            continue
        if many and isinstance(value, list):
            for i, uri in enumerate(value):
                yield uri, role, f"/{field}/{i}"
        elif not many:
            yield value, role, f"/{field}"
    for field, role in _QUANTITY_FIELDS:
        for i, q in enumerate(event.get(field) or ()):
            if isinstance(q, Mapping) and "epcClass" in q:
                yield q["epcClass"], role, f"/{field}/{i}/epcClass"
    for field in ("readPoint", "bizLocation"):
        place = event.get(field)
        if isinstance(place, Mapping) and "id" in place:
            yield place["id"], field, f"/{field}/id"
    for field, role, inner in (
        ("sourceList", "source", "source"),
        ("destinationList", "destination", "destination"),
    ):
        for i, item in enumerate(event.get(field) or ()):
            if isinstance(item, Mapping) and inner in item:
                yield item[inner], role, f"/{field}/{i}/{inner}"


def check_event(
    event: Mapping[str, Any], index: int, *, now: datetime, max_future_skew: float
) -> tuple[CheckedEvent | None, list[Violation]]:
    """Semantic checks for one schema-valid event; violations point into the document."""
    base = f"/epcisBody/eventList/{index}"
    problems: list[Violation] = []

    def bad(pointer: str, reason: str) -> None:
        problems.append(Violation(index, base + pointer, reason))

    mentions: list[Mention] = []
    for uri, role, pointer in raw_mentions(event):
        if not isinstance(uri, str):
            bad(pointer, "an identifier must be a string")
            continue
        try:
            key = parse_identifier(uri)
        except IdentifierError as exc:
            bad(pointer, str(exc))
            continue
        if (
            key is not None
            and role in ("epc", "parent", "child", "input", "output")
            and key.level != "instance"
        ):
            bad(pointer, f"{uri} names a class or lot; put it in a quantity list")
            continue
        if key is not None and role.endswith("lass") and key.level == "instance":
            bad(pointer, f"{uri} names one instance; an epcClass names a class or lot")
            continue
        mentions.append(Mention(uri, key, role, pointer))

    for field, _ in _QUANTITY_FIELDS:
        for i, q in enumerate(event.get(field) or ()):
            uom = q.get("uom") if isinstance(q, Mapping) else None
            if uom is not None and not (isinstance(uom, str) and _UOM.match(uom)):
                bad(f"/{field}/{i}/uom", f"unit {uom!r} is not a UN/ECE Rec 20 code like KGM")

    vocab: dict[str, str | None] = {"bizStep": None, "disposition": None}
    for field in vocab:
        value = event.get(field)
        if value is None:
            continue
        try:
            vocab[field] = cbv.normalize(field, value)
        except ValueError as exc:
            bad(f"/{field}", str(exc))
    persistent = event.get("persistentDisposition")
    if isinstance(persistent, Mapping):
        for op in ("set", "unset"):
            for i, value in enumerate(persistent.get(op) or ()):
                try:
                    cbv.normalize("disposition", value)
                except ValueError as exc:
                    bad(f"/persistentDisposition/{op}/{i}", str(exc))
    for field, vocab_name, inner in (
        ("bizTransactionList", "bizTransactionType", "type"),
        ("sourceList", "sourceDestType", "type"),
        ("destinationList", "sourceDestType", "type"),
    ):
        for i, item in enumerate(event.get(field) or ()):
            if isinstance(item, Mapping) and item.get(inner) is not None:
                try:
                    cbv.normalize(vocab_name, item[inner])
                except ValueError as exc:
                    bad(f"/{field}/{i}/{inner}", str(exc))
    declaration = event.get("errorDeclaration")
    if isinstance(declaration, Mapping) and declaration.get("reason") is not None:
        try:
            cbv.normalize("errorReason", declaration["reason"])
        except ValueError as exc:
            bad("/errorDeclaration/reason", str(exc))

    event_time = _checked_time(event.get("eventTime"), "/eventTime", now, max_future_skew, bad)
    if isinstance(declaration, Mapping):
        when = declaration.get("declarationTime")
        _checked_time(when, "/errorDeclaration/declarationTime", now, max_future_skew, bad)

    _check_required(event, bad)
    _check_public_verdict(event, vocab["bizStep"], vocab["disposition"], bad)
    if problems:
        return None, problems
    return CheckedEvent(
        event, tuple(mentions), vocab["bizStep"], vocab["disposition"], event_time
    ), []


CONFIDENTIAL_FIELD = "traceledger:confidential"
# What names an event in every answer and in the index: never withheld, never redacted.
NAMING_FIELDS = frozenset({"type", "eventTime", "eventID", "action"})
# What makes an event a recall or a verdict, which shoppers and inspectors must be shown.
_VERDICT_FIELDS = ("bizStep", "disposition", "epcList", "quantityList")


def _check_public_verdict(
    event: Mapping[str, Any], biz_step: str | None, disposition: str | None, bad: Any
) -> None:
    """A recall or an inspection verdict is public by nature: a sender may keep its
    extensions confidential, never what makes it a recall or about which goods."""
    hidden = event.get(CONFIDENTIAL_FIELD)
    if not isinstance(hidden, list):
        return
    if disposition not in AUTHORITY_DISPOSITIONS and biz_step != "inspecting":
        return
    for name in (n for n in _VERDICT_FIELDS if n in hidden):
        bad(
            f"/{CONFIDENTIAL_FIELD}",
            f"a recall or inspection verdict cannot keep {name} confidential: "
            "the public status is computed from it",
        )


def _checked_time(
    value: object, pointer: str, now: datetime, max_future_skew: float, bad: Any
) -> datetime:
    """A time the event states, between 1900 and the ledger's clock (plus the skew it
    allows); `now` stands in for one refused."""
    name = pointer.rsplit("/", 1)[-1]
    try:
        moment = parse_time(value)
    except ValueError as exc:
        bad(pointer, f"{name} {exc}")
        return now
    if moment < EARLIEST_TIME:
        # Nothing traced was made before 1900, and times near year 1 overflow once moved
        # to UTC, or are stored as -infinity.
        bad(pointer, f"{name} {value} is before {utc_iso(EARLIEST_TIME)}")
        return now
    if moment > now + timedelta(seconds=max_future_skew):
        bad(
            pointer,
            f"{name} {value} is in the future "
            f"(more than {max_future_skew:g} s ahead of the ledger's clock)",
        )
    return moment


def _check_required(event: Mapping[str, Any], bad: Any) -> None:
    """What the schema cannot say. (An ObjectEvent may name no object: sensor-only
    events in the official examples do exactly that.)"""
    kind = event.get("type")
    if kind == "TransformationEvent" and not any(
        event.get(f)
        for f in ("inputEPCList", "inputQuantityList", "outputEPCList", "outputQuantityList")
    ):
        bad("", "a TransformationEvent needs inputs or outputs")
    if (
        kind in ("AggregationEvent", "AssociationEvent")
        and event.get("action") in ("ADD", "DELETE")
        and not event.get("parentID")
    ):
        bad("/parentID", f"an {kind} with action {event.get('action')} needs a parentID")


def created_mentions(checked: CheckedEvent) -> list[Mention]:
    """Identifiers this event brings into being (so only their owner may record it)."""
    event = checked.event
    kind, action = event.get("type"), event.get("action")
    return [
        m
        for m in checked.mentions
        if (kind == "ObjectEvent" and action == "ADD" and m.role in ("epc", "class"))
        or (kind == "TransformationEvent" and m.role in ("output", "outputClass"))
        or (
            kind in ("AggregationEvent", "AssociationEvent")
            and action == "ADD"
            and m.role == "parent"
        )
        or ("ilmd" in event and m.role in ("epc", "class", "output", "outputClass"))
    ]


def authority_only(checked: CheckedEvent) -> bool:
    return checked.disposition in AUTHORITY_DISPOSITIONS


def authorization_errors(
    checked: CheckedEvent,
    index: int,
    prefixes: Sequence[str],
    is_authority: bool,
    delegated: Sequence[str] = (),
) -> list[Violation]:
    """Why this signer may not record this event ([] when it may). `delegated` are other
    owners' prefixes this signer may create goods under (a contract manufacturer's)."""

    def owned(m: Mention, also: Sequence[str] = ()) -> bool:
        return m.key is None or any(m.key.owned_by(p) for p in (*prefixes, *also))

    base = f"/epcisBody/eventList/{index}"
    errors = [
        Violation(
            index,
            base + m.pointer,
            f"{m.uri} is not under your company prefixes or ones delegated to you, "
            "and this event creates it",
        )
        for m in created_mentions(checked)
        if not owned(m, delegated)
    ]
    if not is_authority and authority_only(checked):
        what = checked.disposition
        errors += [
            Violation(
                index,
                base + m.pointer,
                f"only an authority may record '{what}' about {m.uri}, "
                "which is not under your company prefixes",
            )
            for m in checked.mentions
            if m.role not in ("readPoint", "bizLocation", "source", "destination") and not owned(m)
        ]
    return errors


def now_utc() -> datetime:
    return datetime.now(UTC)


def utc_iso(moment: datetime) -> str:
    """An EPCIS date-time in UTC, `Z`-suffixed, as every answer writes times."""
    return aware(moment).astimezone(UTC).isoformat().replace("+00:00", "Z")


def aware(moment: datetime) -> datetime:
    """A stored time as an aware datetime. The driver hands PostgreSQL's -infinity and
    infinity (which capture refuses, but a database may hold) over as naive
    datetime.min and datetime.max: read them as UTC, so no stored row makes a
    comparison or a rendering raise."""
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)
