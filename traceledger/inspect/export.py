"""Exports of a lot's trace record: an EPCIS 2.0 document and a sortable spreadsheet.

The EPCIS document carries every event concerning the lot (its verifiable history:
the lot, its containers and upstream input lots) and its serials, exactly as captured,
under the namespace prefixes their own documents declared, so each event hashes to the
same EPCIS event ID anywhere: re-importing the document into any EPCIS 2.0 repository
(ours included, where every event is then a duplicate) reproduces the record.

The CSV is one row per (event, identifier or quantity line) with the key data elements
of each critical tracking event (what, which lot, how much, where, when, from, to, who,
which documents), in the spirit of the FDA FSMA 204 electronic sortable spreadsheet.
"""

from __future__ import annotations

import csv
import io
import json
import logging
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import asyncpg

from traceledger.errors import IdentifierError, NotFoundError, RangeError, TraceledgerError
from traceledger.ingest.envelopes import stored_document
from traceledger.inspect.holding import Custody, parties_for
from traceledger.inspect.visibility import Viewer, shown_event
from traceledger.log.reader import LogReader
from traceledger.lookup.history import HistoryService
from traceledger.lookup.names import read_names
from traceledger.lookup.walk import BEGINNING, FOREVER, MAX_DEPTH, EventRow, events_naming
from traceledger.lookup.walk import MAX_EVENTS as HISTORY_LIMIT
from traceledger.standards import cbv
from traceledger.standards.epcis import ilmd_fact
from traceledger.standards.eventhash import document_context
from traceledger.standards.gs1 import GS1Key, parse_identifier
from traceledger.trust.roles import WHAT

log = logging.getLogger(__name__)

EPCIS_CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
TRACELEDGER_NS = "https://traceledger.dev/voc/"  # our own terms (as the demo declares them)
MAX_EXPORT_EVENTS = 10_000  # one EPCIS document; our own capture takes at most this many
CSV_COLUMNS = (
    "event_index",
    "event_id",
    "event_type",
    "cte",
    "biz_step",
    "disposition",
    "action",
    "event_time_utc",
    "event_time_local",
    "traceability_lot_code",
    "product_gtin",
    "serial_number",
    "identifier",
    "line_role",
    "product_description",
    "quantity",
    "unit_of_measure",
    "location",
    "location_description",
    "read_point",
    "from",
    "to",
    "recorded_by",
    "reference_documents",
)
# Critical tracking events (FSMA 204 vocabulary where it has a word) by CBV business step.
_CTE = {
    "commissioning": "creation",
    "creating_class_instance": "creation",
    "shipping": "shipping",
    "departing": "shipping",
    "receiving": "receiving",
    "arriving": "receiving",
    "accepting": "receiving",
    "packing": "packing",
    "unpacking": "unpacking",
    "inspecting": "inspection",
    "destroying": "destruction",
    "retail_selling": "retail_sale",
    "storing": "storage",
}
# Spreadsheets run cells starting with these as formulas (OWASP "CSV injection").
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_PRODUCT_NAMES = ("regulatedProductName", "productName", "descriptionShort")
_LINES = (
    # (field, role, holds quantities, is a list)
    ("epcList", "epc", False, True),
    ("parentID", "parent", False, False),
    ("childEPCs", "child", False, True),
    ("inputEPCList", "input", False, True),
    ("outputEPCList", "output", False, True),
    ("quantityList", "class", True, True),
    ("childQuantityList", "childClass", True, True),
    ("inputQuantityList", "inputClass", True, True),
    ("outputQuantityList", "outputClass", True, True),
)
_CREATED_ROLES = ("epc", "class", "output", "outputClass")
_OFFSET = re.compile(r"([+-])([0-9]{2}):([0-9]{2})")
_PREFIXED = re.compile(r"([A-Za-z_][A-Za-z0-9_.\-]*):(.+)", re.DOTALL)


@dataclass(slots=True)
class ExportedEvent:
    idx: int
    event_time: datetime
    event: dict[str, Any]  # as shown to the viewer
    signer: int | None
    context: dict[str, str]  # namespace prefixes its own document declared


@dataclass(slots=True)
class LotExport:
    key: GS1Key
    events: list[ExportedEvent]
    names: dict[int, str]  # enterprise id -> name
    serial_lots: dict[str, str]  # serial key -> lot, for serials whose EPC carries no lot
    location_owners: dict[str, str] = field(default_factory=dict)  # GLN -> enterprise name
    # For officials: claims about the lot the trust rules do not believe (left out of the
    # events), each with the rule it broke.
    not_believed: list[dict[str, Any]] = field(default_factory=list)


def may_export(viewer: Viewer, key: GS1Key) -> bool:
    """Officials may export anything; an enterprise what lies under its own prefixes."""
    return viewer.sees_everything() or viewer.owns(key)


class ExportService:
    def __init__(self, pool: asyncpg.Pool, reader: LogReader, history: HistoryService) -> None:
        self._pool = pool
        self._reader = reader
        self._history = history

    async def collect(self, key: GS1Key, viewer: Viewer) -> LotExport:
        """Every recorded event concerning `key` (and, for a lot, its serials).

        Only events under a signed checkpoint are exported, as in the history.
        """
        try:
            history = await self._history.history(key, inspector=True, proofs=False)
        except NotFoundError:
            # Nothing names the lot itself; its serials may still have been made.
            history = {"events": [], "pending": 0, "treeSize": None}
        if len(history["events"]) + history["pending"] >= HISTORY_LIMIT:
            raise _too_many(key)  # the history stopped short: never export part of it
        size: int = history["treeSize"] or (await self._reader.checkpoint()).size
        # The history follows the goods and believes what the trust rules believe; what
        # it lists for inspectors but does not believe is left out, and named apart.
        wanted = {int(e["index"]) for e in history["events"] if e.get("entitled", True) is True}
        refused = {
            int(e["index"]): {"rule": e.get("rule"), "reason": e.get("reason")}
            for e in history["events"]
            if e.get("entitled", True) is not True
        }
        async with self._pool.acquire() as conn:
            serial_lots = await _serial_lots(conn, key)
            # Twice, as the history walks: gather every claim, judge them, then follow
            # believed ones only (a packing not believed carries nothing into a pallet).
            rows = await _serial_events(conn, set(serial_lots), size)
            custody = Custody.of(rows.values(), await parties_for(conn, rows.values()))
            wanted |= set(await _serial_events(conn, set(serial_lots), size, custody.about))
            refused |= {
                i: {"rule": v.rule, "reason": v.reason}
                for i in rows
                if i not in wanted and (v := custody.verdict(i)).rule is not None
            }
            refused = {i: why for i, why in refused.items() if i not in wanted}
            if len(wanted) > MAX_EXPORT_EVENTS:
                raise _too_many(key)
            events = await _stored_events(conn, sorted(wanted), viewer)
            if not events:
                raise NotFoundError(f"nothing is recorded about {key.canonical()}")
            ids = {e.signer for e in events if e.signer is not None}
            names = {
                r["id"]: r["name"]
                for r in await conn.fetch(
                    "SELECT id, name FROM enterprises WHERE id = ANY($1::bigint[])", list(ids)
                )
            }
            glns = _locations(e.event for e in events)
            owners = await _location_owners(conn, glns) | await _location_names(conn, glns)
        not_believed = (
            [{"index": i} | refused[i] for i in sorted(refused)] if viewer.sees_everything() else []
        )
        events.sort(key=lambda e: (e.event_time, e.idx))
        return LotExport(key, events, names, serial_lots, owners, not_believed)


def _too_many(key: GS1Key) -> RangeError:
    return RangeError(
        f"{key.canonical()} has more events than one export holds ({MAX_EXPORT_EVENTS} at "
        f"most, with at most {HISTORY_LIMIT} on the lot itself); export its serials separately"
    )


async def _serial_lots(conn: Any, key: GS1Key) -> dict[str, str]:
    """Serial keys made in this lot (the creating event names the lot in its ILMD)."""
    if key.level != "lot" or key.lot is None:
        return {}
    serials = f"{GS1Key(key.scheme, key.key).canonical()}/21/"
    rows = await conn.fetch(
        "SELECT DISTINCT k.key FROM event_keys m JOIN event_keys k ON k.idx = m.idx"
        " WHERE m.key = $1 AND m.role = 'lotMember' AND k.role IN ('epc', 'output')"
        " AND k.key >= $2 AND k.key < $3 LIMIT $4",
        key.canonical(),
        serials,
        serials[:-1] + "0",  # "/" + 1: just above every key starting with `serials`
        MAX_EXPORT_EVENTS + 1,
    )
    return {r["key"]: key.lot for r in rows}


@dataclass(slots=True)
class _Window:
    since: datetime
    until: datetime
    inside: set[str] = field(default_factory=set)  # for a container: what it holds


async def _serial_events(
    conn: Any, serials: set[str], size: int, believed: Callable[[int, str], bool] | None = None
) -> dict[int, EventRow]:
    """Events below `size` naming the serials as goods, and their containers' events while
    a serial was inside (from the AggregationEvent that packed it to the one that
    unpacked it); with `believed`, following those claims only."""
    frontier = {s: _Window(BEGINNING, FOREVER) for s in serials}
    seen: dict[str, _Window] = {}
    found: dict[int, EventRow] = {}
    for _ in range(MAX_DEPTH):
        if not frontier or len(found) > MAX_EXPORT_EVENTS:
            break
        seen.update(frontier)
        following: dict[str, _Window] = {}
        for row in await events_naming(conn, list(frontier), MAX_EXPORT_EVENTS + 1):
            if row.idx >= size:
                continue
            for k, role in row.keys:  # rows come in time order: an ADD before its DELETE
                window = seen.get(k)
                if window is None or role not in WHAT:
                    continue  # a place or a party; lotMember: made the lot's serials, known
                if believed is not None and not believed(row.idx, k):
                    continue
                if not window.since <= row.event_time <= window.until:
                    continue
                found[row.idx] = row
                parent = next((p for p, r in row.keys if r == "parent"), None)
                if row.event_type != "AggregationEvent" or role != "child" or parent is None:
                    continue
                held = following.get(parent) or seen.get(parent)
                if row.action in ("ADD", "OBSERVE"):
                    if held is None:
                        held = following[parent] = _Window(row.event_time, FOREVER)
                    held.inside.add(k)
                elif row.action == "DELETE" and held is not None and parent not in serials:
                    held.inside.discard(k)
                    if not held.inside:  # the last of ours left: later events are not ours
                        held.until = min(held.until, row.event_time)
        frontier = {k: w for k, w in following.items() if k not in seen}
    return found


async def _stored_events(conn: Any, indexes: list[int], viewer: Viewer) -> list[ExportedEvent]:
    rows = await conn.fetch(
        "SELECT n.idx, n.payload, n.envelope_hash, e.event_time, e.enterprise_id"
        " FROM entries n JOIN events e ON e.idx = n.idx"
        " WHERE n.idx = ANY($1::bigint[]) AND n.payload IS NOT NULL",  # redacted: left out
        indexes,
    )
    contexts = await _contexts(
        conn, {bytes(r["envelope_hash"]) for r in rows if r["envelope_hash"] is not None}
    )
    out = []
    for r in rows:
        payload = bytes(r["payload"])
        _, changed = shown_event(payload, viewer, r["enterprise_id"])
        event = changed if changed is not None else json.loads(payload)
        env = r["envelope_hash"]
        context = contexts.get(bytes(env), {}) if env is not None else {}
        out.append(ExportedEvent(r["idx"], r["event_time"], event, r["enterprise_id"], context))
    return out


async def _contexts(conn: Any, hashes: set[bytes]) -> dict[bytes, dict[str, str]]:
    """Each envelope's document @context prefixes (event IDs hash extension names with them)."""
    found: dict[bytes, dict[str, str]] = {}
    for envelope_hash in sorted(hashes):
        body = await conn.fetchval("SELECT body FROM envelopes WHERE hash = $1", envelope_hash)
        if body is None:
            continue  # redacted envelope: its events keep the standard context only
        try:
            document = stored_document(bytes(body))
        except (TraceledgerError, ValueError):
            log.warning("envelope %s is unreadable; its prefixes are unknown", envelope_hash.hex())
            continue
        if isinstance(document, Mapping):
            found[envelope_hash] = document_context(document)
    return found


def _locations(events: Iterable[Mapping[str, Any]]) -> set[str]:
    glns = set()
    for event in events:
        for fld in ("bizLocation", "readPoint"):
            gln = _gln(_place_id(event, fld))
            if gln:
                glns.add(gln)
    return glns


async def _location_owners(conn: Any, glns: set[str]) -> dict[str, str]:
    """Who registered the company prefix of each GLN (the longest matching prefix)."""
    candidates = {g[:n] for g in glns for n in range(4, 13)}
    if not candidates:
        return {}
    rows = await conn.fetch(
        "SELECT p.prefix, e.name FROM enterprise_prefixes p JOIN enterprises e"
        " ON e.id = p.enterprise_id WHERE p.prefix = ANY($1::text[]) ORDER BY e.id DESC",
        sorted(candidates),
    )
    by_prefix = {r["prefix"]: r["name"] for r in rows}  # shared prefix: the first registered
    owners = {}
    for gln in glns:
        for n in range(12, 3, -1):
            if gln[:n] in by_prefix:
                owners[gln] = by_prefix[gln[:n]]
                break
    return owners


async def _location_names(conn: Any, glns: set[str]) -> dict[str, str]:
    """Each location's name from master data (English, else any), where it has one."""
    found = await read_names(conn, [f"414/{g}" for g in glns])
    names = {}
    for key, entry in found.items():
        said = entry.get("name") or {}
        name = said.get("en") or said.get("") or next(iter(said.values()), None)
        if name:
            names[key.removeprefix("414/")] = name
    return names


# ---------------------------------------------------------------------------------------------
# EPCIS 2.0 JSON-LD


def epcis_document(export: LotExport, now: datetime | None = None) -> dict[str, Any]:
    """The export as an EPCIS 2.0 document (validates against the EPCIS 2.0 JSON Schema)."""
    prefixes: dict[str, str] = {}
    events = []
    for item in export.events:
        renames: dict[str, str] = {}
        for prefix, iri in item.context.items():
            if prefixes.setdefault(prefix, iri) != iri:
                # Two documents used one prefix for two namespaces: give this one another
                # name, so the expanded names (and so the event hash) stay the same.
                renames[prefix] = _alias(prefixes, prefix, iri)
        events.append(_renamed(item.event, renames) if renames else item.event)
    if export.not_believed:
        prefixes.setdefault("traceledger", TRACELEDGER_NS)
    created = (now or datetime.now(UTC)).astimezone(UTC)
    context: list[Any] = [EPCIS_CONTEXT]
    if prefixes:
        context.append(dict(sorted(prefixes.items())))
    return {
        "@context": context,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": created.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "epcisBody": {"eventList": events},
    } | (
        # Kept out of the event list (each event there is exactly as captured).
        {"traceledger:notBelieved": export.not_believed} if export.not_believed else {}
    )


def _alias(prefixes: dict[str, str], prefix: str, iri: str) -> str:
    for name, known in prefixes.items():
        if known == iri:
            return name
    n = 2
    while f"{prefix}{n}" in prefixes:
        n += 1
    prefixes[f"{prefix}{n}"] = iri
    return f"{prefix}{n}"


def _renamed(value: Any, renames: Mapping[str, str]) -> Any:
    def rename(text: str) -> str:
        match = _PREFIXED.fullmatch(text)
        if match and match.group(1) in renames:
            return f"{renames[match.group(1)]}:{match.group(2)}"
        return text

    if isinstance(value, dict):
        return {rename(k): _renamed(v, renames) for k, v in value.items()}
    if isinstance(value, list):
        return [_renamed(v, renames) for v in value]
    if isinstance(value, str):
        return rename(value)
    return value


# ---------------------------------------------------------------------------------------------
# Sortable spreadsheet


def csv_text(export: LotExport) -> str:
    """RFC 4180 CSV (CRLF, quoted where needed), a header row, then one row per line."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n", quoting=csv.QUOTE_MINIMAL)
    writer.writerow(CSV_COLUMNS)
    for row in csv_rows(export):
        writer.writerow([_safe_cell(row[c]) for c in CSV_COLUMNS])
    return out.getvalue()


def _safe_cell(value: object) -> str:
    text = "" if value is None else str(value)
    return "'" + text if text.startswith(_FORMULA_START) else text


def csv_rows(export: LotExport) -> Iterator[dict[str, object]]:
    descriptions = _descriptions(e.event for e in export.events)
    serial_lots = dict(export.serial_lots)
    for item in export.events:
        serial_lots.update(_lots_created(item.event))
    for item in export.events:
        event = item.event
        location_id = _place_id(event, "bizLocation") or _place_id(event, "readPoint")
        gln = _gln(location_id)
        common: dict[str, object] = {
            "event_index": item.idx,
            "event_id": event.get("eventID"),
            "event_type": event.get("type"),
            "cte": _cte(event),
            "biz_step": cbv.normalized_or_raw("bizStep", event.get("bizStep")),
            "disposition": cbv.normalized_or_raw("disposition", event.get("disposition")),
            "action": event.get("action"),
            "event_time_utc": _utc(item.event_time),
            "event_time_local": _local(item.event_time, event.get("eventTimeZoneOffset")),
            "location": gln or location_id,
            "location_description": export.location_owners.get(gln or ""),
            "read_point": _show_id(_place_id(event, "readPoint")),
            "from": _parties(event.get("sourceList"), "source"),
            "to": _parties(event.get("destinationList"), "destination"),
            "recorded_by": export.names.get(item.signer) if item.signer is not None else None,
            "reference_documents": _documents(event.get("bizTransactionList")),
        }
        lines = list(_event_lines(event))
        if not lines:
            yield {**common, **dict.fromkeys(_LINE_COLUMNS)}
        for uri, role, quantity, uom in lines:
            yield {**common, **_line(uri, role, quantity, uom, serial_lots, descriptions)}


_LINE_COLUMNS = (
    "traceability_lot_code",
    "product_gtin",
    "serial_number",
    "identifier",
    "line_role",
    "product_description",
    "quantity",
    "unit_of_measure",
)


def _event_lines(event: Mapping[str, Any]) -> Iterator[tuple[str, str, object, object]]:
    for fld, role, quantities, many in _LINES:
        value = event.get(fld)
        if value is None:
            continue
        for item in value if many and isinstance(value, list) else [value]:
            if quantities and isinstance(item, Mapping) and isinstance(item.get("epcClass"), str):
                yield item["epcClass"], role, item.get("quantity"), item.get("uom")
            elif not quantities and isinstance(item, str):
                yield item, role, 1, "EA"  # one instance: "each"


def _line(
    uri: str,
    role: str,
    quantity: object,
    uom: object,
    serial_lots: Mapping[str, str],
    descriptions: Mapping[str, str],
) -> dict[str, object]:
    key = _key(uri)
    gtin = key.key if key is not None and key.scheme == "gtin" else None
    lot = None
    if key is not None:
        lot = key.lot or serial_lots.get(key.item_key().canonical())
    return {
        "traceability_lot_code": lot,
        "product_gtin": gtin,
        "serial_number": key.serial if key is not None else None,
        "identifier": key.canonical() if key is not None else uri,
        "line_role": role,
        "product_description": descriptions.get(gtin or ""),
        "quantity": quantity,
        "unit_of_measure": uom,
    }


def _key(uri: str | None) -> GS1Key | None:
    if not uri:
        return None
    try:
        return parse_identifier(uri)
    except IdentifierError:
        return None


def _lots_created(event: Mapping[str, Any]) -> dict[str, str]:
    """Serials this event creates with their lot named in its ILMD."""
    lot = ilmd_fact(event.get("ilmd"), "lotNumber")
    if not isinstance(lot, str):
        return {}
    found = {}
    for uri, role, _, _ in _event_lines(event):
        key = _key(uri)
        if role in ("epc", "output") and key is not None and key.serial is not None:
            found[key.item_key().canonical()] = lot
    return found


def _descriptions(events: Iterable[Mapping[str, Any]]) -> dict[str, str]:
    """GTIN -> product name, from the ILMD of events that created its instances or lots."""
    found: dict[str, str] = {}
    for event in events:
        ilmd = event.get("ilmd")
        name = next(
            (n for n in (ilmd_fact(ilmd, f) for f in _PRODUCT_NAMES) if isinstance(n, str)),
            None,
        )
        if name is None:
            continue
        for uri, role, _, _ in _event_lines(event):
            key = _key(uri)
            if key is not None and key.scheme == "gtin" and role in _CREATED_ROLES:
                found.setdefault(key.key, name)
    return found


def _cte(event: Mapping[str, Any]) -> str:
    step = cbv.normalized_or_raw("bizStep", event.get("bizStep"))
    if cbv.normalized_or_raw("disposition", event.get("disposition")) == "recalled":
        return "recall"
    if event.get("type") == "TransformationEvent":
        return "transformation"
    if step in _CTE:
        return _CTE[step]
    if event.get("type") == "AggregationEvent":
        return "aggregation"
    return step or "other"


def _utc(when: datetime) -> str:
    # Fixed width (always microseconds) so the text sorts as the times do.
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _local(when: datetime, offset: object) -> str:
    """The time at the place of the event (its eventTimeZoneOffset)."""
    match = _OFFSET.fullmatch(offset) if isinstance(offset, str) else None
    zone = UTC
    if match is not None:
        sign = -1 if match.group(1) == "-" else 1
        delta = sign * timedelta(hours=int(match.group(2)), minutes=int(match.group(3)))
        if abs(delta) <= timedelta(hours=14):
            zone = timezone(delta)
    return when.astimezone(zone).isoformat()


def _place_id(event: Mapping[str, Any], fld: str) -> str | None:
    place = event.get(fld)
    if isinstance(place, Mapping) and isinstance(place.get("id"), str):
        return str(place["id"])
    return None


def _gln(uri: str | None) -> str | None:
    key = _key(uri)
    if key is not None and key.scheme in ("gln", "pgln"):
        return key.key
    return None


def _show_id(uri: str | None) -> str | None:
    """A GLN as its 13 digits (plus extension), any other identifier as written."""
    key = _key(uri)
    if key is None or key.scheme not in ("gln", "pgln"):
        return uri
    return key.key if key.serial is None else f"{key.key} ext {key.serial}"


def _parties(items: object, inner: str) -> str:
    if not isinstance(items, list):
        return ""
    shown = []
    for item in items:
        if isinstance(item, Mapping) and isinstance(item.get(inner), str):
            kind = cbv.normalized_or_raw("sourceDestType", item.get("type")) or "party"
            shown.append(f"{kind}: {_show_id(item[inner])}")
    return "; ".join(shown)


def _documents(items: object) -> str:
    if not isinstance(items, list):
        return ""
    shown = []
    for item in items:
        if isinstance(item, Mapping) and isinstance(item.get("bizTransaction"), str):
            kind = cbv.normalized_or_raw("bizTransactionType", item.get("type"))
            ref = item["bizTransaction"]
            shown.append(f"{kind}: {ref}" if kind else ref)
    return "; ".join(shown)
