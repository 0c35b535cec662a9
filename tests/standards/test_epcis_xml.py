"""EPCIS 1.2 / 2.0 XML to the 2.0 JSON-LD form: GS1's official XML examples hash as GS1's
reference reads the XML, and as their JSON twins; our own 1.2 documents land in the
same fields as their 2.0 JSON equivalents; hostile XML (DTDs, XXE, entity bombs) is
refused.

The official examples are read from ../shared/epcis (skipped where absent).
"""
# ruff: noqa: E501 - the XML documents keep their lines as EPCIS systems write them

from __future__ import annotations

import contextlib
import copy
import importlib
import io
import json
import logging
import warnings
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import SHARED_EPCIS
from traceledger.errors import MalformedError
from traceledger.standards.epcis_xml import document_from_xml
from traceledger.standards.eventhash import document_context, event_hash_id, prehash_string

XML_EXAMPLES = SHARED_EPCIS / "examples-xml"
JSON_EXAMPLES = SHARED_EPCIS / "examples"
XML_FILES = sorted(XML_EXAMPLES.glob("*.xml")) if XML_EXAMPLES.is_dir() else []
needs_examples = pytest.mark.skipif(not XML_FILES, reason=f"{XML_EXAMPLES} does not exist")


def _reference() -> Any:
    try:
        modules = [
            importlib.import_module(f"epcis_event_hash_generator.{name}")
            for name in ("xml_to_py", "json_to_py", "hash_generator")
        ]
    except ImportError:
        return None
    return modules


REFERENCE = _reference()
needs_reference = pytest.mark.skipif(REFERENCE is None, reason="no epcis-event-hash-generator")


def reference_xml(data: bytes) -> list[str]:
    """The reference's pre-hash strings of an XML document's events (it parses XML itself)."""
    xml_to_py, _, hash_generator = REFERENCE
    logging.disable(logging.CRITICAL)
    try:
        with contextlib.redirect_stdout(io.StringIO()):
            events = xml_to_py.event_list_from_epcis_document_str(data.decode())
            prehashes: list[str] = hash_generator.derive_prehashes_from_events(events)
    finally:
        logging.disable(logging.NOTSET)
    return prehashes


def reference_json(document: dict[str, Any]) -> list[str]:
    _, json_to_py, hash_generator = REFERENCE
    json_to_py._namespaces.clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        events = json_to_py.event_list_from_epcis_document_json(copy.deepcopy(document))
        prehashes: list[str] = hash_generator.derive_prehashes_from_events(events)
    return prehashes


def events_of(document: dict[str, Any]) -> list[dict[str, Any]]:
    body = document["epcisBody"]
    if "queryResults" in body:
        events: list[dict[str, Any]] = body["queryResults"]["resultsBody"]["eventList"]
        return events
    found: list[dict[str, Any]] = body["eventList"]
    return found


def ours(document: dict[str, Any]) -> list[str]:
    context = document_context(document)
    return [prehash_string(event, context) for event in events_of(document)]


# Where the reference's XML reading and its JSON reading disagree about one and the same
# event, we follow its JSON reading (what every JSON twin hashes to), so these differ from
# the reference on XML: `booleanValue` (its JSON side writes Python's "True"), xsi:type
# annotations (JSON has no place for them), a nil quantity (JSON omits it) and compact
# IRIs under a document prefix in vocabulary values (its JSON side expands them).
REFERENCE_XML_QUIRKS = {
    "WithErrorDeclaration__ErrorDeclarationAndCorrectiveEvent.xml": "xsi:nil quantity",
    "WithExtension__TransformationEvent.xml": "example:someSensorProperty",
    "WithSensorData__SensorDataExamples.xml": "example: measurement types",
    **{
        f"WithEventHashID__event_with_identical_hash_id_{n}.xml": "booleanValue"
        for n in range(1, 7)
    },
    **{
        f"WithFullCombinationOfFields__{kind}_all_possible_fields.xml": "booleanValue, xsi:type"
        for kind in ("aggregation_event", "association_event", "object_event")
    },
    **{
        f"WithFullCombinationOfFields__{kind}_all_possible_fields.xml": "booleanValue, xsi:type"
        for kind in ("transaction_event", "transformation_event")
    },
}


@needs_examples
@needs_reference
@pytest.mark.parametrize("path", XML_FILES, ids=lambda p: p.name)
def test_official_xml_examples_hash_as_the_reference_reads_the_xml(path: Path) -> None:
    document = document_from_xml(path.read_bytes())
    mine = ours(document)
    try:
        expected = reference_xml(path.read_bytes())
    except IndexError:
        pytest.skip("the reference cannot read this document (an untyped transaction)")
    assert len(mine) == len(expected)
    differing = [i for i, (a, b) in enumerate(zip(mine, expected, strict=True)) if a != b]
    if path.name in REFERENCE_XML_QUIRKS:
        return  # see REFERENCE_XML_QUIRKS; the JSON twin test below covers these events
    assert differing == [], (path.name, [(mine[i], expected[i]) for i in differing])


def _json_twins() -> dict[str, list[str]]:
    """Reference hash ID -> our hash IDs of the official JSON events with it."""
    twins: dict[str, list[str]] = {}
    for path in sorted(JSON_EXAMPLES.glob("*.jsonld")):
        document = json.loads(path.read_text())
        if "eventList" not in document.get("epcisBody", {}):
            continue
        try:
            expected = reference_json(document)
        except Exception:
            continue
        for ref, mine in zip(expected, ours(document), strict=True):
            twins.setdefault(ref, []).append(mine)
    return twins


@needs_examples
@needs_reference
def test_xml_events_hash_identically_to_their_json_twins() -> None:
    """Every official XML event the reference finds among the JSON examples hashes, as
    converted by us, exactly as we hash that JSON event."""
    twins = _json_twins()
    matched = 0
    for path in XML_FILES:
        try:
            expected = reference_xml(path.read_bytes())
        except IndexError:
            continue
        for ref, mine in zip(expected, ours(document_from_xml(path.read_bytes())), strict=True):
            for twin in twins.get(ref, ()):
                assert mine == twin, path.name
                matched += 1
    assert matched >= 30  # GS1's association, sensor and 9.6.1 examples come in both forms


@needs_examples
@pytest.mark.parametrize(
    ("xml_name", "json_name"),
    [
        ("Mimasu__Example1.xml", "Example_9.6.1-ObjectEvent.jsonld"),
        ("Mimasu__Example2.xml", "Example_9.6.2-ObjectEvent.jsonld"),
        ("Mimasu__Example3.xml", "Example_9.6.3-AggregationEvent.jsonld"),
        ("Mimasu__Example4.xml", "Example_9.6.4-TransformationEvent.jsonld"),
        ("1.2__TransformationEvent.xml", "Example_9.6.4-TransformationEvent.jsonld"),
    ],
)
def test_the_standards_own_examples_hash_alike_once_the_namespace_is_spelled_alike(
    xml_name: str, json_name: str
) -> None:
    """GS1's XML twins declare http://ns.example.com/epcis, the JSON ones .../epcis/ (a
    different IRI, so a different event); written with the same namespace they match."""
    xml = (XML_EXAMPLES / xml_name).read_bytes()
    xml = xml.replace(b'"http://ns.example.com/epcis"', b'"http://ns.example.com/epcis/"')
    json_document = json.loads((JSON_EXAMPLES / json_name).read_text())
    assert set(ours(document_from_xml(xml))) <= set(ours(json_document))


# ------------------------------------------------------------------- EPCIS 1.2 of our own

CONTEXT = "https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"

EPCIS_12 = b"""<?xml version="1.0" encoding="UTF-8"?>
<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:1"
    xmlns:sbdh="http://www.unece.org/cefact/namespaces/StandardBusinessDocumentHeader"
    xmlns:cbvmda="urn:epcglobal:cbv:mda" xmlns:acme="https://acme.example.com/epcis/"
    schemaVersion="1.2" creationDate="2026-03-01T08:00:00Z">
  <EPCISHeader>
    <sbdh:StandardBusinessDocumentHeader>
      <sbdh:HeaderVersion>1.0</sbdh:HeaderVersion>
      <sbdh:Sender><sbdh:Identifier Authority="SGLN">urn:epc:id:sgln:0614141.00001.0</sbdh:Identifier></sbdh:Sender>
      <sbdh:Receiver><sbdh:Identifier Authority="SGLN">urn:epc:id:sgln:4012345.00001.0</sbdh:Identifier></sbdh:Receiver>
      <sbdh:DocumentIdentification>
        <sbdh:Standard>EPCglobal</sbdh:Standard><sbdh:TypeVersion>1.2</sbdh:TypeVersion>
        <sbdh:InstanceIdentifier>ACME-2026-0001</sbdh:InstanceIdentifier>
        <sbdh:Type>Events</sbdh:Type>
        <sbdh:CreationDateAndTime>2026-03-01T08:00:00Z</sbdh:CreationDateAndTime>
      </sbdh:DocumentIdentification>
    </sbdh:StandardBusinessDocumentHeader>
    <extension>
      <EPCISMasterData>
        <VocabularyList>
          <Vocabulary type="urn:epcglobal:epcis:vtype:BusinessLocation">
            <VocabularyElementList>
              <VocabularyElement id="urn:epc:id:sgln:0614141.00001.0">
                <attribute id="urn:epcglobal:cbv:mda#name">ACME Dairy, Plant 1</attribute>
                <children><id>urn:epc:id:sgln:0614141.00001.1</id></children>
              </VocabularyElement>
            </VocabularyElementList>
          </Vocabulary>
        </VocabularyList>
      </EPCISMasterData>
    </extension>
  </EPCISHeader>
  <EPCISBody>
    <EventList>
      <ObjectEvent>
        <eventTime>2026-02-28T09:00:00.000+08:00</eventTime>
        <eventTimeZoneOffset>+08:00</eventTimeZoneOffset>
        <baseExtension><eventID>urn:uuid:8c3a2c3e-4b9f-4f55-9f39-0d8d2a1f0a11</eventID></baseExtension>
        <epcList><epc>urn:epc:id:sgtin:0614141.107346.2017</epc></epcList>
        <action>ADD</action>
        <bizStep>urn:epcglobal:cbv:bizstep:commissioning</bizStep>
        <disposition>urn:epcglobal:cbv:disp:active</disposition>
        <readPoint><id>urn:epc:id:sgln:0614141.00001.0</id></readPoint>
        <extension>
          <quantityList>
            <quantityElement>
              <epcClass>urn:epc:class:lgtin:0614141.107346.LOT7</epcClass>
              <quantity>12.5</quantity><uom>KGM</uom>
            </quantityElement>
          </quantityList>
          <destinationList>
            <destination type="urn:epcglobal:cbv:sdt:owning_party">urn:epc:id:pgln:0614141.00001</destination>
          </destinationList>
          <ilmd>
            <cbvmda:lotNumber>LOT7</cbvmda:lotNumber>
            <cbvmda:itemExpirationDate>2027-02-28</cbvmda:itemExpirationDate>
          </ilmd>
        </extension>
        <acme:shift>night</acme:shift>
      </ObjectEvent>
      <AggregationEvent>
        <eventTime>2026-02-28T10:00:00.000+08:00</eventTime>
        <eventTimeZoneOffset>+08:00</eventTimeZoneOffset>
        <baseExtension>
          <eventID>urn:uuid:5a1e0a6b-21de-4a9c-a9e5-8bb1b1f4c0a2</eventID>
          <errorDeclaration>
            <declarationTime>2026-02-28T11:00:00.000+08:00</declarationTime>
            <reason>urn:epcglobal:cbv:er:incorrect_data</reason>
            <correctiveEventIDs><correctiveEventID>urn:uuid:0b6d7c53-1d70-4a31-9d4d-5d3d2c1b0a99</correctiveEventID></correctiveEventIDs>
            <acme:note>wrong pallet</acme:note>
          </errorDeclaration>
        </baseExtension>
        <parentID>urn:epc:id:sscc:0614141.1234567890</parentID>
        <childEPCs><epc>urn:epc:id:sgtin:0614141.107346.2017</epc></childEPCs>
        <action>ADD</action>
        <bizStep>urn:epcglobal:cbv:bizstep:packing</bizStep>
      </AggregationEvent>
      <extension>
        <TransformationEvent>
          <eventTime>2026-02-28T12:00:00.000+08:00</eventTime>
          <eventTimeZoneOffset>+08:00</eventTimeZoneOffset>
          <inputQuantityList>
            <quantityElement><epcClass>urn:epc:class:lgtin:0614141.107346.LOT7</epcClass><quantity>10</quantity><uom>KGM</uom></quantityElement>
          </inputQuantityList>
          <outputEPCList><epc>urn:epc:id:sgtin:0614141.107347.1</epc></outputEPCList>
          <bizStep>urn:epcglobal:cbv:bizstep:commissioning</bizStep>
          <ilmd><cbvmda:lotNumber>B1</cbvmda:lotNumber></ilmd>
        </TransformationEvent>
        <extension>
          <AssociationEvent>
            <eventTime>2026-02-28T13:00:00.000+08:00</eventTime>
            <eventTimeZoneOffset>+08:00</eventTimeZoneOffset>
            <parentID>urn:epc:id:grai:0614141.12345.400</parentID>
            <childEPCs><epc>urn:epc:id:giai:0614141.A1</epc></childEPCs>
            <action>ADD</action>
          </AssociationEvent>
        </extension>
      </extension>
    </EventList>
  </EPCISBody>
</epcis:EPCISDocument>
"""

# The same four events as EPCIS 2.0 JSON, written by hand.
JSON_20 = {
    "@context": [
        CONTEXT,
        {"cbvmda1": "urn:epcglobal:cbv:mda"},
        {"acme": "https://acme.example.com/epcis/"},
    ],
    "type": "EPCISDocument",
    "schemaVersion": "2.0",
    "creationDate": "2026-03-01T08:00:00Z",
    "epcisBody": {
        "eventList": [
            {
                "type": "ObjectEvent",
                "eventTime": "2026-02-28T01:00:00Z",
                "eventTimeZoneOffset": "+08:00",
                "eventID": "urn:uuid:8c3a2c3e-4b9f-4f55-9f39-0d8d2a1f0a11",
                "epcList": ["https://id.gs1.org/01/10614141073464/21/2017"],
                "action": "ADD",
                "bizStep": "commissioning",
                "disposition": "active",
                "readPoint": {"id": "urn:epc:id:sgln:0614141.00001.0"},
                "quantityList": [
                    {
                        "epcClass": "urn:epc:class:lgtin:0614141.107346.LOT7",
                        "quantity": 12.5,
                        "uom": "KGM",
                    }
                ],
                "destinationList": [
                    {"type": "owning_party", "destination": "urn:epc:id:pgln:0614141.00001"}
                ],
                "ilmd": {"cbvmda1:lotNumber": "LOT7", "cbvmda1:itemExpirationDate": "2027-02-28"},
                "acme:shift": "night",
            },
            {
                "type": "AggregationEvent",
                "eventTime": "2026-02-28T10:00:00+08:00",
                "eventTimeZoneOffset": "+08:00",
                "eventID": "urn:uuid:5a1e0a6b-21de-4a9c-a9e5-8bb1b1f4c0a2",
                "errorDeclaration": {
                    "declarationTime": "2026-02-28T11:00:00.000+08:00",
                    "reason": "incorrect_data",
                    "correctiveEventIDs": ["urn:uuid:0b6d7c53-1d70-4a31-9d4d-5d3d2c1b0a99"],
                    "acme:note": "wrong pallet",
                },
                "parentID": "urn:epc:id:sscc:0614141.1234567890",
                "childEPCs": ["urn:epc:id:sgtin:0614141.107346.2017"],
                "action": "ADD",
                "bizStep": "packing",
            },
            {
                "type": "TransformationEvent",
                "eventTime": "2026-02-28T12:00:00.000+08:00",
                "eventTimeZoneOffset": "+08:00",
                "inputQuantityList": [
                    {
                        "epcClass": "urn:epc:class:lgtin:0614141.107346.LOT7",
                        "quantity": 10,
                        "uom": "KGM",
                    }
                ],
                "outputEPCList": ["urn:epc:id:sgtin:0614141.107347.1"],
                "bizStep": "commissioning",
                "ilmd": {"cbvmda1:lotNumber": "B1"},
            },
            {
                "type": "AssociationEvent",
                "eventTime": "2026-02-28T13:00:00.000+08:00",
                "eventTimeZoneOffset": "+08:00",
                "parentID": "urn:epc:id:grai:0614141.12345.400",
                "childEPCs": ["urn:epc:id:giai:0614141.A1"],
                "action": "ADD",
            },
        ]
    },
}


def test_epcis_12_fields_land_where_epcis_20_json_has_them() -> None:
    converted = document_from_xml(EPCIS_12)
    first, declared, transformed, associated = events_of(converted)
    assert first["eventID"] == "urn:uuid:8c3a2c3e-4b9f-4f55-9f39-0d8d2a1f0a11"
    assert first["quantityList"] == [
        {"epcClass": "urn:epc:class:lgtin:0614141.107346.LOT7", "quantity": 12.5, "uom": "KGM"}
    ]
    assert first["destinationList"] == [
        {
            "type": "urn:epcglobal:cbv:sdt:owning_party",
            "destination": "urn:epc:id:pgln:0614141.00001",
        }
    ]
    lot_key = next(k for k in first["ilmd"] if k.endswith(":lotNumber"))
    assert first["ilmd"][lot_key] == "LOT7"
    assert first["acme:shift"] == "night"
    assert declared["errorDeclaration"]["correctiveEventIDs"] == [
        "urn:uuid:0b6d7c53-1d70-4a31-9d4d-5d3d2c1b0a99"
    ]
    assert declared["errorDeclaration"]["acme:note"] == "wrong pallet"
    assert transformed["type"] == "TransformationEvent"
    assert transformed["outputEPCList"] == ["urn:epc:id:sgtin:0614141.107347.1"]
    assert associated["type"] == "AssociationEvent"
    assert "extension" not in json.dumps(converted)


def test_epcis_12_events_hash_as_their_epcis_20_json_equivalents() -> None:
    converted = document_from_xml(EPCIS_12)
    assert [event_hash_id(h) for h in _digests(converted)] == [
        event_hash_id(h) for h in _digests(JSON_20)
    ]


def _digests(document: dict[str, Any]) -> list[bytes]:
    import hashlib

    return [hashlib.sha256(p.encode()).digest() for p in ours(document)]


def test_epcis_12_header_gives_sender_receiver_and_master_data() -> None:
    converted = document_from_xml(EPCIS_12)
    assert converted["sender"] == "urn:epc:id:sgln:0614141.00001.0"
    assert converted["receiver"] == "urn:epc:id:sgln:4012345.00001.0"
    assert converted["instanceIdentifier"] == "ACME-2026-0001"
    vocabulary = converted["epcisHeader"]["epcisMasterData"]["vocabularyList"][0]
    assert vocabulary["type"] == "urn:epcglobal:epcis:vtype:BusinessLocation"
    element = vocabulary["vocabularyElementList"][0]
    assert element["attributes"] == [
        {"id": "urn:epcglobal:cbv:mda#name", "attribute": "ACME Dairy, Plant 1"}
    ]
    assert element["children"] == ["urn:epc:id:sgln:0614141.00001.1"]


def test_a_protected_prefix_bound_to_another_namespace_gets_a_prefix_of_its_own() -> None:
    """XML's cbvmda is urn:epcglobal:cbv:mda; JSON-LD's protected cbvmda ends in ':'."""
    context = document_from_xml(EPCIS_12)["@context"]
    assert context[0] == CONTEXT
    declared = {k: v for entry in context[1:] for k, v in entry.items()}
    assert "cbvmda" not in declared
    assert "urn:epcglobal:cbv:mda" in declared.values()
    assert declared["acme"] == "https://acme.example.com/epcis/"


def test_unqualified_extension_content_is_the_epcis_vocabularys_own_term() -> None:
    xml = EPCIS_12.replace(
        b"<acme:shift>night</acme:shift>",
        b"<extension><extension><shift>night</shift></extension></extension>",
    )
    first = events_of(document_from_xml(xml))[0]
    assert first["epcis:shift"] == "night"


QUERY_DOCUMENT = b"""<epcisq:EPCISQueryDocument xmlns:epcisq="urn:epcglobal:epcis-query:xsd:2"
    schemaVersion="2.0" creationDate="2026-03-01T08:00:00Z">
  <EPCISBody>
    <epcisq:QueryResults>
      <queryName>SimpleEventQuery</queryName>
      <subscriptionID>sub-7</subscriptionID>
      <resultsBody>
        <EventList>
          <ObjectEvent>
            <eventTime>2026-02-28T09:00:00.000+08:00</eventTime>
            <eventTimeZoneOffset>+08:00</eventTimeZoneOffset>
            <epcList><epc>urn:epc:id:sgtin:0614141.107346.2018</epc></epcList>
            <action>OBSERVE</action>
            <bizStep>urn:epcglobal:cbv:bizstep:shipping</bizStep>
          </ObjectEvent>
        </EventList>
      </resultsBody>
    </epcisq:QueryResults>
  </EPCISBody>
</epcisq:EPCISQueryDocument>"""


def test_an_xml_query_documents_results_become_query_results() -> None:
    converted = document_from_xml(QUERY_DOCUMENT)
    assert converted["type"] == "EPCISQueryDocument"
    results = converted["epcisBody"]["queryResults"]
    assert results["queryName"] == "SimpleEventQuery"
    assert results["subscriptionID"] == "sub-7"
    assert results["resultsBody"]["eventList"][0]["action"] == "OBSERVE"


def test_sensor_reports_carry_typed_values() -> None:
    xml = b"""<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2" schemaVersion="2.0"
        creationDate="2026-03-01T08:00:00Z"><EPCISBody><EventList><ObjectEvent>
        <eventTime>2026-02-28T09:00:00Z</eventTime><eventTimeZoneOffset>+00:00</eventTimeZoneOffset>
        <epcList/><action>OBSERVE</action>
        <sensorElementList><sensorElement>
          <sensorMetadata time="2026-02-28T08:59:00Z"/>
          <sensorReport type="gs1:Temperature" value="26.5" uom="CEL" booleanValue="true"
            exception="ALARM_CONDITION"/>
        </sensorElement></sensorElementList>
        </ObjectEvent></EventList></EPCISBody></epcis:EPCISDocument>"""
    event = events_of(document_from_xml(xml))[0]
    report = event["sensorElementList"][0]["sensorReport"][0]
    assert report == {
        "type": "https://gs1.org/voc/Temperature",
        "value": 26.5,
        "uom": "CEL",
        "booleanValue": True,
        "exception": "ALARM_CONDITION",
    }
    assert event["epcList"] == []


# ------------------------------------------------------------------------- hostile XML

HOSTILE = {
    "billion laughs": b"""<?xml version="1.0"?>
<!DOCTYPE lolz [<!ENTITY lol "lol"><!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
<!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">]>
<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2"><EPCISBody>&lol3;</EPCISBody></epcis:EPCISDocument>""",
    "external entity": b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY xxe SYSTEM "file:///etc/passwd">]>
<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2"><EPCISBody>&xxe;</EPCISBody></epcis:EPCISDocument>""",
    "parameter entity": b"""<?xml version="1.0"?>
<!DOCTYPE foo [<!ENTITY % remote SYSTEM "http://127.0.0.1:9/evil.dtd"> %remote;]>
<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2"/>""",
    "external DTD": b"""<?xml version="1.0"?>
<!DOCTYPE epcis:EPCISDocument SYSTEM "http://127.0.0.1:9/epcis.dtd">
<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2"/>""",
    "element declarations": b"""<!DOCTYPE a [<!ELEMENT a ANY><!ATTLIST a b CDATA "injected">]><a/>""",
    "undeclared entity": b"""<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2">&nope;</epcis:EPCISDocument>""",
    "not XML": b"{}",
    "not EPCIS": b"<html><body/></html>",
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_or_foreign_xml_is_refused(name: str) -> None:
    with pytest.raises(MalformedError):
        document_from_xml(HOSTILE[name])


def test_a_bare_doctype_declares_nothing_and_is_tolerated() -> None:
    """GS1's own WithFullCombinationOfFields examples start with <!DOCTYPE project>."""
    xml = b'<?xml version="1.0"?>\n<!DOCTYPE project>\n' + QUERY_DOCUMENT
    assert document_from_xml(xml)["type"] == "EPCISQueryDocument"


def test_deep_nesting_is_refused_not_a_crash() -> None:
    xml = (
        b'<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2"><EPCISBody>'
        + b"<x:a xmlns:x='urn:x'>" * 100_000
        + b"</x:a>" * 100_000
        + b"</EPCISBody></epcis:EPCISDocument>"
    )
    with pytest.raises(MalformedError):
        document_from_xml(xml)


def test_an_element_flood_is_refused_before_conversion() -> None:
    flood = b"<x:a xmlns:x='urn:x'/>" * 500_001
    xml = (
        b'<epcis:EPCISDocument xmlns:epcis="urn:epcglobal:epcis:xsd:2"><EPCISBody><EventList>'
        b"<ObjectEvent>" + flood + b"</ObjectEvent></EventList></EPCISBody></epcis:EPCISDocument>"
    )
    with pytest.raises(MalformedError, match="XML elements"):
        document_from_xml(xml)
