"""The story, chapter by chapter (times are relative to `now`: eight weeks to days ago).

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

Every step is one EPCIS 2.0 document signed by the party that did it. Each chapter
appends its steps to the shared `Story`, so the order of the calls in `build` is the
order in which the ledger captures them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta, tzinfo
from typing import Any

from traceledger.demo.documents import (
    NZ_TIME,
    SHANGHAI_TIME,
    Clock,
    bt,
    document,
    event,
    hash_id,
    moves,
    place,
    qty,
    stamp,
)
from traceledger.demo.parties import (
    AUTHORITY,
    BLEND,
    BLEND_UNITS,
    BONDED,
    CAN,
    CANS_A,
    CANS_B,
    CERT,
    CIQ_OFFICE,
    DC,
    DI,
    DISPOSAL,
    DISTRIBUTOR,
    IM,
    IMPORTER,
    LAB,
    LOT_A,
    LOT_A_SIZE,
    LOT_B,
    LOT_B_SIZE,
    LOT_D,
    LOT_P,
    NZ,
    NZ_PLANT,
    PALLET_A,
    PARTIES,
    PORT,
    PR,
    PROCESSOR,
    PRODUCER,
    R1,
    R2,
    RETAILER_1,
    RETAILER_2,
    SR_PLANT,
    STORE_1,
    STORE_LJZ,
    STORE_ZJ,
    Goods,
    Party,
)
from traceledger.standards.gs1 import GS1Key

SERIALIZED_A = len(CANS_A)  # lot A's serialized cans: the case for retail
BILL_OF_LADING = "MSKU-LYT-SHA-77120"

# (label, GS1 key) worth trying in the lookup once the story is loaded.
_HIGHLIGHTS = (
    ("recalled can (lot A, sold in Jing'an)", GS1Key("gtin", CAN, lot=LOT_A, serial=CANS_A[2])),
    ("blended product made from lot A", GS1Key("gtin", BLEND, lot=LOT_P, serial=BLEND_UNITS[4])),
    ("lot A: conformant at the port, recalled later", GS1Key("gtin", CAN, lot=LOT_A)),
    ("lot B: non-conformant, destroyed", GS1Key("gtin", CAN, lot=LOT_B)),
    ("pallet from New Zealand", GS1Key("sscc", PALLET_A)),
    ("Yangshan port inspection site", GS1Key("gln", PORT)),
)


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


@dataclass
class Story:
    """What the chapters share: the clock, the goods, and the steps told so far."""

    clock: Clock
    goods: Goods
    steps: list[Step] = field(default_factory=list)

    def at(self, days_ago: int, hhmm: str, zone: tzinfo = SHANGHAI_TIME) -> datetime:
        return self.clock.at(days_ago, hhmm, zone)

    def step(self, party: Party, *events: dict[str, Any]) -> None:
        """Tell one step: a document of `events`, for `party` to sign."""
        self.steps.append(Step(party.name, document(list(events), party)))


def build(now: datetime) -> Scenario:
    """The scenario with every event time between eight weeks and a few days before `now`."""
    story = Story(Clock(now), Goods.mint())
    # From New Zealand to Yangshan port.
    _commission_lots(story)
    _pack_for_export(story)
    purchase_order = _ship_to_shanghai(story)
    _commission_domestic_lot(story)
    _arrive_at_port(story, purchase_order)
    _inspect_at_port(story)
    _destroy_lot_b(story)
    # Lot A is split, blended and sold.
    _split_lot_a(story)
    _receive_lot_a(story)
    _blend(story)
    _pack_and_ship_blend(story)
    _distribute(story)
    _deliver_to_retailer_1(story)
    _correct_a_misdelivery(story)
    _sell_at_retailer_2(story)
    _sell_at_retailer_1(story)
    # Weeks later, the recall.
    _recall_lot_a(story)
    _hold_recalled_stock(story)
    highlights = tuple((label, key.canonical()) for label, key in _HIGHLIGHTS)
    return Scenario(PARTIES, tuple(story.steps), highlights)


def _produced_ilmd(
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


# ---------------------------------------------------------------------------------------
# 1. The producer commissions two lots, packs them and ships them to Shanghai.


def _commission_lots(story: Story) -> None:
    """Lots A and B, each with a few serialized cans."""
    goods = story.goods
    organic = f"{CERT}/asurequality/organic/AQ-ORG-4471"
    for lot, lot_class, cans, size, hhmm in (
        (LOT_A, goods.can_lot_a, goods.cans_a, LOT_A_SIZE, "09:10"),
        (LOT_B, goods.can_lot_b, goods.cans_b, LOT_B_SIZE, "14:35"),
    ):
        made = story.at(56, hhmm, NZ_TIME)
        story.step(
            PRODUCER,
            event(
                "ObjectEvent",
                made,
                action="ADD",
                epcList=cans,
                quantityList=[qty(lot_class, size - len(cans))],
                bizStep="commissioning",
                disposition="active",
                readPoint=place(NZ_PLANT),
                bizLocation=place(NZ_PLANT),
                ilmd=_produced_ilmd(
                    lot, made, 730, "Whole Milk Powder 900 g", "全脂奶粉 900克", PRODUCER.name, "NZ"
                ),
                certificationInfo=[organic, f"{CERT}/mpi/rmp/RMP-DAIRY-0731"],
            ),
        )


def _pack_for_export(story: Story) -> None:
    """Cans into cases, cases (and the rest of each lot) onto pallets."""
    goods = story.goods
    packed = story.at(55, "10:00", NZ_TIME)
    rest_a = [qty(goods.can_lot_a, LOT_A_SIZE - SERIALIZED_A)]
    rest_b = [qty(goods.can_lot_b, LOT_B_SIZE - len(CANS_B))]
    story.step(
        PRODUCER,
        *(
            event(
                "AggregationEvent",
                packed + timedelta(minutes=offset),
                parentID=parent,
                childEPCs=children,
                childQuantityList=rest,
                action="ADD",
                bizStep="packing",
                disposition="in_progress",
                readPoint=place(NZ_PLANT),
                bizLocation=place(NZ_PLANT),
            )
            for offset, parent, children, rest in (
                (0, goods.case_a, goods.cans_a, None),
                (4, goods.case_b, goods.cans_b, None),
                (30, goods.pallet_a, [goods.case_a], rest_a),
                (42, goods.pallet_b, [goods.case_b], rest_b),
            )
        ),
    )


def _ship_to_shanghai(story: Story) -> str:
    """Both pallets leave for the importer; returns the importer's purchase order number."""
    goods = story.goods
    shipped = story.at(53, "16:20", NZ_TIME)
    purchase_order = f"HY-PO-{shipped:%y}-0311"
    story.step(
        PRODUCER,
        event(
            "ObjectEvent",
            shipped,
            action="OBSERVE",
            epcList=[goods.pallet_a, goods.pallet_b],
            quantityList=[qty(goods.can_lot_a, LOT_A_SIZE), qty(goods.can_lot_b, LOT_B_SIZE)],
            bizStep="shipping",
            disposition="in_transit",
            readPoint=place(NZ_PLANT),
            bizTransactionList=[
                bt("po", IM.gln("00000"), purchase_order),
                bt("bol", NZ.gln("00000"), BILL_OF_LADING),
            ],
            sourceList=moves("source", NZ, NZ_PLANT),
            destinationList=moves("destination", IM, BONDED),
            certificationInfo=f"{CERT}/mpi/e-cert/NZL-DAIRY-{shipped:%Y}-118734",
        ),
    )
    return purchase_order


def _commission_domestic_lot(story: Story) -> None:
    """The processor's own domestic lot, produced before the import arrives."""
    made = story.at(45, "08:30")
    story.step(
        PROCESSOR,
        event(
            "ObjectEvent",
            made,
            action="ADD",
            quantityList=[qty(story.goods.domestic_lot, 2000, "KGM")],
            bizStep="commissioning",
            disposition="active",
            readPoint=place(SR_PLANT),
            bizLocation=place(SR_PLANT),
            ilmd=_produced_ilmd(
                LOT_D,
                made,
                540,
                "Whole Milk Powder 25 kg (Heilongjiang milk)",
                "全脂乳粉 25千克(黑龙江奶源)",
                PROCESSOR.name,
                "CN",
            ),
        ),
    )


# ---------------------------------------------------------------------------------------
# 2-3. Arrival at the port, inspection, and the destruction of lot B.


def _arrive_at_port(story: Story, purchase_order: str) -> None:
    """Arrival at the port, then into the bonded warehouse to await inspection."""
    goods = story.goods
    both_lots = [qty(goods.can_lot_a, LOT_A_SIZE), qty(goods.can_lot_b, LOT_B_SIZE)]
    story.step(
        IMPORTER,
        event(
            "ObjectEvent",
            story.at(32, "06:40"),
            action="OBSERVE",
            epcList=[goods.pallet_a, goods.pallet_b],
            quantityList=both_lots,
            bizStep="arriving",
            disposition="in_progress",
            readPoint=place(PORT),
            bizLocation=place(PORT),
            bizTransactionList=[bt("bol", NZ.gln("00000"), BILL_OF_LADING)],
        ),
        event(
            "ObjectEvent",
            story.at(32, "15:20"),
            action="OBSERVE",
            epcList=[goods.pallet_a, goods.pallet_b],
            quantityList=both_lots,
            bizStep="receiving",
            disposition="sellable_not_accessible",
            readPoint=place(BONDED),
            bizLocation=place(BONDED),
            bizTransactionList=[bt("po", IM.gln("00000"), purchase_order)],
            sourceList=moves("source", NZ, NZ_PLANT),
            destinationList=moves("destination", IM, BONDED),
        ),
    )


def _inspect_at_port(story: Story) -> None:
    """Lot A passes, lot B fails."""
    goods = story.goods
    inspected = story.at(31, "10:05")
    story.step(
        AUTHORITY,
        event(
            "ObjectEvent",
            inspected,
            action="OBSERVE",
            epcList=[goods.pallet_a],
            quantityList=[qty(goods.can_lot_a, LOT_A_SIZE)],
            bizStep="inspecting",
            disposition="conformant",
            readPoint=place(LAB),
            bizLocation=place(BONDED),
            certificationInfo=f"{CERT}/ciq/inspection/310000-{inspected:%Y}-0087113",
        ),
        event(
            "ObjectEvent",
            story.at(31, "10:40"),
            action="OBSERVE",
            epcList=[goods.pallet_b],
            quantityList=[qty(goods.can_lot_b, LOT_B_SIZE)],
            bizStep="inspecting",
            disposition="non_conformant",
            readPoint=place(LAB),
            bizLocation=place(BONDED),
            **{
                "traceledger:finding": "Aerobic plate count 82000 CFU/g exceeds the "
                "GB 19644-2010 limit 菌落总数超出GB 19644-2010限量",
            },
        ),
    )


def _destroy_lot_b(story: Story) -> None:
    """Lot B is destroyed under the authority's supervision."""
    goods = story.goods
    story.step(
        AUTHORITY,
        event(
            "ObjectEvent",
            story.at(29, "14:00"),
            action="OBSERVE",
            epcList=[goods.pallet_b, goods.case_b, *goods.cans_b],
            quantityList=[qty(goods.can_lot_b, LOT_B_SIZE)],
            bizStep="destroying",
            disposition="destroyed",
            readPoint=place(DISPOSAL),
            bizLocation=place(DISPOSAL),
        ),
    )


# ---------------------------------------------------------------------------------------
# 4. Released lot A is split: retail cans to the distributor, the rest to the processor,
# which blends it with its domestic lot into a new lot of its own.


def _split_lot_a(story: Story) -> None:
    """The importer unpacks pallet A and ships its two parts."""
    goods = story.goods
    released = story.at(27, "09:00")
    story.step(
        IMPORTER,
        event(
            "AggregationEvent",
            released,
            parentID=goods.pallet_a,
            childEPCs=[goods.case_a],
            action="DELETE",
            bizStep="unpacking",
            disposition="in_progress",
            readPoint=place(BONDED),
            bizLocation=place(BONDED),
        ),
        event(
            "ObjectEvent",
            released + timedelta(hours=2),
            action="OBSERVE",
            epcList=[goods.pallet_a],
            quantityList=[qty(goods.can_lot_a, LOT_A_SIZE - SERIALIZED_A)],
            bizStep="shipping",
            disposition="in_transit",
            readPoint=place(BONDED),
            bizTransactionList=[
                bt("po", PR.gln("00000"), "SR-PO-7781"),
                bt("inv", IM.gln("00000"), f"HY-INV-{released:%y}-1190"),
            ],
            sourceList=moves("source", IM, BONDED),
            destinationList=moves("destination", PR, SR_PLANT),
            **{"traceledger:confidential": ["bizTransactionList"]},
        ),
        event(
            "ObjectEvent",
            released + timedelta(hours=2, minutes=25),
            action="OBSERVE",
            epcList=[goods.case_a],
            quantityList=[qty(goods.can_lot_a, SERIALIZED_A)],
            bizStep="shipping",
            disposition="in_transit",
            readPoint=place(BONDED),
            sourceList=moves("source", IM, BONDED),
            destinationList=moves("destination", DI, DC),
        ),
    )


def _receive_lot_a(story: Story) -> None:
    """The processor receives the pallet, the distributor the case of retail cans."""
    goods = story.goods
    story.step(
        PROCESSOR,
        event(
            "ObjectEvent",
            story.at(27, "16:10"),
            action="OBSERVE",
            epcList=[goods.pallet_a],
            quantityList=[qty(goods.can_lot_a, LOT_A_SIZE - SERIALIZED_A)],
            bizStep="receiving",
            disposition="in_progress",
            readPoint=place(SR_PLANT),
            bizLocation=place(SR_PLANT),
            sourceList=moves("source", IM, BONDED),
            destinationList=moves("destination", PR, SR_PLANT),
        ),
    )
    story.step(
        DISTRIBUTOR,
        event(
            "ObjectEvent",
            story.at(27, "17:45"),
            action="OBSERVE",
            epcList=[goods.case_a],
            quantityList=[qty(goods.can_lot_a, SERIALIZED_A)],
            bizStep="receiving",
            disposition="in_progress",
            readPoint=place(DC),
            bizLocation=place(DC),
            sourceList=moves("source", IM, BONDED),
            destinationList=moves("destination", DI, DC),
        ),
    )


def _blend(story: Story) -> None:
    """Lot A and the domestic lot become the processor's new lot (a transformation)."""
    goods = story.goods
    blended = story.at(25, "13:30")
    story.step(
        PROCESSOR,
        event(
            "TransformationEvent",
            blended,
            inputQuantityList=[
                qty(goods.can_lot_a, LOT_A_SIZE - SERIALIZED_A),
                qty(goods.domestic_lot, 1500, "KGM"),
            ],
            outputEPCList=goods.units,
            outputQuantityList=[qty(goods.blend_lot, 5000 - len(goods.units))],
            bizStep="commissioning",
            disposition="active",
            readPoint=place(SR_PLANT),
            bizLocation=place(SR_PLANT),
            ilmd=_produced_ilmd(
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


def _pack_and_ship_blend(story: Story) -> None:
    """The serialized blended cans, in two cases, go to the distributor."""
    goods = story.goods
    packed = story.at(24, "09:15")
    story.step(
        PROCESSOR,
        *(
            event(
                "AggregationEvent",
                packed + timedelta(minutes=offset),
                parentID=parent,
                childEPCs=children,
                action="ADD",
                bizStep="packing",
                disposition="in_progress",
                readPoint=place(SR_PLANT),
                bizLocation=place(SR_PLANT),
            )
            for offset, parent, children in (
                (0, goods.blend_case_1, goods.units[:4]),
                (3, goods.blend_case_2, goods.units[4:]),
            )
        ),
        event(
            "ObjectEvent",
            packed + timedelta(hours=5),
            action="OBSERVE",
            epcList=[goods.blend_case_1, goods.blend_case_2],
            bizStep="shipping",
            disposition="in_transit",
            readPoint=place(SR_PLANT),
            sourceList=moves("source", PR, SR_PLANT),
            destinationList=moves("destination", DI, DC),
        ),
    )


# ---------------------------------------------------------------------------------------
# 5. Distribution to two retailers, which sell some units.


def _distribute(story: Story) -> None:
    """The distributor receives the blend, then sends a cage and a case to the retailers."""
    goods = story.goods
    story.step(
        DISTRIBUTOR,
        event(
            "ObjectEvent",
            story.at(24, "18:30"),
            action="OBSERVE",
            epcList=[goods.blend_case_1, goods.blend_case_2],
            bizStep="receiving",
            disposition="in_progress",
            readPoint=place(DC),
            bizLocation=place(DC),
            sourceList=moves("source", PR, SR_PLANT),
            destinationList=moves("destination", DI, DC),
        ),
        event(
            "AggregationEvent",
            story.at(22, "05:10"),
            parentID=goods.cage,
            childEPCs=[goods.case_a, goods.blend_case_1],
            action="ADD",
            bizStep="packing",
            disposition="in_progress",
            readPoint=place(DC),
            bizLocation=place(DC),
        ),
        *(
            event(
                "ObjectEvent",
                story.at(22, hhmm),
                action="OBSERVE",
                epcList=[shipped],
                bizStep="shipping",
                disposition="in_transit",
                readPoint=place(DC),
                sourceList=moves("source", DI, DC),
                destinationList=moves("destination", retailer, store),
            )
            for hhmm, shipped, retailer, store in (
                ("06:00", goods.cage, R1, STORE_1),
                ("06:20", goods.blend_case_2, R2, STORE_LJZ),
            )
        ),
    )


def _deliver_to_retailer_1(story: Story) -> None:
    """Retailer 1 receives the cage and unpacks it down to the units."""
    goods = story.goods
    story.step(
        RETAILER_1,
        event(
            "ObjectEvent",
            story.at(22, "08:05"),
            action="OBSERVE",
            epcList=[goods.cage],
            bizStep="receiving",
            disposition="in_progress",
            readPoint=place(STORE_1),
            bizLocation=place(STORE_1),
            sourceList=moves("source", DI, DC),
            destinationList=moves("destination", R1, STORE_1),
        ),
        *(
            event(
                "AggregationEvent",
                story.at(22, "08:30") + timedelta(minutes=offset),
                parentID=parent,
                childEPCs=children,
                action="DELETE",
                bizStep="unpacking",
                disposition="sellable_accessible",
                readPoint=place(STORE_1),
                bizLocation=place(STORE_1),
            )
            for offset, parent, children in (
                (0, goods.cage, [goods.case_a, goods.blend_case_1]),
                (5, goods.case_a, goods.cans_a),
                (9, goods.blend_case_1, goods.units[:4]),
            )
        ),
    )


def _correct_a_misdelivery(story: Story) -> None:
    """Retailer 2 scans the delivery in at the wrong store, then declares that an error."""
    wrong = event(
        "ObjectEvent",
        story.at(22, "09:10"),
        action="OBSERVE",
        epcList=[story.goods.blend_case_2],
        bizStep="receiving",
        disposition="in_progress",
        readPoint=place(STORE_ZJ),
        bizLocation=place(STORE_ZJ),
    )
    right = {**wrong, "readPoint": place(STORE_LJZ), "bizLocation": place(STORE_LJZ)}
    story.step(RETAILER_2, wrong)
    story.step(
        RETAILER_2,
        {
            **wrong,
            "errorDeclaration": {
                "declarationTime": stamp(story.at(21, "11:00")),
                "reason": "incorrect_data",
                "correctiveEventIDs": [hash_id(right)],
            },
        },
        right,
    )


def _retail_sale(story: Story, days_ago: int, hhmm: str, unit: str, store: str) -> dict[str, Any]:
    return event(
        "ObjectEvent",
        story.at(days_ago, hhmm),
        action="OBSERVE",
        epcList=[unit],
        bizStep="retail_selling",
        disposition="retail_sold",
        readPoint=place(store),
        bizLocation=place(store),
    )


def _sell_at_retailer_2(story: Story) -> None:
    """Retailer 2 unpacks its case and sells two blended cans."""
    units = story.goods.units
    story.step(
        RETAILER_2,
        event(
            "AggregationEvent",
            story.at(21, "11:20"),
            parentID=story.goods.blend_case_2,
            childEPCs=units[4:],
            action="DELETE",
            bizStep="unpacking",
            disposition="sellable_accessible",
            readPoint=place(STORE_LJZ),
            bizLocation=place(STORE_LJZ),
        ),
        _retail_sale(story, 17, "19:42", units[4], STORE_LJZ),
        _retail_sale(story, 12, "12:07", units[5], STORE_LJZ),
    )


def _sell_at_retailer_1(story: Story) -> None:
    """Retailer 1 sells two cans of lot A and a blended can."""
    goods = story.goods
    story.step(
        RETAILER_1,
        _retail_sale(story, 19, "18:25", goods.cans_a[2], STORE_1),
        _retail_sale(story, 16, "10:51", goods.cans_a[4], STORE_1),
        _retail_sale(story, 14, "20:13", goods.units[1], STORE_1),
    )


# ---------------------------------------------------------------------------------------
# 6. The recall: the producer's own notice, then the authority's order for Shanghai.


def _recall_lot_a(story: Story) -> None:
    """The producer recalls lot A, then the authority orders the recall in Shanghai."""
    lot_a = story.goods.can_lot_a
    reason = "Cronobacter spp. detected in a retained sample of lot " + LOT_A
    story.step(
        PRODUCER,
        event(
            "ObjectEvent",
            story.at(6, "17:00", NZ_TIME),
            action="OBSERVE",
            quantityList=[qty(lot_a)],
            disposition="recalled",
            readPoint=place(NZ_PLANT),
            **{"traceledger:recallReason": reason},
        ),
    )
    ordered = story.at(5, "09:30")
    story.step(
        AUTHORITY,
        event(
            "ObjectEvent",
            ordered,
            action="OBSERVE",
            quantityList=[qty(lot_a)],
            disposition="recalled",
            readPoint=place(CIQ_OFFICE),
            **{
                "traceledger:recallReason": reason,
                "traceledger:recallNotice": f"SH-CIQ-RC-{ordered:%Y}-017",
            },
        ),
    )


def _hold_recalled_stock(story: Story) -> None:
    """Retailer 1 takes its unsold recalled cans off the shelf."""
    goods = story.goods
    story.step(
        RETAILER_1,
        event(
            "ObjectEvent",
            story.at(5, "14:15"),
            action="OBSERVE",
            epcList=[goods.cans_a[i] for i in (0, 1, 3, 5)] + [goods.units[i] for i in (0, 2, 3)],
            bizStep="holding",
            disposition="non_sellable_other",
            readPoint=place(STORE_1),
            bizLocation=place(STORE_1),
        ),
    )
