"""The JSON Schemas in schemas/ and the SchemaSet that reports violations precisely."""

from __future__ import annotations

import base64
import copy
import json
import re
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator

from tests.conftest import SHARED_EPCIS
from traceledger.standards.schemas import SchemaSet, Violation, default_root

SCHEMAS = default_root()
# The official GS1 examples sit beside the repository (../shared/epcis/examples).
EXAMPLES = SHARED_EPCIS / "examples"
QUERY_DOCUMENT = "EPCISQueryDocument.jsonld"
EXAMPLE_FILES = sorted(p.name for p in EXAMPLES.glob("*.jsonld") if p.name != QUERY_DOCUMENT)
needs_examples = pytest.mark.skipif(not EXAMPLES.is_dir(), reason=f"{EXAMPLES} is absent")

Doc = dict[str, Any]


@pytest.fixture(scope="module")
def schemas() -> SchemaSet:
    return SchemaSet()


def event(**fields: Any) -> Doc:
    base: Doc = {
        "type": "ObjectEvent",
        "action": "OBSERVE",
        "eventTime": "2024-05-01T08:30:00.000+08:00",
        "eventTimeZoneOffset": "+08:00",
        "epcList": ["urn:epc:id:sgtin:0614141.107346.2017"],
        "bizStep": "shipping",
        "disposition": "in_transit",
        "readPoint": {"id": "urn:epc:id:sgln:0614141.07346.1234"},
    }
    base.update(fields)
    return {k: v for k, v in base.items() if v is not None}


def document(*events: Any) -> Doc:
    return {
        "@context": ["https://ref.gs1.org/standards/epcis/2.0.0/epcis-context.jsonld"],
        "type": "EPCISDocument",
        "schemaVersion": "2.0",
        "creationDate": "2024-05-01T08:31:00Z",
        "epcisBody": {"eventList": list(events)},
    }


def load(name: str) -> Doc:
    loaded: Doc = json.loads((EXAMPLES / name).read_text(encoding="utf-8"))
    return loaded


# --- the official examples -------------------------------------------------------------


@needs_examples
@pytest.mark.parametrize("name", EXAMPLE_FILES)
def test_every_official_example_is_accepted(schemas: SchemaSet, name: str) -> None:
    assert schemas.document_errors(load(name)) == []


@needs_examples
def test_the_official_query_document_is_refused(schemas: SchemaSet) -> None:
    found = schemas.document_errors(load(QUERY_DOCUMENT))
    assert Violation(None, "/type", 'must be "EPCISDocument", got "EPCISQueryDocument"') in found
    assert Violation(None, "/epcisBody/eventList", "is required") in found


@needs_examples
def test_examples_cover_all_five_event_types() -> None:
    kinds = {e["type"] for name in EXAMPLE_FILES for e in load(name)["epcisBody"]["eventList"]}
    assert kinds == {
        "ObjectEvent",
        "AggregationEvent",
        "TransactionEvent",
        "TransformationEvent",
        "AssociationEvent",
    }


# --- hand-made bad documents: event index, pointer and reason ----------------------------

E1 = "/epcisBody/eventList/1"
BAD: dict[str, tuple[Doc, int | None, str, str]] = {
    "missing action on ObjectEvent": (
        document(event(), event(action=None)),
        1,
        f"{E1}/action",
        "is required",
    ),
    "bad eventTime": (
        document(event(), event(eventTime="2024-05-01 08:30")),
        1,
        f"{E1}/eventTime",
        "RFC 3339 date-time",
    ),
    "eventTime without offset": (
        document(event(), event(eventTime="2024-05-01T08:30:00")),
        1,
        f"{E1}/eventTime",
        "RFC 3339 date-time",
    ),
    "bad eventTimeZoneOffset": (
        document(event(), event(eventTimeZoneOffset="+8:00")),
        1,
        f"{E1}/eventTimeZoneOffset",
        "UTC offset",
    ),
    "offset beyond 14 hours": (
        document(event(), event(eventTimeZoneOffset="+15:00")),
        1,
        f"{E1}/eventTimeZoneOffset",
        "UTC offset",
    ),
    "epcList not an array": (
        document(event(), event(epcList="urn:epc:id:sgtin:0614141.107346.2017")),
        1,
        f"{E1}/epcList",
        "must be an array, not a string",
    ),
    "unknown event type": (
        document(event(), event(type="QuantityEvent")),
        1,
        f"{E1}/type",
        'unknown event type "QuantityEvent"',
    ),
    "quantity not a number": (
        document(
            event(),
            event(
                epcList=None,
                quantityList=[
                    {"epcClass": "urn:epc:class:lgtin:4012345.012345.998877", "quantity": "200"}
                ],
            ),
        ),
        1,
        f"{E1}/quantityList/0/quantity",
        "must be a number, not a string",
    ),
    "empty eventList": (document(), None, "/epcisBody/eventList", "must not be empty"),
    "10001 events": (
        document(*[event()] * 10001),
        None,
        "/epcisBody/eventList",
        "has 10001 items; at most 10000 are allowed",
    ),
    "event that is not an object": (document(event(), "ObjectEvent"), 1, E1, "must be an object"),
    "aggregation ADD without parentID": (
        document(
            event(),
            event(type="AggregationEvent", action="ADD", epcList=None, childEPCs=["urn:a:b"]),
        ),
        1,
        f"{E1}/parentID",
        "is required when action is ADD or DELETE",
    ),
    "transformation with an action": (
        document(
            event(),
            event(
                type="TransformationEvent",
                action="ADD",
                epcList=None,
                inputEPCList=["urn:a:1"],
                outputEPCList=["urn:a:2"],
            ),
        ),
        1,
        f"{E1}/action",
        "a TransformationEvent has no action",
    ),
    "object event without what": (
        document(event(), event(epcList=None)),
        1,
        E1,
        "needs a non-empty epcList or quantityList",
    ),
    "ilmd with OBSERVE": (
        document(event(), event(ilmd={"cbvmda:lotNumber": "LOT1"})),
        1,
        f"{E1}/action",
        "ilmd is only allowed when action is ADD",
    ),
    "unprefixed extension field": (
        document(event(), event(myField=1)),
        1,
        f"{E1}/myField",
        "namespace prefix",
    ),
    "duplicate EPC": (
        document(event(), event(epcList=["urn:a:1", "urn:a:2", "urn:a:1"])),
        1,
        f"{E1}/epcList/2",
        "duplicates item 0",
    ),
    "unit without quantity": (
        document(event(), event(quantityList=[{"epcClass": "urn:a:1", "uom": "KGM"}])),
        1,
        f"{E1}/quantityList/0/quantity",
        "is required when uom is present",
    ),
    "unknown bare CBV word": (
        document(event(), event(bizStep="shippping")),
        1,
        f"{E1}/bizStep",
        "CBV business step",
    ),
    # JSON Schema patterns are ECMA-262: `$` is the end of the string, not "before a final \n".
    "identifier with a trailing newline": (
        document(event(), event(epcList=["urn:epc:id:sgtin:0614141.107346.2017\n"])),
        1,
        f"{E1}/epcList/0",
        "URI",
    ),
    "pointer escapes / and ~": (
        document(event(), event(ilmd={"lot/~no": "1"}, action="ADD")),
        1,
        f"{E1}/ilmd/lot~1~0no",
        "namespace-prefixed",
    ),
    "wrong schemaVersion": (
        {**document(event()), "schemaVersion": "1.2"},
        None,
        "/schemaVersion",
        'must be "2.0"',
    ),
}


@pytest.mark.parametrize("case", list(BAD))
def test_a_bad_document_names_the_event_pointer_and_reason(schemas: SchemaSet, case: str) -> None:
    doc, index, pointer, reason = BAD[case]
    found = schemas.document_errors(doc)
    assert found, "expected a violation"
    assert [(v.event, v.pointer) for v in found] == [(index, pointer)], found
    assert reason in found[0].reason


def test_a_valid_hand_made_document_has_no_violations(schemas: SchemaSet) -> None:
    assert schemas.document_errors(document(event(), event(action="ADD", ilmd={"ex:a": 1}))) == []


def test_not_a_document_at_all(schemas: SchemaSet) -> None:
    assert schemas.document_errors([]) == [Violation(None, "", "must be an object, not an array")]
    assert {v.pointer for v in schemas.document_errors({})} == {
        "/type",
        "/schemaVersion",
        "/creationDate",
        "/epcisBody",
    }


def test_every_bad_event_is_reported_up_to_the_limit(schemas: SchemaSet) -> None:
    doc = document(*[event(action=None)] * 300)
    found = schemas.document_errors(doc)
    assert len(found) == 100
    assert [v.event for v in found] == list(range(100))
    assert len(schemas.document_errors(doc, limit=7)) == 7


def test_violations_serialize_for_problem_json(schemas: SchemaSet) -> None:
    (found,) = schemas.document_errors(document(event(action=None)))
    problem = {"type": "/problems/invalid-events", "title": "x", "status": 422}
    problem["errors"] = [found.to_json()]
    assert schemas.errors("problem.schema.json", problem) == []


# --- the fast path agrees with jsonschema ------------------------------------------------

ODD_VALUES: list[Any] = [
    None,
    "",
    "x",
    0,
    -1,
    1.5,
    True,
    [],
    {},
    ["urn:a:b"],
    ["urn:a:b", "urn:a:b"],
    [{"epcClass": "urn:a:b", "quantity": 1, "uom": "KGM"}],
    {"id": "urn:a:b"},
    "urn:epc:id:sgtin:0614141.107346.2017",
    "urn:a:b\n",
    "2020-01-01T00:00:00Z",
    "+08:00",
    "ADD",
    "DELETE",
    "OBSERVE",
    "shipping",
]


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    found = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            found += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for position, value in enumerate(node):
            found += _paths(value, (*prefix, position))
    return found


def _mutate(doc: Doc, path: tuple[Any, ...], how: str, value: Any) -> None:
    *parents, last = path
    node: Any = doc
    for step in parents:
        node = node[step]
    if how == "delete" and isinstance(node, dict):
        del node[last]
    elif how == "add" and isinstance(node[last], dict):
        node[last]["extra" if value is None else "ex:extra"] = value
    else:
        node[last] = value


SEED_EVENTS: list[Doc] = [
    event(),
    event(action="ADD", ilmd={"ex:lot": "1"}, quantityList=[{"epcClass": "urn:a:b"}]),
    event(type="AggregationEvent", action="ADD", epcList=None, parentID="urn:a:p", childEPCs=[]),
    event(
        type="TransformationEvent",
        action=None,
        epcList=None,
        inputEPCList=["urn:a:1"],
        outputQuantityList=[{"epcClass": "urn:a:2", "quantity": 2.5, "uom": "KGM"}],
    ),
]
if EXAMPLES.is_dir():
    SEED_EVENTS += [e for name in EXAMPLE_FILES for e in load(name)["epcisBody"]["eventList"]]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.sampled_from(SEED_EVENTS),
    choice=st.integers(min_value=0),
    how=st.sampled_from(["delete", "replace", "add"]),
    value=st.sampled_from(ODD_VALUES),
)
def test_document_errors_agree_with_the_whole_document_schema(
    schemas: SchemaSet, seed: Doc, choice: int, how: str, value: Any
) -> None:
    doc = document(copy.deepcopy(seed))
    paths = _paths(doc)[1:]
    _mutate(doc, paths[choice % len(paths)], how, value)
    whole = schemas.validator("epcis-document.schema.json")
    assert (schemas.document_errors(doc) == []) == whole.is_valid(doc)


@pytest.mark.parametrize("space", ["\x1c", "\x1f", "\x85", "\u3000", "\ufeff"])
def test_the_fast_check_refuses_what_pythons_whitespace_refuses(
    schemas: SchemaSet, space: str
) -> None:
    # jsonschema-rs reads \S as ECMA-262 does; jsonschema here, as Python does. Neither
    # may let through an identifier the other refuses.
    doc = document(event(readPoint={"id": f"urn:epc:id:sgln:0614141.00001.{space}0"}))
    whole = schemas.validator("epcis-document.schema.json")
    assert (schemas.document_errors(doc) == []) == whole.is_valid(doc)


# --- envelopes ---------------------------------------------------------------------------


def envelope(**fields: Any) -> Doc:
    base: Doc = {
        "payloadType": "application/ld+json",
        "payload": base64.b64encode(json.dumps(document(event())).encode()).decode(),
        "signatures": [{"keyid": "ab" * 32, "sig": base64.b64encode(bytes(64)).decode()}],
    }
    base.update(fields)
    return base


def test_a_well_formed_envelope_passes(schemas: SchemaSet) -> None:
    assert schemas.envelope_errors(envelope()) == []
    url_safe = base64.urlsafe_b64encode(b"\xfb\xff" * 10).decode().rstrip("=")
    assert schemas.envelope_errors(envelope(payload=url_safe)) == []


@pytest.mark.parametrize(
    ("fields", "pointer"),
    [
        ({"payload": "not base64!"}, "/payload"),
        ({"payload": "QUJD\n"}, "/payload"),
        ({"payload": "ab+c-d=="}, "/payload"),  # two alphabets at once
        ({"payloadType": ""}, "/payloadType"),
        ({"signatures": []}, "/signatures"),
        ({"signatures": [{"keyid": "", "sig": "AAAA"}]}, "/signatures/0/keyid"),
        ({"signatures": [{"keyid": "ab" * 32}]}, "/signatures/0/sig"),
        ({"signatures": [{"keyid": "ab" * 32, "sig": "AAAA", "x": 1}]}, "/signatures/0/x"),
        ({"extra": 1}, "/extra"),
    ],
)
def test_a_malformed_envelope_names_the_spot(schemas: SchemaSet, fields: Doc, pointer: str) -> None:
    assert [v.pointer for v in schemas.envelope_errors(envelope(**fields))] == [pointer]


def test_too_many_signatures(schemas: SchemaSet) -> None:
    sigs = [{"keyid": f"{i:064x}", "sig": "AAAA"} for i in range(17)]
    (found,) = schemas.envelope_errors(envelope(signatures=sigs))
    assert found == Violation(None, "/signatures", "has 17 items; at most 16 are allowed")


# --- API response schemas ----------------------------------------------------------------

HASH = base64.b64encode(bytes(32)).decode()
GOOD_RESPONSES: list[tuple[str, Any]] = [
    (
        "capture-response.schema.json",
        {
            "envelope": "ab" * 32,
            "entries": [
                {
                    "eventID": "ni:///sha-256;" + "0" * 64 + "?ver=CBV2.0",
                    "index": 0,
                    "status": "appended",
                },
                {"eventID": "urn:uuid:1", "index": 7, "status": "duplicate"},
            ],
            "treeSize": 8,
        },
    ),
    (
        "problem.schema.json",
        {
            "type": "/problems/invalid-events",
            "title": "Events fail validation",
            "status": 422,
            "detail": "1 problem",
            "instance": "/v1/capture",
            "errors": [{"event": None, "pointer": "", "reason": "must be an object"}],
        },
    ),
    (
        "log.schema.json",
        {
            "origin": "traceledger.example/log",
            "verifierKey": "traceledger.example/log+0123abcd+"
            + base64.b64encode(bytes(33)).decode(),
            "treeSize": 0,
            "rootHash": HASH,
        },
    ),
    (
        "entry.schema.json",
        {
            "index": 300,
            "leaf": base64.b64encode(b"\x97\x01").decode(),
            "leafHash": HASH,
            "fields": {
                "version": 1,
                "index": 300,
                "prevLeafHash": HASH,
                "recordTime": "2024-05-01T00:30:00.123456Z",
                "recordTimeMicros": 1714523400123456,
                "identity": "ab" * 32,
                "payloadHash": "cd" * 32,
                "envelopeHash": None,
            },
            "access": "signer",
            "payload": None,
            "envelope": base64.b64encode(b"{}").decode(),
            "tile": "tile/entries/001.p/45",
            "redacted": [],
        },
    ),
    ("proof.schema.json", {"index": 3, "treeSize": 5, "hashes": [HASH, HASH]}),
    ("proof.schema.json", {"first": 3, "second": 5, "hashes": []}),
]


@pytest.mark.parametrize(("name", "body"), GOOD_RESPONSES)
def test_response_schemas_accept_what_the_service_sends(
    schemas: SchemaSet, name: str, body: Any
) -> None:
    assert schemas.errors(name, body) == []


@pytest.mark.parametrize(
    ("name", "body", "pointer"),
    [
        (
            "capture-response.schema.json",
            {"envelope": "AB", "entries": [], "treeSize": 0},
            "/envelope",
        ),
        (
            "log.schema.json",
            {"origin": "o", "verifierKey": "k", "treeSize": 0, "rootHash": HASH},
            "/verifierKey",
        ),
        ("proof.schema.json", {"index": 3, "treeSize": 5, "hashes": ["AAAA"]}, ""),
    ],
)
def test_response_schemas_refuse_wrong_shapes(
    schemas: SchemaSet, name: str, body: Any, pointer: str
) -> None:
    assert pointer in {v.pointer for v in schemas.errors(name, body)}


# --- the schema files themselves ---------------------------------------------------------


@pytest.mark.parametrize("path", sorted(SCHEMAS.glob("*.schema.json")), ids=lambda p: p.name)
def test_every_schema_is_a_valid_draft_2020_12_schema(path: Path) -> None:
    schema = json.loads(path.read_text(encoding="utf-8"))
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["$id"] == f"https://traceledger.dev/schemas/{path.name}"
    Draft202012Validator.check_schema(schema)


def _resolve(document_: Any, fragment: str) -> Any:
    node = document_
    for token in fragment.lstrip("/").split("/") if fragment else []:
        key = token.replace("~1", "/").replace("~0", "~")
        node = node[int(key)] if isinstance(node, list) else node[key]
    return node


def _check_ref(ref: str, here: Path, local: Any) -> None:
    target, _, fragment = ref.partition("#")
    if target:
        assert not re.match(r"^[a-z]+:", target), f"{ref}: only relative file refs (no network)"
        file = here.parent / target
        assert file.is_file(), f"{ref}: no such file"
        _resolve(json.loads(file.read_text(encoding="utf-8")), fragment)
    elif local is not None:
        _resolve(local, fragment)


OPENAPI = SCHEMAS / "openapi.yaml"


def test_openapi_file_refs_resolve_without_a_yaml_parser() -> None:
    refs = re.findall(r"\$ref:\s*[\"']?([^\"'\s]+)", OPENAPI.read_text(encoding="utf-8"))
    assert len(refs) > 20
    for ref in refs:
        _check_ref(ref, OPENAPI, None)


def test_openapi_parses_and_every_ref_resolves() -> None:
    yaml = pytest.importorskip("yaml")
    spec = yaml.safe_load(OPENAPI.read_text(encoding="utf-8"))
    assert spec["openapi"].startswith("3.1")
    refs: list[str] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key, value in node.items():
                if key == "$ref":
                    refs.append(value)
                else:
                    walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(spec)
    for ref in refs:
        _check_ref(ref, OPENAPI, spec)
    paths = set(spec["paths"])
    assert {"/v1/capture", "/v1/log", "/checkpoint", "/v1/entries/{index}"} <= paths
    assert {"/v1/admin/enterprises", "/v1/admin/keys/{keyId}/revoke"} <= paths


def test_cross_file_refs_in_schemas_resolve_through_the_registry(schemas: SchemaSet) -> None:
    # entry.schema.json uses log.schema.json's and envelope.schema.json's definitions.
    entry = GOOD_RESPONSES[3][1]

    def with_identity(identity: str) -> list[Violation]:
        fields = {**entry["fields"], "identity": identity}
        return schemas.errors("entry.schema.json", {**entry, "fields": fields})

    assert with_identity("ab" * 32) == []
    assert [v.pointer for v in with_identity("AB")] == ["/fields/identity"]
