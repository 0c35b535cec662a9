"""The page's fixed vocabulary: CBV business steps and dispositions, ILMD attributes,
countries, in the shopper's words.

Only the English source text lives here, marked for extraction (``N_(context, text)``);
every language's wording is in its catalog (``locale/<lang>/LC_MESSAGES/messages.po``),
where the contexts ``bizStep``, ``disposition``, ``fact`` and ``country`` tell the
translator what a message labels. A step says what happened to the goods ("Shipped"),
a disposition the state they were left in ("On the way"), in words a shopper uses rather
than CBV's.
"""

from __future__ import annotations

from typing import Final


def N_(context: str, message: str) -> tuple[str, str]:  # noqa: N802 - gettext's marker name
    """Mark `message` for extraction under `context`; translated where it is shown."""
    return context, message


# CBV 2.0 business steps; "transforming" is not CBV but senders use it for processing.
BIZ_STEPS: Final[dict[str, tuple[str, str]]] = {
    "accepting": N_("bizStep", "Accepted"),
    "arriving": N_("bizStep", "Arrived"),
    "assembling": N_("bizStep", "Assembled"),
    "collecting": N_("bizStep", "Collected"),
    "commissioning": N_("bizStep", "Produced and labelled"),
    "consigning": N_("bizStep", "Handed to the carrier"),
    "creating_class_instance": N_("bizStep", "Batch created"),
    "cycle_counting": N_("bizStep", "Counted in stock"),
    "decommissioning": N_("bizStep", "Code taken out of use"),
    "departing": N_("bizStep", "Left the site"),
    "destroying": N_("bizStep", "Destroyed"),
    "disassembling": N_("bizStep", "Taken apart"),
    "dispensing": N_("bizStep", "Portioned out"),
    "encoding": N_("bizStep", "Code written on the label"),
    "entering_exiting": N_("bizStep", "Entered or left the site"),
    "holding": N_("bizStep", "Held"),
    "inspecting": N_("bizStep", "Inspected"),
    "installing": N_("bizStep", "Fitted"),
    "killing": N_("bizStep", "Electronic tag switched off"),
    "loading": N_("bizStep", "Loaded for transport"),
    "other": N_("bizStep", "Other step"),
    "packing": N_("bizStep", "Packed"),
    "picking": N_("bizStep", "Picked for an order"),
    "receiving": N_("bizStep", "Received"),
    "removing": N_("bizStep", "Taken out"),
    "repackaging": N_("bizStep", "Repacked"),
    "repairing": N_("bizStep", "Repaired"),
    "replacing": N_("bizStep", "Replaced"),
    "reserving": N_("bizStep", "Codes set aside"),
    "retail_selling": N_("bizStep", "Sold in a shop"),
    "sampling": N_("bizStep", "Sampled for testing"),
    "sensor_reporting": N_("bizStep", "Sensor reading"),
    "shipping": N_("bizStep", "Shipped"),
    "staging_outbound": N_("bizStep", "Made ready to ship"),
    "stock_taking": N_("bizStep", "Stock-take"),
    "stocking": N_("bizStep", "Put on the shelf"),
    "storing": N_("bizStep", "Stored"),
    "transporting": N_("bizStep", "In transport"),
    "unloading": N_("bizStep", "Unloaded"),
    "unpacking": N_("bizStep", "Unpacked"),
    "void_shipping": N_("bizStep", "Shipment cancelled"),
    "transforming": N_("bizStep", "Processed"),
}

DISPOSITIONS: Final[dict[str, tuple[str, str]]] = {
    "active": N_("disposition", "In circulation"),
    "available": N_("disposition", "Available"),
    "completeness_inferred": N_("disposition", "Contents assumed complete"),
    "completeness_verified": N_("disposition", "Contents checked complete"),
    "conformant": N_("disposition", "Passed inspection"),
    "container_closed": N_("disposition", "Packed and sealed"),
    "container_open": N_("disposition", "Case opened"),
    "damaged": N_("disposition", "Damaged"),
    "destroyed": N_("disposition", "Destroyed"),
    "dispensed": N_("disposition", "All portioned out"),
    "disposed": N_("disposition", "Disposed of"),
    "encoded": N_("disposition", "Code written"),
    "expired": N_("disposition", "Past its expiry date"),
    "in_progress": N_("disposition", "In the supply chain"),
    "in_transit": N_("disposition", "On the way"),
    "inactive": N_("disposition", "Not yet in use"),
    "mismatch_class": N_("disposition", "Wrong product delivered"),
    "mismatch_instance": N_("disposition", "Wrong item delivered"),
    "mismatch_quantity": N_("disposition", "Wrong quantity delivered"),
    "needs_replacement": N_("disposition", "Needs replacing"),
    "no_pedigree_match": N_("disposition", "Papers do not match the goods"),
    "non_conformant": N_("disposition", "Failed inspection"),
    "non_sellable_other": N_("disposition", "Not for sale"),
    "partially_dispensed": N_("disposition", "Partly portioned out"),
    "recalled": N_("disposition", "Recalled"),
    "reserved": N_("disposition", "Set aside"),
    "retail_sold": N_("disposition", "Sold to a shopper"),
    "returned": N_("disposition", "Returned"),
    "sellable_accessible": N_("disposition", "On sale"),
    "sellable_not_accessible": N_("disposition", "In stock, not yet on sale"),
    "stolen": N_("disposition", "Reported stolen"),
    "unavailable": N_("disposition", "Not available"),
    "unknown": N_("disposition", "State unknown"),
}

# A step without a bizStep is named after its event type (and action).
BY_EVENT_TYPE: Final[dict[tuple[str, str | None], tuple[str, str]]] = {
    ("AggregationEvent", "ADD"): N_("bizStep", "Packed into a container"),
    ("AggregationEvent", "DELETE"): N_("bizStep", "Unpacked from a container"),
    ("ObjectEvent", "DELETE"): N_("bizStep", "Taken out of use"),
    ("TransformationEvent", None): N_("bizStep", "Processed"),
    ("TransactionEvent", None): N_("bizStep", "Business transaction"),
    ("AssociationEvent", None): N_("bizStep", "Associated"),
}
OBSERVED: Final = N_("bizStep", "Recorded")

# Dispositions that are bad or good news for the shopper (the timeline colours them).
BAD: Final = frozenset(
    {"recalled", "non_conformant", "destroyed", "damaged", "expired", "stolen", "returned"}
)
GOOD: Final = frozenset({"conformant", "retail_sold", "sellable_accessible"})

# CBV master-data attributes that appear in ILMD, by their local name.
FACTS: Final[dict[str, tuple[str, str]]] = {
    "bestBeforeDate": N_("fact", "Best before"),
    "catchArea": N_("fact", "Catch area"),
    "countryOfExport": N_("fact", "Country of export"),
    "countryOfLastProcessing": N_("fact", "Country of last processing"),
    "countryOfOrigin": N_("fact", "Country of origin"),
    "drainedWeight": N_("fact", "Drained weight"),
    "farmList": N_("fact", "Farms"),
    "firstFreezeDate": N_("fact", "First frozen"),
    "grossWeight": N_("fact", "Gross weight"),
    "growingMethodCode": N_("fact", "Growing method"),
    "harvestEndDate": N_("fact", "Harvest ended"),
    "harvestStartDate": N_("fact", "Harvest started"),
    "itemExpirationDate": N_("fact", "Expiry date"),
    "lotNumber": N_("fact", "Lot number"),
    "netWeight": N_("fact", "Net weight"),
    "preservationTechniqueCode": N_("fact", "Preservation"),
    "productionDate": N_("fact", "Production date"),
    "sellByDate": N_("fact", "Sell by"),
    "storageStateCode": N_("fact", "Storage state"),
    "unloadingPort": N_("fact", "Port of unloading"),
}

# ISO 3166-1 alpha-2 codes of the usual trading partners, named by the CLDR data of the
# page's language (Babel); other codes are shown as given. The catalogs name these three
# themselves, in the words Chinese regulations use.
_CODES: Final = (
    "AR AT AU BE BR CA CH CL CN CZ DE DK EC EG ES FI FR GB GR HK HU ID IE IL IN IS IT JP "
    "KH KR KZ LA MM MO MX MY NL NO NZ PE PH PK PL PT RU SA SE SG TH TR TW UA US UY VN ZA"
)
COUNTRY_CODES: Final = frozenset(_CODES.split())
COUNTRY_NAMES: Final[dict[str, tuple[str, str]]] = {
    "HK": N_("country", "Hong Kong, China"),
    "MO": N_("country", "Macao, China"),
    "TW": N_("country", "Taiwan, China"),
}
