"""The demo's parties, their signing keys, and every GS1 identifier the story uses.

Every key is minted from a party's company prefix, with its check digit computed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from traceledger.standards.gs1 import GS1Key, check_digit, epc_urn

SEED = b"traceledger demo scenario v1"


@dataclass(frozen=True)
class Party:
    name: str
    prefixes: tuple[str, ...]
    role: str  # "enterprise" | "authority"


def party_key(name: str) -> Ed25519PrivateKey:
    """A demo party's signing key: derived from a public seed, so reproducible (and public)."""
    return Ed25519PrivateKey.from_private_bytes(
        hashlib.sha256(SEED + b"\x00" + name.encode()).digest()
    )


def _digits(text: str, count: int) -> str:
    if len(text) != count or not (text.isascii() and text.isdigit()):
        raise ValueError(f"expected {count} digits, got {text!r}")
    return text


class Company:
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

# Each party's keys, in the order of PARTIES.
NZ, IM, QA, PR, DI, R1, R2 = (Company(p.prefixes[0]) for p in PARTIES)

# Trade items (GTIN-14) and lots.
CAN = NZ.gtin("0", "10015")  # whole milk powder, 900 g can
CAN_CASE = NZ.gtin("1", "10015")  # case of 6 cans
DOMESTIC = PR.gtin("0", "20031")  # domestic whole milk powder, 25 kg bag
BLEND = PR.gtin("0", "30058")  # formulated milk powder for adults, 800 g can
BLEND_CASE = PR.gtin("1", "30058")  # case of 4 cans
LOT_A, LOT_B, LOT_D, LOT_P = "CPA117", "CPB118", "HLJ2031", "SR5502"
CANS_A = tuple(f"A{n}" for n in range(1001, 1007))
CANS_B = tuple(f"B{n}" for n in range(2001, 2005))
BLEND_UNITS = tuple(f"P{n:06d}" for n in range(101, 109))
LOT_A_SIZE, LOT_B_SIZE = 2400, 1600  # cans, serialized ones included

# Logistic units.
PALLET_A, PALLET_B = NZ.sscc("000004117"), NZ.sscc("000004118")
CAGE = DI.sscc("000000731")  # the distributor's roll cage to retailer 1

# Locations (GLN-13) and their names, which every document carries as EPCIS master data.
NZ_PLANT = NZ.gln("00017")
PORT = QA.gln("00015")
LAB = QA.gln("00022")
DISPOSAL = QA.gln("00039")
CIQ_OFFICE = QA.gln("00001")
BONDED = IM.gln("00021")
SR_PLANT = PR.gln("00012")
DC = DI.gln("00018")
STORE_1 = R1.gln("00103")
STORE_LJZ, STORE_ZJ = R2.gln("00207"), R2.gln("00214")
PLACES: dict[str, tuple[str, str, str, str]] = {  # GLN -> (name, 名称, city, ISO country)
    NZ_PLANT: (
        "Canterbury Pastures spray-dryer plant",
        "坎特伯雷牧场喷雾干燥工厂",
        "Darfield",
        "NZ",
    ),
    PORT: ("Yangshan Deep-Water Port inspection site", "洋山深水港查验场地", "Shanghai", "CN"),
    LAB: ("Yangshan port inspection laboratory", "洋山口岸检验实验室", "Shanghai", "CN"),
    DISPOSAL: ("Lingang supervised disposal site", "临港监督销毁场所", "Shanghai", "CN"),
    CIQ_OFFICE: (
        "Shanghai CIQ Yangshan office",
        "上海出入境检验检疫局洋山办事处",
        "Shanghai",
        "CN",
    ),
    BONDED: (
        "Haiyue bonded warehouse, Yangshan bonded port area",
        "海悦洋山保税港区仓库",
        "Shanghai",
        "CN",
    ),
    SR_PLANT: ("Shenrun dairy plant, Fengxian", "申润乳品奉贤工厂", "Shanghai", "CN"),
    DC: ("Huadong cold-chain DC, Minhang", "华东冷链闵行配送中心", "Shanghai", "CN"),
    STORE_1: (
        "Jing'an Fresh Market, West Nanjing Road",
        "静安鲜选超市南京西路店",
        "Shanghai",
        "CN",
    ),
    STORE_LJZ: ("Pudong Harbour Supermarket, Lujiazui", "浦东港湾超市陆家嘴店", "Shanghai", "CN"),
    STORE_ZJ: ("Pudong Harbour Supermarket, Zhangjiang", "浦东港湾超市张江店", "Shanghai", "CN"),
}
# Each party's own name in English and Chinese, which its documents carry as master data
# (the registry knows it by `Party.name`).
PARTY_NAMES: dict[str, tuple[str, str]] = {
    PRODUCER.name: ("Canterbury Pastures Dairy Ltd", "坎特伯雷牧场乳业有限公司"),
    IMPORTER.name: ("Shanghai Haiyue Import & Export Co., Ltd.", "上海海悦进出口有限公司"),
    AUTHORITY.name: (
        "Shanghai Entry-Exit Inspection and Quarantine, Yangshan",
        "上海出入境检验检疫局洋山办事处",
    ),
    PROCESSOR.name: ("Shanghai Shenrun Dairy Products Co., Ltd.", "上海申润乳品有限公司"),
    DISTRIBUTOR.name: ("Huadong Cold Chain Distribution Co., Ltd.", "华东冷链配送有限公司"),
    RETAILER_1.name: ("Jing'an Fresh Market", "静安鲜选超市"),
    RETAILER_2.name: ("Pudong Harbour Supermarkets", "浦东港湾超市"),
}
# Trade items by GTIN: (name, 名称).
PRODUCTS: dict[str, tuple[str, str]] = {
    CAN: ("Whole Milk Powder 900 g", "全脂奶粉 900克"),
    CAN_CASE: ("Whole Milk Powder 900 g, case of 6", "全脂奶粉 900克 (6罐装箱)"),
    DOMESTIC: ("Whole Milk Powder 25 kg (Heilongjiang milk)", "全脂乳粉 25千克(黑龙江奶源)"),
    BLEND: ("Formulated Milk Powder for Adults 800 g", "成人调制乳粉 800克"),
    BLEND_CASE: (
        "Formulated Milk Powder for Adults 800 g, case of 4",
        "成人调制乳粉 800克 (4罐装箱)",
    ),
}

CERT = "https://certificates.example.org"  # stands in for the issuers' registers


@dataclass(frozen=True)
class Goods:
    """The story's goods as the events name them (EPC URNs)."""

    can_lot_a: str
    can_lot_b: str
    cans_a: list[str]
    cans_b: list[str]
    case_a: str  # the case of lot A's serialized cans
    case_b: str
    pallet_a: str
    pallet_b: str
    domestic_lot: str
    blend_lot: str
    units: list[str]  # the serialized blended cans
    blend_case_1: str
    blend_case_2: str
    cage: str

    @classmethod
    def mint(cls) -> Goods:
        # Fresh lists on every call, so two built scenarios never share one.
        return cls(
            can_lot_a=NZ.lgtin(CAN, LOT_A),
            can_lot_b=NZ.lgtin(CAN, LOT_B),
            cans_a=[NZ.sgtin(CAN, s) for s in CANS_A],
            cans_b=[NZ.sgtin(CAN, s) for s in CANS_B],
            case_a=NZ.sgtin(CAN_CASE, "C10001"),
            case_b=NZ.sgtin(CAN_CASE, "C10002"),
            pallet_a=NZ.sscc_urn(PALLET_A),
            pallet_b=NZ.sscc_urn(PALLET_B),
            domestic_lot=PR.lgtin(DOMESTIC, LOT_D),
            blend_lot=PR.lgtin(BLEND, LOT_P),
            units=[PR.sgtin(BLEND, s) for s in BLEND_UNITS],
            blend_case_1=PR.sgtin(BLEND_CASE, "PC0001"),
            blend_case_2=PR.sgtin(BLEND_CASE, "PC0002"),
            cage=DI.sscc_urn(CAGE),
        )
