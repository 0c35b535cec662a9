"""Strings of the consumer trace page in Chinese (zh-CN) and English.

The Chinese wording follows the city's policy text where it has a term (追溯, 一站式追溯查询,
召回, 口岸查验, 进口消费品, 销毁, 退运), so the page speaks the regulator's language. Every
label is a (zh, en) pair, so a missing translation is a type error, not a blank on the page.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone
from typing import Final, Literal

__all__ = [
    "BIZ_STEPS",
    "COUNTRIES",
    "DISPOSITIONS",
    "LANGS",
    "STRINGS",
    "Lang",
    "biz_step",
    "country",
    "disposition",
    "fact_label",
    "format_date",
    "format_day",
    "format_time",
    "text",
]

Lang = Literal["zh", "en"]
LANGS: Final[tuple[Lang, ...]] = ("zh", "en")

# key -> (zh, en); "{name}" placeholders are filled by text(..., name=...).
STRINGS: Final[dict[str, tuple[str, str]]] = {
    "brand": ("重要产品信息追溯", "Product trace"),
    "service": ("一站式追溯查询", "One-stop trace lookup"),
    "switch_label": ("语言", "Language"),
    "unnamed": ("未命名产品", "Unnamed product"),
    "imported": ("进口消费品", "Imported product"),
    "inspector_view": (
        "检验人员视图:页面包含保密信息,请勿转发。",
        "Inspector view: this page includes confidential details; do not forward it.",
    ),
    # status banners
    "recalled_title": ("已召回", "Recalled"),
    "recalled_body": (
        "本产品已被召回,请立即停止食用或使用,并联系商家退换。",
        "This product has been recalled. Stop eating or using it and contact the seller.",
    ),
    "recall_line": ("{date} 由 {by} 发起召回", "Recalled on {date} by {by}"),
    "recall_line_anon": ("{date} 发起召回", "Recalled on {date}"),
    "reason": ("原因:{reason}", "Reason: {reason}"),
    "destroyed_title": ("已销毁", "Destroyed"),
    "destroyed_body": (
        "记录显示本产品已作销毁处置,不应在市场上流通。如您购买到此产品,请向市场监管部门反映。",
        "Records show this product was destroyed; it should not be on sale. If you bought it, "
        "please report it to the market regulator.",
    ),
    "returned_title": ("已退运", "Returned"),
    "returned_body": (
        "记录显示本产品已作退运处置,不应在市场上流通。",
        "Records show this product was returned (sent back); it should not be on sale.",
    ),
    "expired_title": ("已过保质期", "Past its expiry date"),
    "expired_body": ("到期日:{date}", "Expiry date: {date}"),
    "ok_title": ("未发现召回或处置记录", "No recall or safety action on record"),
    "ok_body": (
        "以下为本产品的追溯信息,均来自企业上报并由平台签名存证。",
        "Below is this product's trace record, as reported by the companies involved and "
        "signed into the platform's log.",
    ),
    # product
    "product": ("产品信息", "Product"),
    "gtin": ("商品条码(GTIN)", "GTIN"),
    "lot": ("批次", "Lot"),
    "serial": ("序列号", "Serial"),
    "producer": ("生产企业", "Producer"),
    "origin_country": ("原产国", "Country of origin"),
    "production_date": ("生产日期", "Production date"),
    "expiry_date": ("保质期至", "Expiry date"),
    "more_facts": ("更多产品信息", "More product details"),
    "level_instance": ("单品", "Item"),
    "level_lot": ("批次", "Lot"),
    "level_class": ("产品", "Product"),
    "level_container": ("包装箱/托盘", "Container"),
    "level_location": ("地点", "Location"),
    # inspections
    "inspections": ("检验与口岸查验", "Inspections"),
    "conformant": ("合格", "Conformant"),
    "non_conformant": ("不合格", "Non-conformant"),
    "no_outcome": ("结果未公开", "Outcome not published"),
    "inspected_by": ("检验机构", "Inspected by"),
    "where": ("地点", "Where"),
    # origin
    "origin": ("产地与来源", "Origin"),
    "commission_place": ("生产地点", "Place of production"),
    "commissioned_at": ("生产时间", "Produced"),
    "inputs": ("原料批次", "Ingredient lots"),
    "no_inputs": ("无原料批次记录", "No ingredient lots recorded"),
    # timeline
    "journey": ("流通轨迹", "Journey"),
    "no_events": ("暂无流通记录。", "No journey records yet."),
    "who": ("记录方", "Recorded by"),
    "authority": ("监管部门", "Authority"),
    "from": ("来自", "From"),
    "to": ("去往", "To"),
    "record_no": ("记录 #{index}", "Record #{index}"),
    "rel_lot": ("本批次的记录", "Recorded for the whole lot"),
    "rel_class": ("本产品(所有批次)的记录", "Recorded for the product (all lots)"),
    "rel_container": ("经由包装箱/托盘 {via}", "Via container {via}"),
    "rel_input": ("经由原料批次 {via}", "Via ingredient lot {via}"),
    "rel_output": ("产出本批次", "Produced this lot"),
    "rel_output_via": ("由 {via} 加工产出本批次", "Produced this lot from {via}"),
    "confidential": (
        "部分信息仅对检验人员可见",
        "Some details are visible to inspectors only",
    ),
    "observed": ("记录", "Recorded"),
    "aggregated": ("装箱", "Packed into container"),
    "disaggregated": ("拆箱", "Unpacked from container"),
    "transformed": ("加工转化", "Processed"),
    "transacted": ("交易", "Business transaction"),
    "associated": ("关联", "Associated"),
    "removed": ("注销", "Removed"),
    # certificates
    "certificates": ("证书与认证", "Certificates"),
    "cert_agency": ("发证机构", "Issued by"),
    "cert_value": ("证书编号/结果", "Certificate / result"),
    "cert_seen": ("见于:{step},{date}", "Recorded with: {step}, {date}"),
    # verification
    "verified": ("防篡改验证", "Tamper-evident record"),
    "verified_against": ("已对照检查点 {n} 验证", "Verified against checkpoint {n}"),
    "verified_body": (
        "本页每条记录都附有默克尔包含证明,可对照平台签名的第 {n} 号检查点(日志大小 {n})"
        "离线核验,证明记录在存证后未被篡改。",
        "Every record on this page carries a Merkle inclusion proof against the platform's "
        "signed checkpoint of log size {n}, so anyone can check offline that it was not "
        "altered after it was recorded.",
    ),
    "pending": (
        "另有 {n} 条最新记录尚未纳入检查点,稍后刷新即可核验。",
        "{n} newer record(s) are not yet covered by the checkpoint; reload shortly to verify them.",
    ),
    "not_verified": (
        "暂无可核验的记录。",
        "There are no records to verify yet.",
    ),
    "verifier_key": ("验证公钥", "Verifier key"),
    "how_to_check": ("自行核验", "Check it yourself"),
    "how_to_check_body": (
        "安装 traceledger 后运行以下命令,它会下载本页数据并逐条核验签名与包含证明:",
        "With traceledger installed, run this; it fetches this page's data and checks every "
        "signature and inclusion proof:",
    ),
    "json_link": ("机器可读数据(JSON)", "Machine-readable data (JSON)"),
    "checkpoint_link": ("当前检查点", "Current checkpoint"),
    "checkpoint_text": ("本页所用的签名检查点", "Signed checkpoint used by this page"),
    "identifier": ("标识", "Identifier"),
    # problem page
    "problem_hint": (
        "请核对二维码或链接是否完整;如产品尚未接入追溯平台,暂时无法查询。",
        "Check that the QR code or link is complete; products not yet connected to the "
        "trace platform cannot be looked up.",
    ),
    # source/destination types (CBV SDT)
    "sdt_owning_party": ("所有方", "owner"),
    "sdt_possessing_party": ("持有方", "holder"),
    "sdt_location": ("地点", "location"),
}

# CBV 2.0 business steps; "transforming" is not CBV but senders use it for processing.
BIZ_STEPS: Final[dict[str, tuple[str, str]]] = {
    "accepting": ("验收", "Accepted"),
    "arriving": ("到港/到达", "Arrived"),
    "assembling": ("组装", "Assembled"),
    "collecting": ("收集", "Collected"),
    "commissioning": ("生产赋码", "Produced and labelled"),
    "consigning": ("托运", "Consigned"),
    "creating_class_instance": ("创建批次", "Lot created"),
    "cycle_counting": ("盘点", "Cycle count"),
    "decommissioning": ("注销", "Decommissioned"),
    "departing": ("离开", "Departed"),
    "destroying": ("销毁", "Destroyed"),
    "disassembling": ("拆解", "Disassembled"),
    "dispensing": ("分装", "Dispensed"),
    "encoding": ("编码", "Encoded"),
    "entering_exiting": ("进出", "Entered or exited"),
    "holding": ("扣留", "Held"),
    "inspecting": ("检验", "Inspected"),
    "installing": ("安装", "Installed"),
    "killing": ("停用", "Deactivated"),
    "loading": ("装载", "Loaded"),
    "other": ("其他", "Other"),
    "packing": ("包装", "Packed"),
    "picking": ("拣货", "Picked"),
    "receiving": ("收货", "Received"),
    "removing": ("移除", "Removed"),
    "repackaging": ("重新包装", "Repackaged"),
    "repairing": ("维修", "Repaired"),
    "replacing": ("更换", "Replaced"),
    "reserving": ("预留", "Reserved"),
    "retail_selling": ("零售", "Sold at retail"),
    "sampling": ("抽样", "Sampled"),
    "sensor_reporting": ("传感器记录", "Sensor reading"),
    "shipping": ("发货", "Shipped"),
    "staging_outbound": ("待发货", "Staged for shipping"),
    "stock_taking": ("盘点", "Stock-taking"),
    "stocking": ("上架", "Stocked"),
    "storing": ("储存", "Stored"),
    "transporting": ("运输", "In transport"),
    "unloading": ("卸货", "Unloaded"),
    "unpacking": ("拆包", "Unpacked"),
    "void_shipping": ("取消发货", "Shipment voided"),
    "transforming": ("加工", "Processed"),
}

DISPOSITIONS: Final[dict[str, tuple[str, str]]] = {
    "active": ("已激活", "Active"),
    "available": ("可用", "Available"),
    "completeness_inferred": ("完整性(推断)", "Completeness inferred"),
    "completeness_verified": ("完整性已核实", "Completeness verified"),
    "conformant": ("合格", "Conformant"),
    "container_closed": ("已封箱", "Container closed"),
    "container_open": ("已开箱", "Container open"),
    "damaged": ("损坏", "Damaged"),
    "destroyed": ("已销毁", "Destroyed"),
    "dispensed": ("已分装", "Dispensed"),
    "disposed": ("已处置", "Disposed"),
    "encoded": ("已编码", "Encoded"),
    "expired": ("已过期", "Expired"),
    "in_progress": ("处理中", "In progress"),
    "in_transit": ("运输中", "In transit"),
    "inactive": ("未激活", "Inactive"),
    "mismatch_class": ("品类不符", "Class mismatch"),
    "mismatch_instance": ("单品不符", "Item mismatch"),
    "mismatch_quantity": ("数量不符", "Quantity mismatch"),
    "needs_replacement": ("需更换", "Needs replacement"),
    "no_pedigree_match": ("来源不符", "No pedigree match"),
    "non_conformant": ("不合格", "Non-conformant"),
    "non_sellable_other": ("不可销售", "Not sellable"),
    "partially_dispensed": ("部分分装", "Partially dispensed"),
    "recalled": ("已召回", "Recalled"),
    "reserved": ("已预留", "Reserved"),
    "retail_sold": ("已售出", "Sold"),
    "returned": ("已退运", "Returned"),
    "sellable_accessible": ("可销售", "Sellable"),
    "sellable_not_accessible": ("可销售(未上架)", "Sellable, not on shelf"),
    "stolen": ("被盗", "Stolen"),
    "unavailable": ("不可用", "Unavailable"),
    "unknown": ("未知", "Unknown"),
}

# ISO 3166-1 alpha-2 codes of the usual trading partners; others are shown as the code.
COUNTRIES: Final[dict[str, tuple[str, str]]] = {
    "AR": ("阿根廷", "Argentina"),
    "AT": ("奥地利", "Austria"),
    "AU": ("澳大利亚", "Australia"),
    "BE": ("比利时", "Belgium"),
    "BR": ("巴西", "Brazil"),
    "CA": ("加拿大", "Canada"),
    "CH": ("瑞士", "Switzerland"),
    "CL": ("智利", "Chile"),
    "CN": ("中国", "China"),
    "CZ": ("捷克", "Czechia"),
    "DE": ("德国", "Germany"),
    "DK": ("丹麦", "Denmark"),
    "EC": ("厄瓜多尔", "Ecuador"),
    "EG": ("埃及", "Egypt"),
    "ES": ("西班牙", "Spain"),
    "FI": ("芬兰", "Finland"),
    "FR": ("法国", "France"),
    "GB": ("英国", "United Kingdom"),
    "GR": ("希腊", "Greece"),
    "HK": ("中国香港", "Hong Kong, China"),
    "HU": ("匈牙利", "Hungary"),
    "ID": ("印度尼西亚", "Indonesia"),
    "IE": ("爱尔兰", "Ireland"),
    "IL": ("以色列", "Israel"),
    "IN": ("印度", "India"),
    "IS": ("冰岛", "Iceland"),
    "IT": ("意大利", "Italy"),
    "JP": ("日本", "Japan"),
    "KH": ("柬埔寨", "Cambodia"),
    "KR": ("韩国", "Republic of Korea"),
    "KZ": ("哈萨克斯坦", "Kazakhstan"),
    "LA": ("老挝", "Laos"),
    "MM": ("缅甸", "Myanmar"),
    "MO": ("中国澳门", "Macao, China"),
    "MX": ("墨西哥", "Mexico"),
    "MY": ("马来西亚", "Malaysia"),
    "NL": ("荷兰", "Netherlands"),
    "NO": ("挪威", "Norway"),
    "NZ": ("新西兰", "New Zealand"),
    "PE": ("秘鲁", "Peru"),
    "PH": ("菲律宾", "Philippines"),
    "PK": ("巴基斯坦", "Pakistan"),
    "PL": ("波兰", "Poland"),
    "PT": ("葡萄牙", "Portugal"),
    "RU": ("俄罗斯", "Russia"),
    "SA": ("沙特阿拉伯", "Saudi Arabia"),
    "SE": ("瑞典", "Sweden"),
    "SG": ("新加坡", "Singapore"),
    "TH": ("泰国", "Thailand"),
    "TR": ("土耳其", "Türkiye"),
    "TW": ("中国台湾", "Taiwan, China"),
    "UA": ("乌克兰", "Ukraine"),
    "US": ("美国", "United States"),
    "UY": ("乌拉圭", "Uruguay"),
    "VN": ("越南", "Viet Nam"),
    "ZA": ("南非", "South Africa"),
}

# CBV master-data attribute names that appear in ILMD, by their local name.
_FACTS: Final[dict[str, tuple[str, str]]] = {
    "bestBeforeDate": ("最佳食用期", "Best before"),
    "catchArea": ("捕捞海域", "Catch area"),
    "countryOfExport": ("出口国", "Country of export"),
    "countryOfLastProcessing": ("最后加工国", "Country of last processing"),
    "countryOfOrigin": ("原产国", "Country of origin"),
    "drainedWeight": ("沥干重量", "Drained weight"),
    "farmList": ("农场", "Farms"),
    "firstFreezeDate": ("首次冷冻日期", "First frozen"),
    "grossWeight": ("毛重", "Gross weight"),
    "growingMethodCode": ("种植方式", "Growing method"),
    "harvestEndDate": ("收获结束日期", "Harvest ended"),
    "harvestStartDate": ("收获开始日期", "Harvest started"),
    "itemExpirationDate": ("保质期至", "Expiry date"),
    "lotNumber": ("批号", "Lot number"),
    "netWeight": ("净重", "Net weight"),
    "preservationTechniqueCode": ("保存方式", "Preservation"),
    "productionDate": ("生产日期", "Production date"),
    "sellByDate": ("销售截止日期", "Sell by"),
    "storageStateCode": ("储存状态", "Storage state"),
    "unloadingPort": ("卸货港", "Port of unloading"),
}

_MONTHS_EN: Final = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
                     "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")  # fmt: skip
_OFFSET = re.compile(r"([+-])(\d{2}):(\d{2})")
_DATE = re.compile(r"(\d{4})-(\d{2})-(\d{2})")


def _pick(pair: tuple[str, str], lang: Lang) -> str:
    return pair[0] if lang == "zh" else pair[1]


def text(lang: Lang, key: str, **values: object) -> str:
    """The string `key` in `lang`, placeholders filled (values are not escaped here)."""
    template = _pick(STRINGS[key], lang)
    return template.format(**values) if values else template


def biz_step(lang: Lang, step: str) -> str:
    """A business step's label; an unknown (extension) step is shown as given."""
    pair = BIZ_STEPS.get(step)
    return _pick(pair, lang) if pair else step


def disposition(lang: Lang, value: str) -> str:
    pair = DISPOSITIONS.get(value)
    return _pick(pair, lang) if pair else value


def country(lang: Lang, code: str) -> str:
    """A country's name for an ISO alpha-2 code; anything else is shown as given."""
    pair = COUNTRIES.get(code.strip().upper())
    return _pick(pair, lang) if pair else code


def fact_label(lang: Lang, key: str) -> str:
    """The label of an ILMD key such as ``cbvmda:countryOfOrigin``; unknown keys as given."""
    local = re.split(r"[:#/]", key)[-1]
    pair = _FACTS.get(local)
    return _pick(pair, lang) if pair else key


def _date_text(lang: Lang, year: int, month: int, day: int) -> str:
    if lang == "zh":
        return f"{year}年{month}月{day}日"
    return f"{day} {_MONTHS_EN[month - 1]} {year}"


def format_date(lang: Lang, value: str) -> str:
    """``2026-09-01`` (or a date-time) as a local date; anything unparsable as given."""
    match = _DATE.match(value)
    if match is None:
        return value
    year, month, day = (int(g) for g in match.groups())
    if not 1 <= month <= 12 or not 1 <= day <= 31:
        return value
    return _date_text(lang, year, month, day)


def _zone(offset: str | None) -> timezone | None:
    if offset is None:
        return None
    match = _OFFSET.fullmatch(offset.strip())
    if match is None:
        return None
    sign, hours, minutes = match.groups()
    delta = timedelta(hours=int(hours), minutes=int(minutes))
    if delta >= timedelta(hours=24):
        return None
    return timezone(-delta if sign == "-" else delta)


def _localize(value: str, offset: str | None) -> datetime | None:
    try:
        moment = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    zone = _zone(offset)
    return moment.astimezone(zone) if zone is not None else moment


def format_day(lang: Lang, value: str, offset: str | None = None) -> str:
    """The local date of an ISO 8601 instant at `offset`; anything unparsable as given."""
    moment = _localize(value, offset)
    if moment is None:
        return format_date(lang, value)
    return _date_text(lang, moment.year, moment.month, moment.day)


def format_time(lang: Lang, value: str, offset: str | None = None) -> str:
    """An ISO 8601 instant as local wall time at `offset` (the event's own time zone).

    Without a usable offset the time's own zone is kept (UTC when it has none), and the
    zone is always printed, so a reader never mistakes it for their own.
    """
    moment = _localize(value, offset)
    if moment is None:
        return value
    shift = moment.utcoffset() or timedelta(0)
    minutes = int(shift.total_seconds()) // 60
    sign = "-" if minutes < 0 else "+"
    label = f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"
    day = _date_text(lang, moment.year, moment.month, moment.day)
    sep = " " if lang == "zh" else ", "
    return f"{day}{sep}{moment:%H:%M} ({label})"
