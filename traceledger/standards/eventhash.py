"""EPCIS 2.0 event hash ID (CBV 2.0 section "Event hash ID", RFC 6920 ``ni:`` URI).

The hash is our event identity for dedup and the ``eventID`` we assign when the sender
gives none, so it must equal what other EPCIS systems compute. The normative behaviour
is the reference implementation (PyPI ``epcis-event-hash-generator``, the known-answer
oracle in ``tests/test_eventhash.py``), quirks included: its pre-hash string is what
other parties compare against, and a "cleaner" variant would be a different hash.

The reference is too slow for ingest (JSON-LD expansion of the whole document, deep
copies, ``dateutil``), so this re-implements the same algorithm:

1. Bare-string expansion. The reference JSON-LD-expands the document, collects every
   expanded value under ``https://ref.gs1.org/cbv`` or ``https://gs1.org/voc`` and then
   replaces *any* string value ``v`` for which exactly one collected IRI ends in
   ``-v`` or ``/v``. We compute that set from the event's vocabulary-typed fields (the
   term tables of the EPCIS 2.0 JSON-LD context, via `traceledger.cbv`); if the event
   holds any other IRI in those spaces (or a CURIE for one), a full walk with the
   context's expansion rules decides instead.
2. One pass turns the event into a tree of ``(name, value, children)`` nodes: prefixed
   keys become ``{iri}local`` and prefixed values ``iri+local``, list values become
   repeated children, ``fooList`` lists become a ``fooList`` node of ``foo`` children
   (``epc`` / ``quantityElement`` as in the XML binding), and business transactions,
   sources and destinations become (type, ID) groups.
3. The pre-hash string is ``eventType=...`` followed by the fields of the canonical
   property order (timestamps to UTC milliseconds, CBV URNs to web URIs, numbers without
   trailing zeros, GS1 identifiers to canonical Digital Link via `traceledger.gs1`), then
   everything the order did not consume (ILMD, business transactions, sources and
   destinations, user extensions), sorted.

Deliberate differences from the reference, all where it has no answer or depends on
something outside the event:

* Bare strings are expanded against the event alone, not the whole document (the
  reference lets one event's vocabulary values rewrite another event's strings).
* Inside ``bizTransactionList``/``sourceList``/``destinationList`` entries ``type``
  always comes first (CBV rule 13); the reference follows the JSON key order.
* Events the reference silently drops get a defined hash: an untyped business
  transaction, a number too large for a float, a timestamp that rounds up to the next
  second. Naive timestamps are read as UTC (the reference uses the machine's zone).
* Timestamps of standard fields that are not ISO 8601 raise ``ValueError`` (the
  reference hands them to ``dateutil``, which guesses, e.g. today's date).
* ``@xmlns...`` keys (JSON converted from XML) are skipped; the reference registers them
  as namespaces for the rest of the process.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta, timezone
from functools import lru_cache
from typing import Any, Final, NamedTuple

from traceledger.errors import TraceledgerError
from traceledger.standards import cbv, gs1

__all__ = [
    "DocumentContext",
    "document_context",
    "event_hash",
    "event_hash_id",
    "hash_id_digest",
    "hash_id_verified",
    "prehash_string",
]

# A tree node is (name, value, children). `name` is a str except for the two-element
# groups of bizTransactionList/sourceList/destinationList, which are tuples of nodes.
Node = tuple[Any, Any, list[Any]]

_CBV: Final = "https://ref.gs1.org/cbv/"
_GS1_VOC: Final = "https://gs1.org/voc/"
# Expanded values the reference collects for bare-string replacement.
_VOCAB_SPACES: Final = ("https://ref.gs1.org/cbv", "https://gs1.org/voc")

# Prefixes defined by the EPCIS 2.0 JSON-LD context; CURIEs in IRI-typed fields expand
# with these (and with the document's own prefixes).
_CONTEXT_PREFIXES: Final[Mapping[str, str]] = {
    "epcis": "https://ref.gs1.org/epcis/",
    "cbv": _CBV,
    "cbvmda": "urn:epcglobal:cbv:mda:",
    "gs1": _GS1_VOC,
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "dcterms": "http://purl.org/dc/terms/",
}


def _words(text: str) -> frozenset[str]:
    return frozenset(text.split())


# Measurement types and sensor exceptions: GS1 Web Vocabulary terms (not CBV) that the
# EPCIS 2.0 context defines for sensorReport.type / sensorReport.exception.
_MEASUREMENT_TYPES: Final = _words(
    """AbsoluteHumidity AbsorbedDose AbsorbedDoseRate Acceleration Radioactivity Altitude
    AmountOfSubstance AmountOfSubstancePerUnitVolume Angle AngularAcceleration
    AngularMomentum AngularVelocity Area Capacitance Conductance Conductivity Count
    Density Dimensionless DoseEquivalent DoseEquivalentRate DynamicViscosity
    ElectricCharge ElectricCurrent ElectricCurrentDensity ElectricFieldStrength Energy
    Exposure Force Frequency Illuminance Inductance Irradiance KinematicViscosity Length
    LinearMomentum Luminance LuminousFlux LuminousIntensity MagneticFlux
    MagneticFluxDensity MagneticVectorPotential Mass MassConcentration MassFlowRate
    MassPerAreaTime MemoryCapacity MolalityOfSolute MolarEnergy MolarMass MolarVolume
    Power Pressure RadiantFlux RadiantIntensity RelativeHumidity Resistance Resistivity
    SolidAngle SpecificVolume Speed SurfaceDensity SurfaceTension Temperature Time Torque
    Voltage Volume VolumeFlowRate VolumeFraction VolumetricFlux Wavenumber"""
)
_SENSOR_EXCEPTIONS: Final = frozenset({"ALARM_CONDITION", "ERROR_CONDITION"})

# Keys that survive JSON-LD expansion without a prefix: the terms of the EPCIS context.
_CONTEXT_TERMS: Final = _words(
    """action bizLocation bizRules bizStep bizTransaction bizTransactionList booleanValue
    certificationInfo chemicalSubstance childEPCs childQuantityList children component
    coordinateReferenceSystem correctiveEventIDs creationDate dataProcessingMethod
    declarationTime destination destinationList deviceID deviceMetadata disposition
    endTime epcClass epcList errorDeclaration eventID eventTime eventTimeZoneOffset
    exception hexBinaryValue id ilmd inputEPCList inputQuantityList instanceIdentifier
    maxValue meanValue member microorganism minValue outputEPCList outputQuantityList
    parentID percRank percValue persistentDisposition quantity quantityList rawData
    readPoint reason recordTime sDev sensorElementList sensorMetadata sensorReport set
    source sourceList startTime stringValue time transformationID type unset uom uriValue
    value baseURL cbv cbvmda epcis gs1 rdfs owl xsd dcterms"""
)
# Terms whose values are IRIs: compact IRIs in them expand.
_IRI_TERMS: Final = _words(
    """bizLocation bizRules bizTransaction certificationInfo chemicalSubstance childEPCs
    children coordinateReferenceSystem correctiveEventIDs dataProcessingMethod
    destination deviceID deviceMetadata epcClass epcList eventID id inputEPCList member
    microorganism outputEPCList parentID rawData readPoint source transformationID
    uriValue"""
)

# Vocabulary-typed fields, by (enclosing object, key) -> vocabulary.
_EVENT, _PERSISTENT, _BIZ_TX, _SRC_DEST, _SENSOR_ELEMENT, _SENSOR_REPORT, _ERROR, _OTHER = range(8)
_VOCAB_FIELDS: Final[Mapping[tuple[int, str], str]] = {
    (_EVENT, "bizStep"): "BizStep",
    (_EVENT, "disposition"): "Disp",
    (_PERSISTENT, "set"): "Disp",
    (_PERSISTENT, "unset"): "Disp",
    (_BIZ_TX, "type"): "BTT",
    (_SRC_DEST, "type"): "SDT",
    (_SENSOR_REPORT, "type"): "MeasurementType",
    (_SENSOR_REPORT, "exception"): "SensorAlertType",
    (_SENSOR_REPORT, "component"): "Comp",
    (_ERROR, "reason"): "ER",
}
_SCOPE_OF_KEY: Final[Mapping[tuple[int, str], int]] = {
    (_EVENT, "persistentDisposition"): _PERSISTENT,
    (_EVENT, "bizTransactionList"): _BIZ_TX,
    (_EVENT, "sourceList"): _SRC_DEST,
    (_EVENT, "destinationList"): _SRC_DEST,
    (_EVENT, "sensorElementList"): _SENSOR_ELEMENT,
    (_SENSOR_ELEMENT, "sensorReport"): _SENSOR_REPORT,
    (_EVENT, "errorDeclaration"): _ERROR,
}


# The canonical property order: name -> (position, order of its children, is a timestamp).
class _Order(dict[str, tuple[int, "_Order | None", bool]]):
    """Field name -> (position in the canonical order, order of its children, is a time)."""


def _order(*fields: str | tuple[str, _Order | None]) -> _Order:
    order = _Order()
    for position, field in enumerate(fields):
        name, sub = (field, None) if isinstance(field, str) else field
        lowered = name.lower()
        order[name] = (position, sub, "time" in lowered and "offset" not in lowered)
    return order


_QUANTITY: Final = _order(("quantityElement", _order("epcClass", "quantity", "uom")))
_EPCS: Final = _order("epc")
_PAIRS: Final = _order()  # business transactions, sources, destinations: never consumed
_PROP_ORDER: Final = _order(
    "eventTime",
    "eventTimeZoneOffset",
    "certificationInfo",
    "parentID",
    ("epcList", _EPCS),
    ("inputEPCList", _EPCS),
    ("childEPCs", _EPCS),
    ("quantityList", _QUANTITY),
    ("childQuantityList", _QUANTITY),
    ("inputQuantityList", _QUANTITY),
    ("outputEPCList", _EPCS),
    ("outputQuantityList", _QUANTITY),
    "action",
    "transformationID",
    "bizStep",
    "disposition",
    ("persistentDisposition", _order("set", "unset")),
    ("readPoint", _order("id")),
    ("bizLocation", _order("id")),
    ("bizTransactionList", _PAIRS),
    ("sourceList", _PAIRS),
    ("destinationList", _PAIRS),
    (
        "sensorElementList",
        _order(
            (
                "sensorElement",
                _order(
                    (
                        "sensorMetadata",
                        _order(
                            "time",
                            "startTime",
                            "endTime",
                            "deviceID",
                            "deviceMetadata",
                            "rawData",
                            "dataProcessingMethod",
                            "bizRules",
                        ),
                    ),
                    (
                        "sensorReport",
                        _order(
                            "type",
                            "exception",
                            "deviceID",
                            "deviceMetadata",
                            "rawData",
                            "dataProcessingMethod",
                            "time",
                            "microorganism",
                            "chemicalSubstance",
                            "value",
                            "component",
                            "stringValue",
                            "booleanValue",
                            "hexBinaryValue",
                            "uriValue",
                            "minValue",
                            "maxValue",
                            "meanValue",
                            "sDev",
                            "percRank",
                            "percValue",
                            "uom",
                            "coordinateReferenceSystem",
                        ),
                    ),
                ),
            )
        ),
    ),
)
_RENAMES: Final = frozenset(
    {"inputEPC", "outputEPC", "inputQuantity", "outputQuantity", "childQuantity", "quantity"}
)
_FIX_NAMES: Final = _RENAMES | {"childEPCs"}
_PAIR_LISTS: Final = frozenset({"bizTransactionList", "sourceList", "destinationList"})
_PAIR_KEYS: Final = ("bizTransaction", "source", "destination")
_NOT_HASHED: Final = frozenset({"recordTime", "eventID", "type", "errorDeclaration"})
_IGNORED_KEYS: Final = frozenset({"#text", "rdfs:comment", "comment"})
_CBV_URNS: Final = (
    ("urn:epcglobal:cbv:bizstep:", _CBV + "BizStep-"),
    ("urn:epcglobal:cbv:disp:", _CBV + "Disp-"),
    ("urn:epcglobal:cbv:btt:", _CBV + "BTT-"),
    ("urn:epcglobal:cbv:sdt:", _CBV + "SDT-"),
    ("urn:epcglobal:cbv:er:", _CBV + "ER-"),
)
_NUMBER_START: Final = frozenset("0123456789+-.iInN")
_TIMESTAMP = re.compile(
    r"(\d{4})-(\d\d)-(\d\d)[Tt ](\d\d):(\d\d)(?::(\d\d)(?:[.,](\d+))?)?"
    r"(?:([Zz])|([+-])(\d\d)(?::?(\d\d))?)?"
)
_SIMPLE_CONTEXT: Final = "epcis-context-simple.jsonld"
# The @vocab of each vocabulary-typed field in GS1's simple context.
_SIMPLE_VOCABS: Final[Mapping[str, str]] = {
    "BizStep": _CBV + "BizStep-",
    "Disp": _CBV + "Disp-",
    "BTT": _CBV + "BTT-",
    "SDT": _CBV + "SDT-",
    "ER": _CBV + "ER-",
    "Comp": _CBV + "Comp-",
    "MeasurementType": _GS1_VOC,
    "SensorAlertType": "https://ref.gs1.org/voc/",
}
_HASH_ID_PREFIX: Final = "ni:///sha-256;"
_HASH_ID_SUFFIX: Final = "?ver=CBV2.0"


# ---------------------------------------------------------------------------- public API


class DocumentContext(dict[str, str]):
    """A document's ``@context`` prefixes, and whether it uses GS1's simple context."""

    simple: bool = False


def document_context(document: Mapping[str, Any]) -> DocumentContext:
    """The prefix map of an EPCIS document: the string entries of its ``@context`` objects.

    Like the reference, only a ``@context`` *list* contributes, and only entries whose
    value is a string (``{"ex": "https://ns.example.com/"}``); term definitions given as
    objects are not prefixes. ``simple`` says the document uses GS1's simple context
    (``epcis-context-simple.jsonld``), which defines vocabulary values differently.
    """
    context = document.get("@context") if isinstance(document, Mapping) else None
    prefixes = DocumentContext()
    listed = context if isinstance(context, list) else [context]
    prefixes.simple = any(
        isinstance(entry, str) and entry.endswith(_SIMPLE_CONTEXT) for entry in listed
    )
    if isinstance(context, list):
        for entry in context:
            if isinstance(entry, Mapping):
                prefixes.update(
                    (key, value)
                    for key, value in entry.items()
                    if isinstance(key, str) and isinstance(value, str) and key[:1] != "@"
                )
    return prefixes


def prehash_string(event: Mapping[str, Any], context: Mapping[str, str] | None = None) -> str:
    """The canonical pre-hash string of one EPCIS 2.0 JSON event (as from ``json.loads``).

    ``context`` maps the document's ``@context`` prefixes to namespace IRIs (see
    `document_context`); user extension keys written with those prefixes are expanded to
    ``{iri}localName``. Raises ``ValueError`` for events that cannot be canonicalised.
    """
    if not isinstance(event, Mapping):
        raise ValueError("an EPCIS event must be a JSON object")  # noqa: TRY004 - the API's error
    prefixes: Mapping[str, str] = context if context is not None else {}
    if not prefixes and not getattr(prefixes, "simple", False):
        ordinary = _simple_prehash(event)
        if ordinary is not None:
            return ordinary
    return _general_prehash(event, prefixes)


def _general_prehash(event: Mapping[str, Any], prefixes: Mapping[str, str]) -> str:
    """Any event: the node tree, ordered (steps 1 to 3 of the module's docstring)."""
    try:
        namespaces = _namespaces(frozenset(prefixes.items())) if prefixes else _NO_NAMESPACES
        # Fast path: the expanded vocabulary values come from the vocabulary-typed
        # fields alone. The builder notices any other CBV / GS1-vocab IRI in the event;
        # then the full JSON-LD-like walk decides (same answer in all ordinary events).
        expanded: set[str] = set()
        _vocab_expansions(event, prefixes, expanded)
        frozen = frozenset(expanded)
        builder = _Builder(_replacements(frozen), namespaces, frozen)
        root = builder.event(event)
        if builder.unsure:
            complete: set[str] = set()
            _collect_expanded(event, _EVENT, prefixes, complete)
            if complete != expanded:
                builder = _Builder(_replacements(frozenset(complete)), namespaces, None)
                root = builder.event(event)
        event_type, _, children = root
        if not isinstance(event_type, str):
            raise ValueError("the event's type must be a string")  # noqa: TRY004 - as above
        ordered = _ordered(children, _PROP_ORDER)
        rest = [c for c in children if c[0] not in _NOT_HASHED]
        return "eventType=" + event_type + ordered + (_generic(rest) if rest else "")
    except (TypeError, AttributeError, KeyError, IndexError, RecursionError) as exc:
        raise ValueError(f"cannot canonicalise event: {exc!r}") from exc


# The fields of the canonical order an ordinary event has all of its hashed fields among,
# in that order, each with how its value is written: a timestamp, text, a list of EPCs
# (`epc` children) or a location (one `id` child).
_TIME, _TEXT, _EPC_LIST, _LOCATION = range(4)
_SIMPLE_FIELDS: Final = tuple(
    (name, _TIME if is_time else _TEXT if sub is None else _EPC_LIST if sub is _EPCS else _LOCATION)
    for name, (_, sub, is_time) in sorted(_PROP_ORDER.items(), key=lambda item: item[1][0])
    if name
    in {
        "eventTime",
        "eventTimeZoneOffset",
        "parentID",
        "epcList",
        "inputEPCList",
        "childEPCs",
        "outputEPCList",
        "action",
        "bizStep",
        "disposition",
        "readPoint",
        "bizLocation",
    }
)
_SIMPLE_KEYS: Final = frozenset(name for name, _ in _SIMPLE_FIELDS) | {
    "type",
    "eventID",
    "recordTime",
}


def _simple_prehash(event: Mapping[str, Any]) -> str | None:
    """The pre-hash string of an ordinary event, written straight from its fields; None
    when the event is not one (then the general path decides).

    Ordinary: no document prefixes and not GS1's simple context (the caller's
    condition: both change how vocabulary expands), only the fields above plus
    type, eventID and recordTime, every value a string (a list of strings for EPC lists,
    `{"id": string}` for locations), and none that could be or name a CBV / GS1-vocab
    IRI the vocabulary fields do not account for. For such an event the node tree is flat
    and every field consumed by the canonical order, so the general path's answer is
    exactly this (a property test holds the two to it, tests/standards/test_eventhash.py).
    Capture hashes every event of every document: this takes half the time (most of
    what is left is each EPC's Digital Link, which both paths compute).
    """
    if not _SIMPLE_KEYS.issuperset(event):
        return None
    strings: list[str] = []
    for value in event.values():
        if type(value) is str:
            strings.append(value)
        elif type(value) is list and all(type(v) is str for v in value):
            strings.extend(value)
        elif type(value) is dict and len(value) == 1 and type(value.get("id")) is str:
            strings.append(value["id"])
        else:
            return None
    suspicious, vocab_prefixes = _NO_NAMESPACES.suspicious, _NO_NAMESPACES.vocab_prefixes
    if any(v.startswith(suspicious) or v in vocab_prefixes for v in strings):
        return None
    event_type = event.get("type")
    expanded: set[str] = set()
    _vocab_expansions(event, {}, expanded)
    replace = _replacements(frozenset(expanded))
    event_type = replace.get(event_type, event_type) if type(event_type) is str else None
    if event_type is None or not event_type.endswith("Event"):
        return None
    parts = ["eventType=", event_type]
    for name, kind in _SIMPLE_FIELDS:
        value = event.get(name)
        if value is None:
            continue
        if kind == _EPC_LIST:
            if type(value) is not list:
                return None
            texts = (replace.get(v, v).strip() for v in value)
            epcs = sorted("epc=" + _canonical_value(text) for text in texts if text)
            if epcs:
                parts += (name, *epcs)
            continue
        if kind == _LOCATION:
            if type(value) is not dict:
                return None
            value = value["id"]
        elif type(value) is not str:
            return None
        text = replace.get(value, value).strip()
        if not text:
            continue
        if kind == _LOCATION:
            parts += (name, "id=", _canonical_value(text))
        else:
            parts += (name, "=", _timestamp(text) if kind == _TIME else _canonical_value(text))
    return "".join(parts)


def event_hash(event: Mapping[str, Any], context: Mapping[str, str] | None = None) -> bytes:
    """SHA-256 of the event's pre-hash string (UTF-8): the 32-byte event identity."""
    return hashlib.sha256(prehash_string(event, context).encode()).digest()


def hash_id_digest(event_id: str) -> bytes | None:
    """The digest an ``ni:///sha-256;<hex>`` eventID names; None for any other eventID.

    The hex is read case-insensitively and a query (``?ver=CBV2.0``) is ignored, so
    every spelling of one hash ID names the same event. Malformed hex names no digest.
    """
    if event_id[: len(_HASH_ID_PREFIX)].lower() != _HASH_ID_PREFIX:
        return None
    hex_part = event_id[len(_HASH_ID_PREFIX) :].split("?", 1)[0]
    if len(hex_part) != 64:
        return b""
    try:
        return bytes.fromhex(hex_part)
    except ValueError:
        return b""


def hash_id_verified(event_id: object, digest: bytes) -> bool | None:
    """Whether a sender's ``ni:`` eventID is the event's computed hash; None when the
    eventID is not a hash ID (a urn:uuid, say), which claims nothing to check."""
    named = hash_id_digest(event_id) if isinstance(event_id, str) else None
    return None if named is None else named == digest


def event_hash_id(digest: bytes) -> str:
    """The RFC 6920 form of an event hash: ``ni:///sha-256;<hex>?ver=CBV2.0``."""
    if len(digest) != 32:
        raise ValueError(f"an event hash is 32 bytes, not {len(digest)}")
    return _HASH_ID_PREFIX + digest.hex() + _HASH_ID_SUFFIX


# ------------------------------------------------------------- step 1: bare-string expansion


@lru_cache(maxsize=1024)
def _replacements(expanded: frozenset[str]) -> Mapping[str, str]:
    """Bare string -> expanded IRI, for strings with exactly one expansion in the event."""
    if not expanded:
        return {}
    matches: dict[str, str | None] = {}
    for iri in expanded:
        for suffix in _suffixes(iri):
            matches[suffix] = iri if matches.get(suffix, iri) == iri else None
    return {suffix: iri for suffix, iri in matches.items() if iri is not None}


@lru_cache(maxsize=4096)
def _suffixes(iri: str) -> tuple[str, ...]:
    """Every ``v`` such that ``iri`` ends in ``-v`` or ``/v``."""
    return tuple({iri[i + 1 :] for i, ch in enumerate(iri) if ch in "-/"})


def _vocab_expansions(event: Mapping[str, Any], prefixes: Mapping[str, str], out: set[str]) -> None:
    """What `_collect_expanded` finds in the vocabulary-typed fields: the fast path."""
    get = event.get
    for key, vocab in (("bizStep", "BizStep"), ("disposition", "Disp")):
        value = get(key)
        if value is not None:
            _add_vocab(vocab, value, prefixes, out)
    value = get("persistentDisposition")
    if value is not None:
        for obj in _objects(value):
            for key in ("set", "unset"):
                if key in obj:
                    _add_vocab("Disp", obj[key], prefixes, out)
    for key, vocab in (
        ("bizTransactionList", "BTT"),
        ("sourceList", "SDT"),
        ("destinationList", "SDT"),
    ):
        value = get(key)
        if value is not None:
            for obj in _objects(value):
                if "type" in obj:
                    _add_vocab(vocab, obj["type"], prefixes, out)
    value = get("sensorElementList")
    if value is not None:
        for element in _objects(value):
            if "sensorReport" in element:
                for report in _objects(element["sensorReport"]):
                    for key, vocab in _SENSOR_REPORT_VOCABS:
                        if key in report:
                            _add_vocab(vocab, report[key], prefixes, out)
    value = get("errorDeclaration")
    if value is not None:
        for obj in _objects(value):
            if "reason" in obj:
                _add_vocab("ER", obj["reason"], prefixes, out)


_SENSOR_REPORT_VOCABS: Final = (
    ("type", "MeasurementType"),
    ("exception", "SensorAlertType"),
    ("component", "Comp"),
)


def _objects(value: Any) -> Iterable[Mapping[str, Any]]:
    """The objects in a JSON value: itself, or those in a list (at any depth)."""
    if isinstance(value, Mapping):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from _objects(item)


def _add_vocab(vocab: str, value: Any, prefixes: Mapping[str, str], out: set[str]) -> None:
    for item in value if isinstance(value, list) else (value,):
        if isinstance(item, str):
            iri = _expand_vocab(vocab, item, prefixes)
            if iri.startswith(_VOCAB_SPACES):
                out.add(iri)


def _collect_expanded(
    obj: Mapping[str, Any], scope: int, prefixes: Mapping[str, str], out: set[str]
) -> None:
    """Add the values JSON-LD expansion of ``obj`` yields in the CBV / GS1 vocab spaces."""
    for key, value in obj.items():
        if not isinstance(key, str):
            continue
        if ":" not in key and key[:1] != "@" and key not in _CONTEXT_TERMS and key not in prefixes:
            continue  # an undefined term: JSON-LD expansion drops it
        vocab = _VOCAB_FIELDS.get((scope, key))
        if vocab is None and key == "type":
            vocab = ""  # @type: compact IRIs and terms expand, no vocabulary of its own
        inner = _SCOPE_OF_KEY.get((scope, key), _OTHER)
        for item in value if isinstance(value, list) else (value,):
            if isinstance(item, str):
                if vocab is not None:
                    iri = _expand_vocab(vocab, item, prefixes)
                elif key in _IRI_TERMS:
                    iri = _expand_curie(item, prefixes)
                else:
                    iri = item
                if iri.startswith(_VOCAB_SPACES):
                    out.add(iri)
            elif isinstance(item, Mapping):
                _collect_expanded(item, inner, prefixes, out)
            elif isinstance(item, list):
                _collect_nested_list(item, inner, prefixes, out)


def _collect_nested_list(
    items: list[Any], scope: int, prefixes: Mapping[str, str], out: set[str]
) -> None:
    for item in items:
        if isinstance(item, str):
            if item.startswith(_VOCAB_SPACES):
                out.add(item)
        elif isinstance(item, Mapping):
            _collect_expanded(item, scope, prefixes, out)
        elif isinstance(item, list):
            _collect_nested_list(item, scope, prefixes, out)


def _expand_vocab(vocab: str, value: str, prefixes: Mapping[str, str]) -> str:
    """JSON-LD expansion of a vocabulary-typed value: a term, a compact IRI or an IRI."""
    if ":" not in value and getattr(prefixes, "simple", False):
        # GS1's simple context gives each vocabulary field an @vocab: every bare word
        # expands under it (sensor exceptions under https://ref.gs1.org/voc/, outside
        # the spaces bare strings are replaced from).
        return _SIMPLE_VOCABS.get(vocab, "") + value
    if ":" not in value:
        iri = _vocab_term(vocab, value)
        if iri is not None:
            return iri
        return prefixes.get(value) or _CONTEXT_PREFIXES.get(value) or value
    return _expand_curie(value, prefixes)


def _expand_curie(value: str, prefixes: Mapping[str, str]) -> str:
    prefix, _, rest = value.partition(":")
    if rest.startswith("//"):
        return value
    namespace = prefixes.get(prefix) or _CONTEXT_PREFIXES.get(prefix)
    return namespace + rest if namespace is not None else value


@lru_cache(maxsize=1024)
def _vocab_term(vocab: str, value: str) -> str | None:
    """The IRI of ``value`` if it is a term of ``vocab`` in the EPCIS 2.0 context."""
    if vocab == "MeasurementType":
        return _GS1_VOC + value if value in _MEASUREMENT_TYPES else None
    if vocab == "SensorAlertType":
        return _GS1_VOC + value if value in _SENSOR_EXCEPTIONS else None
    if not vocab:
        return None
    try:
        short = cbv.normalize(vocab, value)
    except (ValueError, LookupError, TraceledgerError):
        return None
    # The context's terms are exact, case-sensitive short names: accept nothing looser.
    return cbv.uri(vocab, short) if short == value else None


# ------------------------------------------------------------------ step 2: the node tree


class _Builder:
    """JSON event -> (name, value, children) tree, as the reference builds and corrects it.

    One pass does what the reference does in three: bare-string replacement, the
    ``json_to_py`` conversion (prefix expansion, list flattening, sorting) and the
    JSON-to-XML model correction (``fooList`` grouping, ``childEPCs``, renames).
    """

    __slots__ = ("_key_ns", "_known", "_namespaces", "_replace", "_value_ns", "unsure")

    def __init__(
        self,
        replace: Mapping[str, str],
        namespaces: _Namespaces,
        known: frozenset[str] | None,
    ) -> None:
        self._replace = replace
        self._namespaces = namespaces
        self._key_ns = namespaces.keys
        self._value_ns = namespaces.values
        # `known` is the expanded set `replace` was built from when it may be incomplete:
        # then any other vocab-space IRI (or a CURIE / term for one) makes us unsure.
        self._known = known
        self.unsure = False

    def event(self, obj: Mapping[str, Any]) -> Node:
        text, children = self._object(obj, True)
        return (_renamed(self._name(obj), children), text, children)

    def _name(self, obj: Mapping[str, Any]) -> Any:
        name = obj.get("type", "")
        if isinstance(name, str):
            return self._replace.get(name, name)
        return name

    def _object(self, obj: Mapping[str, Any], correct: bool) -> tuple[str, list[Node]]:
        """An object's value (``#text``) and children, corrected unless ``correct`` is off.

        ``correct`` is off inside business transaction / source / destination entries,
        which the reference leaves uncorrected.
        """
        text = ""
        if "#text" in obj:
            raw = obj["#text"]
            if not isinstance(raw, str):
                raise ValueError("#text must be a string")
            text = self._replace.get(raw, raw)
        keyword = "bizTransaction" in obj or "source" in obj or "destination" in obj
        if correct and not keyword:
            return text, self._corrected(obj)
        children: list[Node] = []
        for key, value in obj.items():
            if key in _IGNORED_KEYS or key.startswith("@xmlns"):
                continue
            name = self._key(key)
            for item_text, item_children in self._items(value, correct and name not in _PAIR_LISTS):
                children.append((name, item_text, item_children))
        if keyword:
            children = _type_first(children)
        else:
            # The reference sorts every object's children. The order only shows where a
            # sibling is a business transaction / source / destination (then it is kept,
            # see `_generic`) and in the (type, ID) groups cut from the first two children
            # of such entries, built here with correct off: elsewhere we need not sort.
            children.sort()
        return text, (_fixed(children) if correct else children)

    def _corrected(self, obj: Mapping[str, Any]) -> list[Node]:
        """The children of an ordinary object, built directly in corrected form.

        Same result as building, sorting and `_fixed`, except the order, which nothing
        downstream of such an object depends on (see `_object`).
        """
        children: list[Node] = []
        append = children.append
        scalar = self._scalar
        lists: dict[str, list[tuple[str, list[Node]]]] | None = None
        child_epcs: list[Node] | None = None
        for key, value in obj.items():
            if key in _IGNORED_KEYS or key.startswith("@xmlns"):
                continue
            name = self._key(key) if self._key_ns or key.startswith("epcis:") else key
            if name in _FIX_NAMES or name.endswith("List"):
                items = self._items(value, name not in _PAIR_LISTS)
                if name == "childEPCs":
                    if child_epcs is None:
                        child_epcs = []
                    child_epcs.extend(("epc", item_text, []) for item_text, _ in items)
                elif name in _RENAMES:
                    for item_text, item_children in items:
                        append((_renamed(name, item_children), item_text, item_children))
                else:
                    if lists is None:
                        lists = {}
                    lists.setdefault(name, []).extend(items)
                continue
            kind = type(value)
            if kind is str:
                append((name, scalar(value), []))
            elif kind is list:
                for item in value:
                    if type(item) is str:
                        append((name, scalar(item), []))
                    elif isinstance(item, Mapping):
                        append((name, *self._object(item, True)))
                    elif isinstance(item, list):
                        append((name, "", self._list(item, True)))
                    else:
                        append((name, scalar(item), []))
            elif isinstance(value, Mapping):
                append((name, *self._object(value, True)))
            elif isinstance(value, list):
                append((name, "", self._list(value, True)))
            else:
                append((name, scalar(value), []))
        if lists is not None:
            for name, items in lists.items():
                append((name, "", _list_elements(name, items)))
        if child_epcs is not None:
            append(("childEPCs", "", child_epcs))
        return children

    def _items(self, value: Any, correct: bool) -> list[tuple[str, list[Node]]]:
        """(value, children) of each item a JSON value contributes: one per list item."""
        if isinstance(value, list):
            items: list[tuple[str, list[Node]]] = []
            for item in value:
                if isinstance(item, Mapping):
                    items.append(self._object(item, correct))
                elif isinstance(item, list):
                    items.append(("", self._list(item, correct)))
                else:
                    items.append((self._scalar(item), []))
            return items
        if isinstance(value, Mapping):
            return [self._object(value, correct)]
        return [(self._scalar(value), [])]

    def _key(self, key: str) -> str:
        colon = key.find(":")
        if colon >= 0:
            namespace = self._key_ns.get(key[:colon])
            if namespace is not None:
                return namespace + key[colon + 1 :]
            if key.startswith("epcis:"):
                # The EPCIS vocabulary's own term: in XML, the unqualified element.
                return key[6:]
        return key

    def _list(self, items: list[Any], correct: bool) -> list[Node]:
        """A list inside a list: its items keep their own names (an object's type, or "")."""
        children: list[Node] = []
        for item in items:
            if isinstance(item, Mapping):
                text, kids = self._object(item, correct)
                children.append((self._name(item), text, kids))
            elif isinstance(item, list):
                children.append(("", "", self._list(item, correct)))
            else:
                children.append(("", self._scalar(item), []))
        if not any(k in items for k in _PAIR_KEYS):
            children.sort()
        return _fixed(children) if correct else children

    def _scalar(self, raw: Any) -> str:
        if not isinstance(raw, str):
            return str(raw)
        value: str = raw
        if self._known is not None and (
            value.startswith(self._namespaces.suspicious)
            or value in self._namespaces.vocab_prefixes
        ):
            self._check(value)
        value = self._replace.get(value, value)
        if self._value_ns:
            colon = value.find(":")
            if colon >= 0:
                namespace = self._value_ns.get(value[:colon])
                if namespace is not None:
                    return namespace + value[colon + 1 :]
        return value

    def _check(self, value: str) -> None:
        """Note a vocab-space IRI the fast path's expanded set does not account for."""
        if value.startswith(_VOCAB_SPACES):
            if self._known is not None and value not in self._known:
                self.unsure = True
            return
        colon = value.find(":")
        if colon < 0 or not value.startswith("//", colon + 1):
            self.unsure = True


class _Namespaces(NamedTuple):
    """A document's prefixes, prepared for keys, values and the vocab-space check."""

    keys: Mapping[str, str]  # prefix -> "{iri}"
    values: Mapping[str, str]  # prefix -> "iri"
    vocab_prefixes: frozenset[str]  # prefixes (and terms) naming a CBV / GS1-vocab IRI
    suspicious: tuple[str, ...]  # starts of values that may expand into those spaces


@lru_cache(maxsize=256)
def _namespaces(prefixes: frozenset[tuple[str, str]]) -> _Namespaces:
    keys = {p: "{" + ns + "}" for p, ns in prefixes}
    values = {p: ns.replace("{", "").replace("}", "") for p, ns in prefixes}
    merged = {**_CONTEXT_PREFIXES, **dict(prefixes)}
    vocab = frozenset(p for p, ns in merged.items() if ns.startswith(_VOCAB_SPACES))
    return _Namespaces(keys, values, vocab, _VOCAB_SPACES + tuple(p + ":" for p in vocab))


_NO_NAMESPACES: Final = _namespaces(frozenset())


def _type_first(children: list[Node]) -> list[Node]:
    """Order of a business transaction / source / destination: type, the ID, the rest."""
    head = [c for c in children if c[0] == "type"]
    head += [c for c in children if c[0] in _PAIR_KEYS]
    rest = sorted(c for c in children if c[0] != "type" and c[0] not in _PAIR_KEYS)
    return head + rest


def _fixed(children: list[Node]) -> list[Node]:
    """The reference's JSON-to-XML model correction of one level of (sorted) children.

    ``fooList`` children become one ``fooList`` node of ``foo`` nodes (business
    transactions, sources and destinations as (type, ID) groups), all ``childEPCs``
    become one node of ``epc`` nodes, and XML element names replace JSON ones.
    """
    rest: list[Node] = []
    lists: dict[str, list[tuple[str, list[Node]]]] | None = None
    child_epcs: list[Node] | None = None
    for child in children:
        name = child[0]
        if type(name) is str:
            if name.endswith("List"):
                if lists is None:
                    lists = {}
                lists.setdefault(name, []).append((child[1], child[2]))
                continue
            if name == "childEPCs":
                if child_epcs is None:
                    child_epcs = []
                child_epcs.append(("epc", child[1], []))
                continue
            if name in _RENAMES:
                child = (_renamed(name, child[2]), child[1], child[2])
        rest.append(child)
    if lists is not None:
        for name, items in lists.items():
            rest.append((name, "", _list_elements(name, items)))
    if child_epcs is not None:
        rest.append(("childEPCs", "", child_epcs))
    return rest


def _list_elements(name: str, items: list[tuple[str, list[Node]]]) -> list[Any]:
    """The children of the node for list ``name``: ``foo`` nodes for ``fooList``.

    Business transactions, sources and destinations become (type, ID) groups: the
    first two children of each entry.
    """
    if name in _PAIR_LISTS:
        groups: list[Any] = []
        for _, children in items:
            if not children:
                raise ValueError(f"{name} entries must be objects")
            groups.append(tuple(children[:2]))
        return groups
    element = name[:-4]
    elements: list[Node] = [(element, text, children) for text, children in items]
    if element in _FIX_NAMES or element.endswith("List"):
        return _fixed(elements)
    return elements


def _renamed(name: Any, children: list[Node]) -> Any:
    if name in ("inputEPC", "outputEPC"):
        return "epc"
    if name in ("inputQuantity", "outputQuantity", "childQuantity") or (
        name == "quantity" and children
    ):
        return "quantityElement"
    return name


# ---------------------------------------------------------------- step 3: pre-hash string


def _ordered(children: list[Node], order: _Order) -> str:
    """Fields in canonical order; consumed nodes are removed from ``children``.

    A node is consumed when its own children were all consumed. What stays in the tree
    (unknown fields, user extensions outside an extension point) is appended by the
    caller with `_generic`. The user extensions of an extension point (``{iri/}name``
    children) are appended here, after its standard fields, under the reference's
    conditions: more than one child, none whose name contains ``eventTime`` or
    ``action`` (the event level), and a namespace IRI ending in ``/``.
    """
    if len(children) == 1:
        child = children[0]
        entry = order.get(child[0])
        if entry is None:
            return ""
        text = _in_order(child, entry[1], entry[2])
        if not child[2]:
            children.clear()
        return text
    buckets: dict[int, list[Node]] = {}
    others: list[Node] = []
    extensions: list[Node] | None = None
    for child in children:
        name = child[0]
        entry = order.get(name)
        if entry is not None:
            bucket = buckets.get(entry[0])
            if bucket is None:
                buckets[entry[0]] = [child]
            else:
                bucket.append(child)
        else:
            others.append(child)
            if "{" in name and "/}" in name:
                if extensions is None:
                    extensions = []
                extensions.append(child)
    if extensions is not None and any("eventTime" in c[0] or "action" in c[0] for c in children):
        extensions = None
    out = ""
    survivors = False
    for position in sorted(buckets):
        same = buckets[position]
        _, sub_order, is_time = order[same[0][0]]
        if len(same) == 1:
            child = same[0]
            out += _in_order(child, sub_order, is_time)
            survivors = survivors or bool(child[2])
            continue
        values: list[str] = []
        for child in same:
            text = _in_order(child, sub_order, is_time)
            if text:
                values.append(text)
            survivors = survivors or bool(child[2])
        values.sort()
        out += "".join(values)
    if extensions is not None:
        gone = {id(c) for c in extensions}
        others = [c for c in others if id(c) not in gone]
    if survivors:  # keep the tree order: survivors stay where they were
        kept = {id(c) for c in others}
        children[:] = [c for c in children if id(c) in kept or (c[2] and c[0] in order)]
    else:
        children[:] = others
    if extensions is not None:
        out += _generic(extensions)
    return out


def _in_order(node: Node, sub_order: _Order | None, is_time: bool) -> str:
    """One field of the canonical order: ``name=value`` and its own fields, or ""."""
    name, value, children = node
    text = ""
    if value:
        text = value.strip()
        if text:
            text = "=" + (_timestamp(text) if is_time else _canonical_value(text))
    if sub_order and children:
        text += _ordered(children, sub_order)
    return name + text if text else ""


def _generic(children: Iterable[Any]) -> str:
    """Nodes outside the canonical order: ``name=value`` plus nested nodes, sorted."""
    values: list[str] = []
    keep_order = False
    for child in children:
        if type(child[0]) is tuple:  # a business transaction / source / destination
            values.append(_generic(child))
            continue
        name = child[0]
        if name in _PAIR_KEYS:
            keep_order = True
        text = child[1].strip()
        if text:
            text = "=" + _canonical_value(text)
        values.append(name + text + (_generic(child[2]) if child[2] else ""))
    if len(values) > 1 and not keep_order:
        values.sort()
    return "".join(values)


# ------------------------------------------------------------------------ value normalising


@lru_cache(maxsize=1 << 16)
def _canonical_value(text: str) -> str:
    """CBV URN -> web URI, numbers without trailing zeros, GS1 keys -> Digital Link."""
    if "urn:epcglobal:cbv:" in text:
        for urn, web in _CBV_URNS:
            text = text.replace(urn, web)
    first = text[:1]
    if first in _NUMBER_START or (first and not first.isascii()):
        text = _number(text)
    if "." in text and (text.startswith(("urn:epc:", "http"))):
        return _digital_link(text)
    return text


def _number(text: str) -> str:
    try:
        number = float(text)
    except ValueError:
        return text
    try:
        integral = int(number)
    except ValueError:  # nan: the reference keeps the text
        return text
    except OverflowError:  # inf: the reference drops the event; we keep the text
        return text
    return str(integral) if integral == number else str(number)


def _digital_link(uri: str) -> str:
    """The canonical Digital Link of an EPC URN / Digital Link; other URIs unchanged."""
    try:
        return gs1.canonical_uri(uri)
    except (ValueError, TraceledgerError):  # not a well-formed GS1 key: keep it as given
        return uri


@lru_cache(maxsize=1 << 14)
def _timestamp(text: str) -> str:
    """An ISO 8601 timestamp in UTC with milliseconds: ``YYYY-MM-DDTHH:MM:SS.mmmZ``."""
    match = _TIMESTAMP.fullmatch(text)
    if match is None:
        return _timestamp_fallback(text)
    year, month, day, hour, minute, second, fraction, _zulu, sign, off_h, off_m = match.groups()
    micro = int(fraction[:6].ljust(6, "0")) if fraction else 0
    tz = UTC
    if sign:
        offset = timedelta(hours=int(off_h), minutes=int(off_m or 0))
        if offset >= timedelta(hours=24):
            return text
        tz = timezone(-offset if sign == "-" else offset)
    try:
        moment = datetime(
            int(year), int(month), int(day), int(hour), int(minute), int(second or 0), micro, tz
        )
    except ValueError:  # 24:00, Feb 30, leap seconds: dateutil fails, the reference keeps it
        return text
    return _utc_milliseconds(moment)


def _timestamp_fallback(text: str) -> str:
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(f"not an ISO 8601 timestamp: {text!r}") from None
    return _utc_milliseconds(moment)


def _utc_milliseconds(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    try:
        moment = moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("timestamp out of range") from None
    millis = round(moment.microsecond, -3)  # half to even, as the reference rounds
    if millis == 1_000_000:
        moment = moment.replace(microsecond=0) + timedelta(seconds=1)
        millis = 0
    return (
        f"{moment.year:04d}-{moment.month:02d}-{moment.day:02d}T{moment.hour:02d}:"
        f"{moment.minute:02d}:{moment.second:02d}.{millis // 1000:03d}Z"
    )
