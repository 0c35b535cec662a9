"""EPCIS 1.2 and 2.0 XML documents in the EPCIS 2.0 JSON-LD form (GS1's XML/JSON mapping).

Most deployed EPCIS systems send XML. Capture converts it here, before any check, so an
XML document goes through exactly the checks a JSON one does and the same event hashes
alike in either form.

Parsing is defensive: no DTD (a bare ``<!DOCTYPE name>``, which declares nothing, is
tolerated because GS1's own examples carry one), no entity expansion, no network, no
external files, libxml2's own depth and size limits. Everything refused is a
MalformedError naming the line.

The mapping, in the terms of GS1's XSDs and the EPCIS 2.0 JSON schema:

* EPCIS 1.2 put newer fields into ``extension`` / ``baseExtension`` wrappers (``eventID``
  and ``errorDeclaration`` in ``baseExtension``, ``quantityList``, ``sourceList``,
  ``destinationList`` and ``ilmd`` in the event's ``extension``, TransformationEvent in
  ``EventList/extension``); EPCIS 2.0 moved them up. Unwrapping every unqualified
  wrapper gives both versions one shape.
* Lists of ``epc`` become arrays, ``quantityElement`` objects with a numeric
  ``quantity`` (``xsi:nil`` leaves it out), ``bizTransaction`` / ``source`` /
  ``destination`` become ``{"type", "bizTransaction"}`` objects, ``persistentDisposition``
  gets ``set`` / ``unset`` arrays, sensor metadata and reports are their attributes
  (numbers and booleans typed as the JSON schema says), an error declaration's
  ``correctiveEventIDs`` an array.
* An element or attribute in another namespace (a user extension) becomes
  ``prefix:localName`` with the namespace declared in the document's ``@context``, under
  the XML prefix where JSON-LD allows it. Its value is the text, or an object of its
  attributes and children (repeated names become arrays, mixed text is ``#text``).
  ``xsi:type`` annotations are dropped: JSON has no place for them.
* An unqualified element EPCIS does not define (``##local`` content of an ``extension``,
  reserved for the standard's own future fields) is kept as ``epcis:localName``: in
  JSON-LD that is the EPCIS vocabulary's own term, exactly what an unqualified element
  means in EPCIS XML.
* The header's SBDH gives ``sender``, ``receiver`` and ``instanceIdentifier``; master data
  becomes ``epcisHeader.epcisMasterData.vocabularyList``.
* An ``EPCISQueryDocument``'s ``QueryResults`` become ``epcisBody.queryResults`` with the
  events in ``resultsBody.eventList``.

Values are kept as written (URNs stay URNs, ``gs1:Temperature`` stays a compact IRI):
the event hash and the checks treat every spelling alike.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from decimal import Decimal, InvalidOperation
from typing import Any, Final

from lxml import etree

from traceledger.errors import MalformedError

MAX_ELEMENTS: Final = 500_000  # ~50 per event at the 10,000-event limit
EPCIS_CONTEXT: Final = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"
_EPCIS_NAMESPACES: Final = frozenset(
    {
        "urn:epcglobal:epcis:xsd:1",
        "urn:epcglobal:epcis:xsd:2",
        "urn:epcglobal:epcis-query:xsd:1",
        "urn:epcglobal:epcis-query:xsd:2",
        "urn:epcglobal:epcis-masterdata:xsd:1",
        "urn:epcglobal:epcis-masterdata:xsd:2",
    }
)
_SBDH: Final = "http://www.unece.org/cefact/namespaces/StandardBusinessDocumentHeader"
_XSI: Final = "http://www.w3.org/2001/XMLSchema-instance"
_WRAPPERS: Final = frozenset({"extension", "baseExtension"})
_EVENT_TYPES: Final = frozenset(
    {
        "ObjectEvent",
        "AggregationEvent",
        "TransactionEvent",
        "TransformationEvent",
        "AssociationEvent",
    }
)
# Prefixes and terms of the EPCIS 2.0 context, which protects them: a document may only
# repeat such a prefix with the very same IRI.
_CONTEXT_PREFIXES: Final = {
    "epcis": "https://ref.gs1.org/epcis/",
    "cbv": "https://ref.gs1.org/cbv/",
    "cbvmda": "urn:epcglobal:cbv:mda:",
    "gs1": "https://gs1.org/voc/",
    "rdfs": "http://www.w3.org/2000/01/rdf-schema#",
    "owl": "http://www.w3.org/2002/07/owl#",
    "xsd": "http://www.w3.org/2001/XMLSchema#",
    "dcterms": "http://purl.org/dc/terms/",
}
_RESERVED_WORDS: Final = frozenset({"id", "type", "value", "time", "set", "unset", "source"})
_PREFIX: Final = re.compile(r"[A-Za-z_][A-Za-z0-9_.+-]*")
_TEXT_FIELDS: Final = frozenset(
    {
        "eventTime",
        "recordTime",
        "eventTimeZoneOffset",
        "eventID",
        "action",
        "bizStep",
        "disposition",
        "parentID",
        "transformationID",
    }
)
_EPC_LISTS: Final = frozenset({"epcList", "childEPCs", "inputEPCList", "outputEPCList"})
_QUANTITY_LISTS: Final = frozenset(
    {"quantityList", "childQuantityList", "inputQuantityList", "outputQuantityList"}
)
_PAIR_LISTS: Final = {
    "bizTransactionList": "bizTransaction",
    "sourceList": "source",
    "destinationList": "destination",
}
_EVENT_FIELDS: Final = (
    _TEXT_FIELDS
    | _EPC_LISTS
    | _QUANTITY_LISTS
    | frozenset(_PAIR_LISTS)
    | {
        "readPoint",
        "bizLocation",
        "persistentDisposition",
        "certificationInfo",
        "ilmd",
        "errorDeclaration",
        "sensorElementList",
    }
)
_NUMBER_ATTRIBUTES: Final = frozenset(
    {"value", "minValue", "maxValue", "meanValue", "sDev", "percRank", "percValue"}
)


def _parser() -> etree.XMLParser:
    # A parser per call: lxml parsers keep state and are not shared across threads.
    return etree.XMLParser(
        resolve_entities=False,
        no_network=True,
        load_dtd=False,
        dtd_validation=False,
        attribute_defaults=False,
        huge_tree=False,
        remove_comments=True,
        remove_pis=True,
        collect_ids=False,
    )


_DOCTYPE_SUBSET: Final = re.compile(rb"<!DOCTYPE[^>\[]*\[")


def parse_xml(data: bytes) -> etree._Element:
    """The root element of an untrusted XML document; DTDs and entities are refused."""
    if _DOCTYPE_SUBSET.search(data[:65536]):
        raise MalformedError("XML with a DTD internal subset is refused", position="DOCTYPE")
    try:
        root = etree.fromstring(data, _parser())
    except etree.XMLSyntaxError as exc:
        line = exc.position[0] if exc.position else None
        where = f"line {line}" if line else "body"
        raise MalformedError(f"not well-formed XML: {exc.msg}", position=where) from exc
    except ValueError as exc:  # e.g. an encoding declaration lxml cannot honour
        raise MalformedError(f"not XML: {exc}", position="body") from exc
    # Conversion costs a few microseconds per element: bound it, whatever the body size.
    if sum(1 for _ in root.iter()) > MAX_ELEMENTS:
        raise MalformedError(f"the document has over {MAX_ELEMENTS} XML elements", position="body")
    info = root.getroottree().docinfo
    if info.system_url or info.public_id:
        raise MalformedError("XML naming an external DTD is refused", position="DOCTYPE")
    dtd = info.internalDTD
    if dtd is not None and (any(True for _ in dtd.iterentities()) or dtd.elements()):
        raise MalformedError("XML declaring entities or elements is refused", position="DOCTYPE")
    return root


def document_from_xml(data: bytes) -> dict[str, Any]:
    """An EPCIS 1.2 / 2.0 XML EPCISDocument or EPCISQueryDocument as an EPCIS 2.0 JSON-LD
    document (EPCISDocument or EPCISQueryDocument)."""
    return _Converter(parse_xml(data)).document()


def _local(elem: etree._Element) -> str | None:
    """The name of an EPCIS element (unqualified or in an EPCIS namespace), else None."""
    tag = str(elem.tag)  # "{namespace}local" or "local": string work, no QName object
    if tag[:1] != "{":
        return tag
    namespace, _, local = tag[1:].partition("}")
    return local if namespace in _EPCIS_NAMESPACES else None


def _tag(elem: etree._Element) -> str:
    """An element's name for messages: prefix:local as written, else {namespace}local."""
    name = etree.QName(elem)
    return f"{elem.prefix}:{name.localname}" if elem.prefix else name.localname


def _children(elem: etree._Element) -> Iterator[etree._Element]:
    """Child elements with EPCIS `extension` / `baseExtension` wrappers unwrapped."""
    for child in elem:
        if not isinstance(child.tag, str):
            continue  # an entity reference left unexpanded, say
        if _local(child) in _WRAPPERS:
            yield from _children(child)
        else:
            yield child


def _text(elem: etree._Element) -> str:
    return _expanded((elem.text or "").strip())


# GS1 XML writes vocabulary values as gs1:/cbv: compact IRIs (type="gs1:Temperature") with
# the standard namespaces; JSON-LD reads a compact IRI against the document's context, so
# they are written out in full, as GS1's own event hash reference reads them in XML.
_STANDARD_VALUE_PREFIXES: Final = (
    ("gs1:", "https://gs1.org/voc/"),
    ("cbv:", "https://ref.gs1.org/cbv/"),
)


def _expanded(value: str) -> str:
    for prefix, namespace in _STANDARD_VALUE_PREFIXES:
        if value.startswith(prefix) and not value.startswith("//", len(prefix)):
            return namespace + value[len(prefix) :]
    return value


def _is_nil(elem: etree._Element) -> bool:
    return elem.get(f"{{{_XSI}}}nil") in ("true", "1")


class _Converter:
    """One document's conversion: it collects the namespaces user extensions use."""

    def __init__(self, root: etree._Element) -> None:
        self.root = root
        self.prefixes: dict[str, str] = {}  # namespace -> JSON-LD prefix
        self.taken: set[str] = set()
        self.generated = 0  # the last nsN handed out: allocation stays linear
        # The root's declared prefix of each namespace (for qualified attributes).
        self.declared = {ns: p for p, ns in root.nsmap.items() if p}

    def error(self, elem: etree._Element, reason: str) -> MalformedError:
        return MalformedError(reason, position=f"line {elem.sourceline}")

    # ----------------------------------------------------------------- the document

    def document(self) -> dict[str, Any]:
        root = self.root
        kind = _local(root)
        if kind not in ("EPCISDocument", "EPCISQueryDocument"):
            raise self.error(
                root, f"the root element {_tag(root)} is not an EPCISDocument or EPCISQueryDocument"
            )
        version = (root.get("schemaVersion") or "").strip()
        if not (version.startswith(("1.", "2")) or not version):
            raise self.error(root, f"EPCIS schemaVersion {version!r} is not 1.x or 2.0")
        out: dict[str, Any] = {"type": kind, "schemaVersion": "2.0"}
        created = root.get("creationDate")
        if created is not None:
            out["creationDate"] = created.strip()
        body: dict[str, Any] | None = None
        for child in _children(root):
            name = _local(child)
            if name == "EPCISHeader":
                out.update(self.header(child))
            elif name == "EPCISBody":
                body = self.query_body(child) if kind == "EPCISQueryDocument" else self.body(child)
            elif name is None:
                self.extension_into(out, child)
        if body is None:
            raise self.error(root, "the document has no EPCISBody")
        out["epcisBody"] = body
        context: list[Any] = [EPCIS_CONTEXT]
        context += [{prefix: ns} for ns, prefix in self.prefixes.items()]
        return {"@context": context, **out}

    def body(self, elem: etree._Element) -> dict[str, Any]:
        events: list[dict[str, Any]] = []
        for child in _children(elem):
            if _local(child) == "EventList":
                events += self.event_list(child)
        return {"eventList": events}

    def query_body(self, elem: etree._Element) -> dict[str, Any]:
        for child in _children(elem):
            if _local(child) == "QueryResults":
                return {"queryResults": self.query_results(child)}
        raise self.error(elem, "an EPCISQueryDocument's body holds no QueryResults")

    def query_results(self, elem: etree._Element) -> dict[str, Any]:
        results: dict[str, Any] = {}
        events: list[dict[str, Any]] | None = None
        for child in _children(elem):
            name = _local(child)
            if name in ("queryName", "subscriptionID"):
                results[name] = _text(child)
            elif name == "resultsBody":
                events = []
                for part in _children(child):
                    if _local(part) == "EventList":
                        events += self.event_list(part)
            elif name is None:
                self.extension_into(results, child)
        if events is None:
            raise self.error(elem, "QueryResults without a resultsBody")
        results["resultsBody"] = {"eventList": events}
        return results

    def event_list(self, elem: etree._Element) -> list[dict[str, Any]]:
        events = []
        for child in _children(elem):
            kind = _local(child)
            if kind not in _EVENT_TYPES:
                what = "QuantityEvent (dropped in EPCIS 2.0)" if kind == "QuantityEvent" else None
                raise self.error(
                    child, f"{what or _tag(child)} is not one of the five EPCIS 2.0 event types"
                )
            events.append(self.event(child, kind))
        return events

    # --------------------------------------------------------------------- events

    def event(self, elem: etree._Element, kind: str) -> dict[str, Any]:
        event: dict[str, Any] = {"type": kind}
        for child in _children(elem):
            name = _local(child)
            if name not in _EVENT_FIELDS:
                self.extension_into(event, child)
                continue
            if name in event:
                raise self.error(child, f"{kind} has more than one {name}")
            event[name] = self.field(child, name)
        return event

    def field(self, elem: etree._Element, name: str) -> Any:
        if name in _TEXT_FIELDS:
            return _text(elem)
        if name in _EPC_LISTS:
            return [_text(c) for c in _children(elem) if _local(c) == "epc"]
        if name in _QUANTITY_LISTS:
            return [self.quantity(c) for c in _children(elem) if _local(c) == "quantityElement"]
        if name in ("readPoint", "bizLocation"):
            return self.generic_object(elem)
        if name in _PAIR_LISTS:
            inner = _PAIR_LISTS[name]
            return [self.pair(c, inner) for c in _children(elem) if _local(c) == inner]
        if name == "persistentDisposition":
            return self.persistent_disposition(elem)
        if name == "certificationInfo":
            return _text(elem)
        if name == "ilmd":
            return self.generic_object(elem)
        if name == "errorDeclaration":
            return self.error_declaration(elem)
        assert name == "sensorElementList"
        return [self.sensor_element(c) for c in _children(elem) if _local(c) == "sensorElement"]

    def quantity(self, elem: etree._Element) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for child in _children(elem):
            name = _local(child)
            if name == "quantity":
                if not _is_nil(child):
                    out["quantity"] = self.number(child, _text(child))
            elif name in ("epcClass", "uom"):
                out[name] = _text(child)
            else:
                self.extension_into(out, child)
        return out

    def pair(self, elem: etree._Element, inner: str) -> dict[str, Any]:
        out: dict[str, Any] = {}
        kind = elem.get("type")
        if kind is not None:
            out["type"] = _expanded(kind.strip())
        out[inner] = _text(elem)
        return out

    def persistent_disposition(self, elem: etree._Element) -> dict[str, Any]:
        out: dict[str, list[str]] = {}
        for child in _children(elem):
            name = _local(child)
            if name in ("set", "unset"):
                out.setdefault(name, []).append(_text(child))
        return out

    def error_declaration(self, elem: etree._Element) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for child in _children(elem):
            name = _local(child)
            if name in ("declarationTime", "reason"):
                out[name] = _text(child)
            elif name == "correctiveEventIDs":
                out[name] = [_text(c) for c in _children(child) if _local(c) == "correctiveEventID"]
            else:
                self.extension_into(out, child)
        return out

    def sensor_element(self, elem: etree._Element) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for child in _children(elem):
            name = _local(child)
            if name == "sensorMetadata":
                out[name] = self.attributes(child)
            elif name == "sensorReport":
                out.setdefault(name, []).append(self.attributes(child))
            else:
                self.extension_into(out, child)
        return out

    def attributes(self, elem: etree._Element) -> dict[str, Any]:
        """Sensor metadata or a sensor report: its attributes, typed as JSON wants them."""
        out: dict[str, Any] = {}
        for raw_name, raw in elem.attrib.items():
            name = self.attribute_key(str(raw_name))
            if name is None:
                continue
            value = _expanded(str(raw).strip())
            if name in _NUMBER_ATTRIBUTES:
                out[name] = self.number(elem, value)
            elif name == "booleanValue":
                out[name] = self.boolean(elem, value)
            else:
                out[name] = value
        for child in _children(elem):
            self.extension_into(out, child)
        if _text(elem) and len(elem) == 0:
            out["#text"] = _text(elem)
        return out

    # --------------------------------------------------------------------- header

    def header(self, elem: etree._Element) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for child in _children(elem):
            name = etree.QName(child)
            if name.namespace == _SBDH and name.localname == "StandardBusinessDocumentHeader":
                out.update(self.sbdh(child))
            elif _local(child) == "EPCISMasterData":
                lists = [c for c in _children(child) if _local(c) == "VocabularyList"]
                vocabularies = [
                    self.vocabulary(v)
                    for vl in lists
                    for v in _children(vl)
                    if _local(v) == "Vocabulary"
                ]
                out["epcisHeader"] = {"epcisMasterData": {"vocabularyList": vocabularies}}
        return out

    def sbdh(self, elem: etree._Element) -> dict[str, str]:
        """sender, receiver and instanceIdentifier, the SBDH facts EPCIS 2.0 JSON keeps."""
        out: dict[str, str] = {}
        for child in elem:
            if not isinstance(child.tag, str):
                continue
            local = etree.QName(child).localname
            if local in ("Sender", "Receiver"):
                ident = next((c for c in child if etree.QName(c).localname == "Identifier"), None)
                if ident is not None and _text(ident):
                    out[local.lower()] = _text(ident)
            elif local == "DocumentIdentification":
                for part in child:
                    if isinstance(part.tag, str) and (
                        etree.QName(part).localname == "InstanceIdentifier" and _text(part)
                    ):
                        out["instanceIdentifier"] = _text(part)
        return out

    def vocabulary(self, elem: etree._Element) -> dict[str, Any]:
        out: dict[str, Any] = {"type": (elem.get("type") or "").strip()}
        elements = []
        for child in _children(elem):
            if _local(child) != "VocabularyElementList":
                continue
            elements += [
                self.vocabulary_element(item)
                for item in _children(child)
                if _local(item) == "VocabularyElement"
            ]
        if elements:
            out["vocabularyElementList"] = elements
        return out

    def vocabulary_element(self, elem: etree._Element) -> dict[str, Any]:
        out: dict[str, Any] = {"id": (elem.get("id") or "").strip()}
        attributes = []
        for child in _children(elem):
            name = _local(child)
            if name == "attribute":
                value = self.value(child, keep={"id"})
                attributes.append({"id": (child.get("id") or "").strip(), "attribute": value})
            elif name == "children":
                out["children"] = [_text(c) for c in _children(child) if _local(c) == "id"]
        if attributes:
            out["attributes"] = attributes
        return out

    # ----------------------------------------------------------------- extensions

    def prefix(self, namespace: str, suggested: str | None) -> str:
        """The JSON-LD prefix for a namespace: the XML one where JSON-LD allows it."""
        found = self.prefixes.get(namespace)
        if found is not None:
            return found

        def usable(name: str | None) -> bool:
            if not name or not _PREFIX.fullmatch(name) or name in self.taken:
                return False
            standard = _CONTEXT_PREFIXES.get(name)
            return name not in _RESERVED_WORDS and (standard is None or standard == namespace)

        prefix = suggested if usable(suggested) else None
        while prefix is None:
            self.generated += 1
            candidate = f"ns{self.generated}"
            prefix = candidate if usable(candidate) else None
        self.prefixes[namespace] = prefix
        self.taken.add(prefix)
        return prefix

    def key(self, elem: etree._Element) -> str:
        name = etree.QName(elem)
        if name.namespace is None or name.namespace in _EPCIS_NAMESPACES:
            return name.localname
        return f"{self.prefix(name.namespace, elem.prefix)}:{name.localname}"

    def attribute_key(self, raw: str) -> str | None:
        """An attribute's JSON key; None for annotations JSON does not carry (xsi:type)."""
        name = etree.QName(raw)
        if name.namespace is None:
            return name.localname
        if name.namespace == _XSI:
            return None
        suggested = self.declared.get(name.namespace)
        return f"{self.prefix(name.namespace, suggested)}:{name.localname}"

    def extension_into(self, out: dict[str, Any], elem: etree._Element) -> None:
        """Add a user extension element under its prefixed key (repeated: an array)."""
        name = self.key(elem)
        if _local(elem) is not None:
            name = "epcis:" + name  # an element EPCIS does not define (yet)
        _put(out, name, self.value(elem))

    def value(self, elem: etree._Element, keep: frozenset[str] | set[str] = frozenset()) -> Any:
        """An extension element's JSON value: its text, or an object."""
        obj: dict[str, Any] = {}
        for raw_name, raw in elem.attrib.items():
            name = self.attribute_key(str(raw_name))
            if name is not None and name not in keep:
                obj[name] = _expanded(str(raw).strip())
        for child in _children(elem):
            _put(obj, self.key(child), self.value(child))
        text = _text(elem)
        if not obj:
            return text
        if text:
            obj["#text"] = text
        return {k: list(v) if isinstance(v, _Repeated) else v for k, v in obj.items()}

    # ------------------------------------------------------------------- scalars

    def generic_object(self, elem: etree._Element) -> dict[str, Any]:
        value = self.value(elem)
        if not isinstance(value, dict):
            raise self.error(elem, f"{_tag(elem)} must hold elements, not only text")
        return value

    def number(self, elem: etree._Element, text: str) -> int | float:
        try:
            number = Decimal(text)
        except InvalidOperation:
            raise self.error(elem, f"{text!r} is not a number") from None
        if not number.is_finite():
            raise self.error(elem, f"{text!r} is not a finite number")
        if number == number.to_integral_value() and "." not in text and "e" not in text.lower():
            return int(number)
        return float(number)

    def boolean(self, elem: etree._Element, text: str) -> bool:
        if text in ("true", "1"):
            return True
        if text in ("false", "0"):
            return False
        raise self.error(elem, f"{text!r} is not an xsd:boolean")


class _Repeated(list[Any]):
    """An array built from repeated XML elements (so a third one appends, not nests)."""


def _put(obj: dict[str, Any], name: str, value: Any) -> None:
    """Set a key; a repeated element name makes its values an array."""
    if name not in obj:
        obj[name] = value
    elif isinstance(obj[name], _Repeated):
        obj[name].append(value)
    else:
        obj[name] = _Repeated([obj[name], value])
