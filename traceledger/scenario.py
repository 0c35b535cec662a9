"""The demo scenario: New Zealand milk powder imported through Shanghai, as signed EPCIS 2.0.

The story (times are relative to `now`: eight weeks ago to a few days ago):

1. A New Zealand dairy commissions two lots of 900 g whole milk powder cans (lot-level
   quantities plus a few serialized cans, with ILMD and certificates), packs cans into
   cases and cases onto pallets (SSCC), and ships both pallets to a Shanghai importer.
2. The importer records the arrival at Yangshan port and the receipt into its bonded
   warehouse, held until the inspection authority releases the goods.
3. The port inspection authority finds lot A conformant and lot B non-conformant, and
   supervises the destruction of lot B.
4. The importer unpacks pallet A: the case of retail cans goes to a distributor, the rest
   of lot A to a Shanghai processor, which blends it with a domestic lot of its own into
   a formulated milk powder (a TransformationEvent with ILMD for the new lot).
5. The distributor delivers to two retailers, which sell some units; one retailer first
   records a receipt at the wrong store and corrects it with an EPCIS errorDeclaration.
6. Weeks later the producer recalls lot A, the authority orders the recall in Shanghai,
   and the lookup shows the recall on the cans and on the blended product made from it.

Every step is one EPCIS 2.0 document signed by the party that did it, and `load` pushes
them through the real capture path, so each one passes the same schema, meaning and
authorization checks as any enterprise's data. The parties' Ed25519 keys come from a
public seed (so a reload produces byte-identical envelopes, which the ledger answers as
replays): anyone can sign as a demo party, so never load the demo into a real ledger.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import asyncpg
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from traceledger import eventhash, registry
from traceledger.capture import CaptureService
from traceledger.client import sign_document
from traceledger.dsse import keyid
from traceledger.epcis import parse_time, raw_mentions
from traceledger.errors import RegistryError
from traceledger.gs1 import GS1Key, check_digit, epc_urn

__all__ = [
    "NAMESPACE",
    "PARTIES",
    "Party",
    "Scenario",
    "Step",
    "build",
    "load",
    "party_key",
    "register",
    "registered_at",
]

SEED = b"traceledger demo scenario v1"
# Extension fields (ILMD facts CBV has no name for, findings, the confidential-field list).
NAMESPACE = "https://traceledger.dev/voc/"
CONTEXT: list[Any] = [
    "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld",
    {"traceledger": NAMESPACE},
]


@dataclass(frozen=True)
class Party:
    name: str
    prefixes: tuple[str, ...]
    role: str  # "enterprise" | "authority"


@dataclass(frozen=True)
class Step:
    party: str
    document: dict[str, Any]  # one EPCIS 2.0 document signed by that party


@dataclass(frozen=True)
class Scenario:
    parties: tuple[Party, ...]
    steps: tuple[Step, ...]
    # (label, Digital Link path such as "01/<gtin14>/10/<lot>/21/<serial>") worth trying
    highlights: tuple[tuple[str, str], ...]


# ---------------------------------------------------------------------------------------
# Identifiers: every key is minted from a company prefix, with its check digit computed.


def _digits(text: str, count: int) -> str:
    if len(text) != count or not (text.isascii() and text.isdigit()):
        raise ValueError(f"expected {count} digits, got {text!r}")
    return text


class _Company:
    """GS1 keys under one 7-digit company prefix."""

    def __init__(self, prefix: str) -> None:
        self.prefix = _digits(prefix, 7)

    def _urn(self, key: GS1Key) -> str:
        return epc_urn(key, len(self.prefix))

    def gtin(self, indicator: str, item_ref: str) -> str:
        body = _digits(indicator + self.prefix + item_ref, 13)
        return body + check_digit(body)

    def gln(self, location_ref: str) -> str:
        body = _digits(self.prefix + location_ref, 12)
        return body + check_digit(body)

    def sscc(self, serial_ref: str) -> str:
        body = _digits("0" + self.prefix + serial_ref, 17)
        return body + check_digit(body)

    def sgtin(self, gtin: str, serial: str) -> str:
        return self._urn(GS1Key("gtin", gtin, serial=serial))

    def lgtin(self, gtin: str, lot: str) -> str:
        return self._urn(GS1Key("gtin", gtin, lot=lot))

    def sgln(self, gln: str) -> str:
        return self._urn(GS1Key("gln", gln))

    def sscc_urn(self, sscc: str) -> str:
        return self._urn(GS1Key("sscc", sscc))

    @property
    def party(self) -> str:
        """The company's party GLN (PGLN) as an EPC URN."""
        return self._urn(GS1Key("pgln", self.gln("00000")))


PRODUCER = Party("Canterbury Pastures Dairy Ltd (New Zealand)", ("9421023",), "enterprise")
IMPORTER = Party(
    "Shanghai Haiyue Import & Export Co., Ltd. 上海海悦进出口有限公司", ("6937451",), "enterprise"
)
AUTHORITY = Party(
    "Shanghai Entry-Exit Inspection and Quarantine, Yangshan 上海出入境检验检疫局洋山办事处",
    ("6900861",),
    "authority",
)
PROCESSOR = Party(
    "Shanghai Shenrun Dairy Products Co., Ltd. 上海申润乳品有限公司", ("6942817",), "enterprise"
)
DISTRIBUTOR = Party(
    "Huadong Cold Chain Distribution Co., Ltd. 华东冷链配送有限公司", ("6923390",), "enterprise"
)
RETAILER_1 = Party("Jing'an Fresh Market 静安鲜选超市", ("6971205",), "enterprise")
RETAILER_2 = Party("Pudong Harbour Supermarkets 浦东港湾超市", ("6958812",), "enterprise")
PARTIES = (PRODUCER, IMPORTER, AUTHORITY, PROCESSOR, DISTRIBUTOR, RETAILER_1, RETAILER_2)

_nz, _im, _qa, _pr, _di, _r1, _r2 = (_Company(p.prefixes[0]) for p in PARTIES)

# Trade items (GTIN-14) and lots.
CAN = _nz.gtin("0", "10015")  # whole milk powder, 900 g can
CAN_CASE = _nz.gtin("1", "10015")  # case of 6 cans
DOMESTIC = _pr.gtin("0", "20031")  # domestic whole milk powder, 25 kg bag
BLEND = _pr.gtin("0", "30058")  # formulated milk powder for adults, 800 g can
BLEND_CASE = _pr.gtin("1", "30058")  # case of 4 cans
LOT_A, LOT_B, LOT_D, LOT_P = "CPA117", "CPB118", "HLJ2031", "SR5502"
CANS_A = tuple(f"A{n}" for n in range(1001, 1007))
CANS_B = tuple(f"B{n}" for n in range(2001, 2005))
BLEND_UNITS = tuple(f"P{n:06d}" for n in range(101, 109))
LOT_A_SIZE, LOT_B_SIZE = 2400, 1600  # cans, serialized ones included

# Logistic units.
PALLET_A, PALLET_B = _nz.sscc("000004117"), _nz.sscc("000004118")
CAGE = _di.sscc("000000731")  # the distributor's roll cage to retailer 1

# Locations (GLN-13) and their names, which every document carries as EPCIS master data.
NZ_PLANT = _nz.gln("00017")
PORT = _qa.gln("00015")
LAB = _qa.gln("00022")
DISPOSAL = _qa.gln("00039")
CIQ_OFFICE = _qa.gln("00001")
BONDED = _im.gln("00021")
SR_PLANT = _pr.gln("00012")
DC = _di.gln("00018")
STORE_1 = _r1.gln("00103")
STORE_LJZ, STORE_ZJ = _r2.gln("00207"), _r2.gln("00214")
PLACES: dict[str, tuple[str, str, str]] = {  # GLN -> (name, city, ISO country)
    NZ_PLANT: ("Canterbury Pastures spray-dryer plant", "Darfield", "NZ"),
    PORT: ("Yangshan Deep-Water Port inspection site 洋山深水港查验场地", "Shanghai", "CN"),
    LAB: ("Yangshan port inspection laboratory 洋山口岸检验实验室", "Shanghai", "CN"),
    DISPOSAL: ("Lingang supervised disposal site 临港监督销毁场所", "Shanghai", "CN"),
    CIQ_OFFICE: ("Shanghai CIQ Yangshan office 洋山办事处", "Shanghai", "CN"),
    BONDED: (
        "Haiyue bonded warehouse, Yangshan bonded port area 洋山保税港区仓库",
        "Shanghai",
        "CN",
    ),
    SR_PLANT: ("Shenrun dairy plant, Fengxian 申润乳品奉贤工厂", "Shanghai", "CN"),
    DC: ("Huadong cold-chain DC, Minhang 华东冷链闵行配送中心", "Shanghai", "CN"),
    STORE_1: ("Jing'an Fresh Market, West Nanjing Road 南京西路店", "Shanghai", "CN"),
    STORE_LJZ: ("Pudong Harbour Supermarket, Lujiazui 陆家嘴店", "Shanghai", "CN"),
    STORE_ZJ: ("Pudong Harbour Supermarket, Zhangjiang 张江店", "Shanghai", "CN"),
}

CERT = "https://certificates.example.org"  # stands in for the issuers' registers


def party_key(name: str) -> Ed25519PrivateKey:
    """A demo party's signing key: derived from a public seed, so reproducible (and public)."""
    return Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(SEED + b"\x00" + name.encode()).digest()
    )


# ---------------------------------------------------------------------------------------
# Event building


def _zone(name: str, fallback_hours: int) -> tzinfo:
    try:
        return ZoneInfo(name)
    except ZoneInfoNotFoundError:  # no tz database: standard time is close enough
        return timezone(timedelta(hours=fallback_hours))


NZ_TIME = _zone("Pacific/Auckland", 12)
SHANGHAI_TIME = timezone(timedelta(hours=8))  # China has no daylight saving time


class _Clock:
    def __init__(self, now: datetime) -> None:
        if now.tzinfo is None:
            raise ValueError("now must be timezone-aware")
        self.now = now.astimezone(UTC).replace(microsecond=0)

    def at(self, days_ago: int, hhmm: str, zone: tzinfo = SHANGHAI_TIME) -> datetime:
        """Local wall-clock time `hhmm` on the local date `days_ago` days before now."""
        day = (self.now - timedelta(days=days_ago)).astimezone(zone).date()
        hour, minute = (int(x) for x in hhmm.split(":"))
        return datetime(day.year, day.month, day.day, hour, minute, tzinfo=zone)


def _stamp(moment: datetime) -> str:
    return moment.isoformat(timespec="milliseconds")


def _offset(moment: datetime) -> str:
    z = moment.strftime("%z")
    return f"{z[:3]}:{z[3:]}"


def _event(kind: str, moment: datetime, **fields: Any) -> dict[str, Any]:
    """An event with its time fields first; None-valued fields are left out."""
    event: dict[str, Any] = {
        "type": kind,
        "eventTime": _stamp(moment),
        "eventTimeZoneOffset": _offset(moment),
    }
    event.update((k, v) for k, v in fields.items() if v is not None)
    return event


def _place(gln: str) -> dict[str, str]:
    return {"id": _Company(gln[:7]).sgln(gln)}


def _qty(epc_class: str, quantity: float | None = None, uom: str | None = None) -> dict[str, Any]:
    element: dict[str, Any] = {"epcClass": epc_class}
    if quantity is not None:
        element["quantity"] = quantity
    if uom is not None:
        element["uom"] = uom
    return element


def _moves(
    kind: str, owner: _Company, gln: str
) -> list[dict[str, str]]:  # sourceList / destinationList
    return [
        {"type": "owning_party", kind: owner.party},
        {"type": "location", kind: _place(gln)["id"]},
    ]


def _bt(kind: str, issuer_gln: str, number: str) -> dict[str, str]:
    """A business transaction reference (CBV 2.0: urn:epcglobal:cbv:bt:<GLN>:<id>)."""
    return {"type": kind, "bizTransaction": f"urn:epcglobal:cbv:bt:{issuer_gln}:{number}"}


def _master_data(events: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """EPCIS master data naming every location the events mention."""
    glns: list[str] = []
    for event in events:
        for uri, _role, _pointer in raw_mentions(event):
            if uri.startswith("urn:epc:id:sgln:"):
                cp, ref, _ext = uri.removeprefix("urn:epc:id:sgln:").split(".")
                gln = cp + ref + check_digit(cp + ref)
                if gln in PLACES and gln not in glns:
                    glns.append(gln)
    elements = [
        {
            "id": _place(gln)["id"],
            "attributes": [
                {"id": "urn:epcglobal:cbv:mda#name", "attribute": PLACES[gln][0]},
                {"id": "urn:epcglobal:cbv:mda#city", "attribute": PLACES[gln][1]},
                {"id": "urn:epcglobal:cbv:mda#countryCode", "attribute": PLACES[gln][2]},
            ],
        }
        for gln in glns
    ]
    vocabulary = {"type": "urn:epcglobal:epcis:vtype:BusinessLocation"}
    return {
        "epcisMasterData": {"vocabularyList": [{**vocabulary, "vocabularyElementList": elements}]}
    }


def _document(events: list[dict[str, Any]]) -> dict[str, Any]:
    """An EPCIS 2.0 document, created a few minutes after the latest time it reports."""
    times = [parse_time(e["eventTime"]) for e in events]
    times += [
        parse_time(e["errorDeclaration"]["declarationTime"])
        for e in events
        if "errorDeclaration" in e
    ]
    created = max(times) + timedelta(minutes=7)
    return {
        "@context": CONTEXT,
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": _stamp(created.astimezone(UTC)).replace("+00:00", "Z"),
        "epcisHeader": _master_data(events),
        "epcisBody": {"eventList": events},
    }


def _hash_id(event: Mapping[str, Any]) -> str:
    """The event's standard EPCIS 2.0 hash ID (what the ledger assigns as its eventID)."""
    context = eventhash.document_context({"@context": CONTEXT})
    return eventhash.event_hash_id(eventhash.event_hash(event, context))


# ---------------------------------------------------------------------------------------
# The story


def build(now: datetime) -> Scenario:
    """The scenario with every event time between eight weeks and a few days before `now`."""
    clock = _Clock(now)
    at = clock.at
    steps: list[Step] = []

    def step(party: Party, *events: dict[str, Any]) -> None:
        steps.append(Step(party.name, _document(list(events))))

    def produced_ilmd(
        lot: str, made: datetime, shelf_days: int, name: str, name_zh: str, maker: str, country: str
    ) -> dict[str, Any]:
        return {
            "cbvmda:lotNumber": lot,
            "cbvmda:regulatedProductName": name,
            "traceledger:productNameZh": name_zh,
            "cbvmda:manufacturerOfTradeItemPartyName": maker,
            "cbvmda:countryOfOrigin": country,
            "traceledger:productionDate": made.date().isoformat(),
            "cbvmda:itemExpirationDate": (made + timedelta(days=shelf_days)).date().isoformat(),
        }

    can_lot_a, can_lot_b = _nz.lgtin(CAN, LOT_A), _nz.lgtin(CAN, LOT_B)
    cans_a = [_nz.sgtin(CAN, s) for s in CANS_A]
    cans_b = [_nz.sgtin(CAN, s) for s in CANS_B]
    case_a, case_b = _nz.sgtin(CAN_CASE, "C10001"), _nz.sgtin(CAN_CASE, "C10002")
    pallet_a, pallet_b = _nz.sscc_urn(PALLET_A), _nz.sscc_urn(PALLET_B)
    domestic_lot = _pr.lgtin(DOMESTIC, LOT_D)
    blend_lot = _pr.lgtin(BLEND, LOT_P)
    units = [_pr.sgtin(BLEND, s) for s in BLEND_UNITS]
    blend_case_1, blend_case_2 = _pr.sgtin(BLEND_CASE, "PC0001"), _pr.sgtin(BLEND_CASE, "PC0002")
    cage = _di.sscc_urn(CAGE)
    serialized_a = len(CANS_A)

    # 1. The producer commissions two lots, each with a few serialized cans.
    organic = f"{CERT}/asurequality/organic/AQ-ORG-4471"
    for lot, cans, size, days, hhmm in (
        (LOT_A, cans_a, LOT_A_SIZE, 56, "09:10"),
        (LOT_B, cans_b, LOT_B_SIZE, 56, "14:35"),
    ):
        made = at(days, hhmm, NZ_TIME)
        step(
            PRODUCER,
            _event(
                "ObjectEvent",
                made,
                action="ADD",
                epcList=cans,
                quantityList=[_qty(_nz.lgtin(CAN, lot), size - len(cans))],
                bizStep="commissioning",
                disposition="active",
                readPoint=_place(NZ_PLANT),
                bizLocation=_place(NZ_PLANT),
                ilmd=produced_ilmd(
                    lot,
                    made,
                    730,
                    "Whole Milk Powder 900 g",
                    "全脂奶粉 900克",
                    PRODUCER.name,
                    "NZ",
                ),
                certificationInfo=[organic, f"{CERT}/mpi/rmp/RMP-DAIRY-0731"],
            ),
        )

    # 2. Cans into cases, cases (and the rest of each lot) onto pallets, then shipping.
    packed = at(55, "10:00", NZ_TIME)
    step(
        PRODUCER,
        *(
            _event(
                "AggregationEvent",
                packed + timedelta(minutes=offset),
                parentID=parent,
                childEPCs=children,
                childQuantityList=rest,
                action="ADD",
                bizStep="packing",
                disposition="in_progress",
                readPoint=_place(NZ_PLANT),
                bizLocation=_place(NZ_PLANT),
            )
            for offset, parent, children, rest in (
                (0, case_a, cans_a, None),
                (4, case_b, cans_b, None),
                (30, pallet_a, [case_a], [_qty(can_lot_a, LOT_A_SIZE - serialized_a)]),
                (42, pallet_b, [case_b], [_qty(can_lot_b, LOT_B_SIZE - len(CANS_B))]),
            )
        ),
    )
    shipped = at(53, "16:20", NZ_TIME)
    po = f"HY-PO-{shipped:%y}-0311"
    export_cert = f"{CERT}/mpi/e-cert/NZL-DAIRY-{shipped:%Y}-118734"
    step(
        PRODUCER,
        _event(
            "ObjectEvent",
            shipped,
            action="OBSERVE",
            epcList=[pallet_a, pallet_b],
            quantityList=[_qty(can_lot_a, LOT_A_SIZE), _qty(can_lot_b, LOT_B_SIZE)],
            bizStep="shipping",
            disposition="in_transit",
            readPoint=_place(NZ_PLANT),
            bizTransactionList=[
                _bt("po", _im.gln("00000"), po),
                _bt("bol", _nz.gln("00000"), "MSKU-LYT-SHA-77120"),
            ],
            sourceList=_moves("source", _nz, NZ_PLANT),
            destinationList=_moves("destination", _im, BONDED),
            certificationInfo=export_cert,
        ),
    )

    # The processor's own domestic lot, produced before the import arrives.
    domestic_made = at(45, "08:30")
    step(
        PROCESSOR,
        _event(
            "ObjectEvent",
            domestic_made,
            action="ADD",
            quantityList=[_qty(domestic_lot, 2000, "KGM")],
            bizStep="commissioning",
            disposition="active",
            readPoint=_place(SR_PLANT),
            bizLocation=_place(SR_PLANT),
            ilmd=produced_ilmd(
                LOT_D,
                domestic_made,
                540,
                "Whole Milk Powder 25 kg (Heilongjiang milk)",
                "全脂乳粉 25千克(黑龙江奶源)",
                PROCESSOR.name,
                "CN",
            ),
        ),
    )

    # 3. Arrival at the port, then into the bonded warehouse to await inspection.
    both_lots = [_qty(can_lot_a, LOT_A_SIZE), _qty(can_lot_b, LOT_B_SIZE)]
    step(
        IMPORTER,
        _event(
            "ObjectEvent",
            at(32, "06:40"),
            action="OBSERVE",
            epcList=[pallet_a, pallet_b],
            quantityList=both_lots,
            bizStep="arriving",
            disposition="in_progress",
            readPoint=_place(PORT),
            bizLocation=_place(PORT),
            bizTransactionList=[_bt("bol", _nz.gln("00000"), "MSKU-LYT-SHA-77120")],
        ),
        _event(
            "ObjectEvent",
            at(32, "15:20"),
            action="OBSERVE",
            epcList=[pallet_a, pallet_b],
            quantityList=both_lots,
            bizStep="receiving",
            disposition="sellable_not_accessible",
            readPoint=_place(BONDED),
            bizLocation=_place(BONDED),
            bizTransactionList=[_bt("po", _im.gln("00000"), po)],
            sourceList=_moves("source", _nz, NZ_PLANT),
            destinationList=_moves("destination", _im, BONDED),
        ),
    )

    # 4. Port inspection: lot A passes, lot B fails and is destroyed under supervision.
    inspected = at(31, "10:05")
    step(
        AUTHORITY,
        _event(
            "ObjectEvent",
            inspected,
            action="OBSERVE",
            epcList=[pallet_a],
            quantityList=[_qty(can_lot_a, LOT_A_SIZE)],
            bizStep="inspecting",
            disposition="conformant",
            readPoint=_place(LAB),
            bizLocation=_place(BONDED),
            certificationInfo=f"{CERT}/ciq/inspection/310000-{inspected:%Y}-0087113",
        ),
        _event(
            "ObjectEvent",
            at(31, "10:40"),
            action="OBSERVE",
            epcList=[pallet_b],
            quantityList=[_qty(can_lot_b, LOT_B_SIZE)],
            bizStep="inspecting",
            disposition="non_conformant",
            readPoint=_place(LAB),
            bizLocation=_place(BONDED),
            **{
                "traceledger:finding": "Aerobic plate count 82000 CFU/g exceeds the "
                "GB 19644-2010 limit 菌落总数超出GB 19644-2010限量",
            },
        ),
    )
    step(
        AUTHORITY,
        _event(
            "ObjectEvent",
            at(29, "14:00"),
            action="OBSERVE",
            epcList=[pallet_b, case_b, *cans_b],
            quantityList=[_qty(can_lot_b, LOT_B_SIZE)],
            bizStep="destroying",
            disposition="destroyed",
            readPoint=_place(DISPOSAL),
            bizLocation=_place(DISPOSAL),
        ),
    )

    # 5. Released lot A is split: retail cans to the distributor, the rest to the processor.
    released = at(27, "09:00")
    step(
        IMPORTER,
        _event(
            "AggregationEvent",
            released,
            parentID=pallet_a,
            childEPCs=[case_a],
            action="DELETE",
            bizStep="unpacking",
            disposition="in_progress",
            readPoint=_place(BONDED),
            bizLocation=_place(BONDED),
        ),
        _event(
            "ObjectEvent",
            released + timedelta(hours=2),
            action="OBSERVE",
            epcList=[pallet_a],
            quantityList=[_qty(can_lot_a, LOT_A_SIZE - serialized_a)],
            bizStep="shipping",
            disposition="in_transit",
            readPoint=_place(BONDED),
            bizTransactionList=[
                _bt("po", _pr.gln("00000"), "SR-PO-7781"),
                _bt("inv", _im.gln("00000"), f"HY-INV-{released:%y}-1190"),
            ],
            sourceList=_moves("source", _im, BONDED),
            destinationList=_moves("destination", _pr, SR_PLANT),
            **{"traceledger:confidential": ["bizTransactionList"]},
        ),
        _event(
            "ObjectEvent",
            released + timedelta(hours=2, minutes=25),
            action="OBSERVE",
            epcList=[case_a],
            quantityList=[_qty(can_lot_a, serialized_a)],
            bizStep="shipping",
            disposition="in_transit",
            readPoint=_place(BONDED),
            sourceList=_moves("source", _im, BONDED),
            destinationList=_moves("destination", _di, DC),
        ),
    )
    step(
        PROCESSOR,
        _event(
            "ObjectEvent",
            at(27, "16:10"),
            action="OBSERVE",
            epcList=[pallet_a],
            quantityList=[_qty(can_lot_a, LOT_A_SIZE - serialized_a)],
            bizStep="receiving",
            disposition="in_progress",
            readPoint=_place(SR_PLANT),
            bizLocation=_place(SR_PLANT),
            sourceList=_moves("source", _im, BONDED),
            destinationList=_moves("destination", _pr, SR_PLANT),
        ),
    )
    step(
        DISTRIBUTOR,
        _event(
            "ObjectEvent",
            at(27, "17:45"),
            action="OBSERVE",
            epcList=[case_a],
            quantityList=[_qty(can_lot_a, serialized_a)],
            bizStep="receiving",
            disposition="in_progress",
            readPoint=_place(DC),
            bizLocation=_place(DC),
            sourceList=_moves("source", _im, BONDED),
            destinationList=_moves("destination", _di, DC),
        ),
    )

    # 6. The processor blends lot A with its domestic lot into a new lot of its own.
    blended = at(25, "13:30")
    step(
        PROCESSOR,
        _event(
            "TransformationEvent",
            blended,
            inputQuantityList=[
                _qty(can_lot_a, LOT_A_SIZE - serialized_a),
                _qty(domestic_lot, 1500, "KGM"),
            ],
            outputEPCList=units,
            outputQuantityList=[_qty(blend_lot, 5000 - len(units))],
            bizStep="commissioning",
            disposition="active",
            readPoint=_place(SR_PLANT),
            bizLocation=_place(SR_PLANT),
            ilmd=produced_ilmd(
                LOT_P,
                blended,
                540,
                "Formulated Milk Powder for Adults 800 g",
                "成人调制乳粉 800克",
                PROCESSOR.name,
                "CN",
            ),
            certificationInfo=f"{CERT}/samr/food-production-licence/SC10531011500217",
        ),
    )
    packed_p = at(24, "09:15")
    step(
        PROCESSOR,
        *(
            _event(
                "AggregationEvent",
                packed_p + timedelta(minutes=offset),
                parentID=parent,
                childEPCs=children,
                action="ADD",
                bizStep="packing",
                disposition="in_progress",
                readPoint=_place(SR_PLANT),
                bizLocation=_place(SR_PLANT),
            )
            for offset, parent, children in (
                (0, blend_case_1, units[:4]),
                (3, blend_case_2, units[4:]),
            )
        ),
        _event(
            "ObjectEvent",
            packed_p + timedelta(hours=5),
            action="OBSERVE",
            epcList=[blend_case_1, blend_case_2],
            bizStep="shipping",
            disposition="in_transit",
            readPoint=_place(SR_PLANT),
            sourceList=_moves("source", _pr, SR_PLANT),
            destinationList=_moves("destination", _di, DC),
        ),
    )

    # 7. Distribution to two retailers.
    step(
        DISTRIBUTOR,
        _event(
            "ObjectEvent",
            at(24, "18:30"),
            action="OBSERVE",
            epcList=[blend_case_1, blend_case_2],
            bizStep="receiving",
            disposition="in_progress",
            readPoint=_place(DC),
            bizLocation=_place(DC),
            sourceList=_moves("source", _pr, SR_PLANT),
            destinationList=_moves("destination", _di, DC),
        ),
        _event(
            "AggregationEvent",
            at(22, "05:10"),
            parentID=cage,
            childEPCs=[case_a, blend_case_1],
            action="ADD",
            bizStep="packing",
            disposition="in_progress",
            readPoint=_place(DC),
            bizLocation=_place(DC),
        ),
        _event(
            "ObjectEvent",
            at(22, "06:00"),
            action="OBSERVE",
            epcList=[cage],
            bizStep="shipping",
            disposition="in_transit",
            readPoint=_place(DC),
            sourceList=_moves("source", _di, DC),
            destinationList=_moves("destination", _r1, STORE_1),
        ),
        _event(
            "ObjectEvent",
            at(22, "06:20"),
            action="OBSERVE",
            epcList=[blend_case_2],
            bizStep="shipping",
            disposition="in_transit",
            readPoint=_place(DC),
            sourceList=_moves("source", _di, DC),
            destinationList=_moves("destination", _r2, STORE_LJZ),
        ),
    )
    step(
        RETAILER_1,
        _event(
            "ObjectEvent",
            at(22, "08:05"),
            action="OBSERVE",
            epcList=[cage],
            bizStep="receiving",
            disposition="in_progress",
            readPoint=_place(STORE_1),
            bizLocation=_place(STORE_1),
            sourceList=_moves("source", _di, DC),
            destinationList=_moves("destination", _r1, STORE_1),
        ),
        *(
            _event(
                "AggregationEvent",
                at(22, "08:30") + timedelta(minutes=offset),
                parentID=parent,
                childEPCs=children,
                action="DELETE",
                bizStep="unpacking",
                disposition="sellable_accessible",
                readPoint=_place(STORE_1),
                bizLocation=_place(STORE_1),
            )
            for offset, parent, children in (
                (0, cage, [case_a, blend_case_1]),
                (5, case_a, cans_a),
                (9, blend_case_1, units[:4]),
            )
        ),
    )

    # Retailer 2 scans the delivery in at the wrong store, then declares that an error.
    wrong = _event(
        "ObjectEvent",
        at(22, "09:10"),
        action="OBSERVE",
        epcList=[blend_case_2],
        bizStep="receiving",
        disposition="in_progress",
        readPoint=_place(STORE_ZJ),
        bizLocation=_place(STORE_ZJ),
    )
    right = {**wrong, "readPoint": _place(STORE_LJZ), "bizLocation": _place(STORE_LJZ)}
    step(RETAILER_2, wrong)
    step(
        RETAILER_2,
        {
            **wrong,
            "errorDeclaration": {
                "declarationTime": _stamp(at(21, "11:00")),
                "reason": "incorrect_data",
                "correctiveEventIDs": [_hash_id(right)],
            },
        },
        right,
    )
    step(
        RETAILER_2,
        _event(
            "AggregationEvent",
            at(21, "11:20"),
            parentID=blend_case_2,
            childEPCs=units[4:],
            action="DELETE",
            bizStep="unpacking",
            disposition="sellable_accessible",
            readPoint=_place(STORE_LJZ),
            bizLocation=_place(STORE_LJZ),
        ),
        *(
            _event(
                "ObjectEvent",
                at(days, hhmm),
                action="OBSERVE",
                epcList=[unit],
                bizStep="retail_selling",
                disposition="retail_sold",
                readPoint=_place(STORE_LJZ),
                bizLocation=_place(STORE_LJZ),
            )
            for days, hhmm, unit in ((17, "19:42", units[4]), (12, "12:07", units[5]))
        ),
    )
    step(
        RETAILER_1,
        *(
            _event(
                "ObjectEvent",
                at(days, hhmm),
                action="OBSERVE",
                epcList=[unit],
                bizStep="retail_selling",
                disposition="retail_sold",
                readPoint=_place(STORE_1),
                bizLocation=_place(STORE_1),
            )
            for days, hhmm, unit in (
                (19, "18:25", cans_a[2]),
                (16, "10:51", cans_a[4]),
                (14, "20:13", units[1]),
            )
        ),
    )

    # 8. The recall: the producer's own notice, then the authority's order for Shanghai.
    reason = "Cronobacter spp. detected in a retained sample of lot " + LOT_A
    step(
        PRODUCER,
        _event(
            "ObjectEvent",
            at(6, "17:00", NZ_TIME),
            action="OBSERVE",
            quantityList=[_qty(can_lot_a)],
            disposition="recalled",
            readPoint=_place(NZ_PLANT),
            **{"traceledger:recallReason": reason},
        ),
    )
    ordered = at(5, "09:30")
    step(
        AUTHORITY,
        _event(
            "ObjectEvent",
            ordered,
            action="OBSERVE",
            quantityList=[_qty(can_lot_a)],
            disposition="recalled",
            readPoint=_place(CIQ_OFFICE),
            **{
                "traceledger:recallReason": reason,
                "traceledger:recallNotice": f"SH-CIQ-RC-{ordered:%Y}-017",
            },
        ),
    )
    step(
        RETAILER_1,
        _event(
            "ObjectEvent",
            at(5, "14:15"),
            action="OBSERVE",
            epcList=[cans_a[i] for i in (0, 1, 3, 5)] + [units[i] for i in (0, 2, 3)],
            bizStep="holding",
            disposition="non_sellable_other",
            readPoint=_place(STORE_1),
            bizLocation=_place(STORE_1),
        ),
    )

    highlights = (
        ("recalled can (lot A, sold in Jing'an)", GS1Key("gtin", CAN, lot=LOT_A, serial=CANS_A[2])),
        (
            "blended product made from lot A",
            GS1Key("gtin", BLEND, lot=LOT_P, serial=BLEND_UNITS[4]),
        ),
        ("lot A: conformant at the port, recalled later", GS1Key("gtin", CAN, lot=LOT_A)),
        ("lot B: non-conformant, destroyed", GS1Key("gtin", CAN, lot=LOT_B)),
        ("pallet from New Zealand", GS1Key("sscc", PALLET_A)),
        ("Yangshan port inspection site", GS1Key("gln", PORT)),
    )
    return Scenario(PARTIES, tuple(steps), tuple((label, k.canonical()) for label, k in highlights))


# ---------------------------------------------------------------------------------------
# Loading


async def register(parties: Iterable[Party], pool: asyncpg.Pool) -> dict[str, Ed25519PrivateKey]:
    """Register each party once with its derived key; an existing party must hold that key."""
    keys: dict[str, Ed25519PrivateKey] = {}
    async with pool.acquire() as conn:
        for party in parties:
            key = keys[party.name] = party_key(party.name)
            ent_id = await conn.fetchval("SELECT id FROM enterprises WHERE name = $1", party.name)
            if ent_id is None:
                try:
                    await registry.add_enterprise(
                        conn, party.name, list(party.prefixes), key.public_key(), role=party.role
                    )
                    continue
                except RegistryError:
                    # Perhaps registered concurrently by another process: look again.
                    ent_id = await conn.fetchval(
                        "SELECT id FROM enterprises WHERE name = $1", party.name
                    )
                    if ent_id is None:
                        raise
            kid = keyid(key.public_key())
            found = (await registry.keys_by_id(conn, [kid])).get(kid)
            if found is None or found.enterprise_id != ent_id or found.revoked_at is not None:
                raise RegistryError(
                    f"an enterprise named {party.name!r} exists without the demo's key {kid}; "
                    "load the demo into an empty ledger"
                )
    return keys


async def registered_at(pool: asyncpg.Pool, name: str) -> datetime | None:
    """When the party was registered: a stable anchor for the story's times across restarts."""
    async with pool.acquire() as conn:
        value: datetime | None = await conn.fetchval(
            "SELECT created_at FROM enterprises WHERE name = $1", name
        )
    return value


async def load(
    scenario: Scenario, pool: asyncpg.Pool, capture: CaptureService
) -> dict[str, Ed25519PrivateKey]:
    """Register the parties, then capture every step as a signed envelope, in order.

    Loading again is harmless: the envelopes are byte-identical, so each is a replay.
    A refused step raises the capture error (InvalidEventsError, ForbiddenError...).
    """
    keys = await register(scenario.parties, pool)
    for step in scenario.steps:
        body, content_type = sign_document(step.document, keys[step.party])
        await capture.capture(body, content_type)
    return keys
