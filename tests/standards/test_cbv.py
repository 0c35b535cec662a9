"""CBV 2.0 vocabularies: every value in all three spellings, rejections, extensions.

The value lists are checked against the official EPCIS 2.0 JSON Schema and JSON-LD context
in ../shared/epcis when that folder is present (GS1 publishes the CBV 2.0 lists in both).
"""

from __future__ import annotations

import json
import re

import pytest

from tests.conftest import SHARED_EPCIS
from traceledger.standards import cbv

EPCIS = SHARED_EPCIS

ALL_VALUES = [
    (vocab, value) for vocab, (values, _, _) in cbv.VOCABULARIES.items() for value in sorted(values)
]


def test_vocabulary_sizes_are_cbv_2_0s() -> None:
    assert len(cbv.BIZ_STEPS) == 41
    assert len(cbv.DISPOSITIONS) == 33
    assert len(cbv.BIZ_TRANSACTION_TYPES) == 13
    assert sorted(cbv.SOURCE_DEST_TYPES) == ["location", "owning_party", "possessing_party"]
    assert sorted(cbv.ERROR_REASONS) == ["did_not_occur", "incorrect_data"]
    assert len(cbv.SENSOR_COMPONENTS) == 14


def test_value_lists_match_the_official_json_schema() -> None:
    schema_file = EPCIS / "EPCIS-JSON-Schema.json"
    if not schema_file.is_file():
        pytest.skip(f"official EPCIS schema not found at {schema_file}")
    definitions = json.loads(schema_file.read_text(encoding="utf-8"))["definitions"]

    def enum(name: str) -> set[str]:
        return set(definitions[name]["anyOf"][1]["enum"])

    assert enum("bizStep") == cbv.BIZ_STEPS
    assert enum("disposition") == cbv.DISPOSITIONS
    assert enum("bizTransaction-type") == cbv.BIZ_TRANSACTION_TYPES
    assert enum("source-dest-type") == cbv.SOURCE_DEST_TYPES
    assert enum("error-reason") == cbv.ERROR_REASONS
    assert enum("component") == cbv.SENSOR_COMPONENTS


def test_value_uris_match_the_official_json_ld_context() -> None:
    context_file = EPCIS / "epcis-context.jsonld"
    if not context_file.is_file():
        pytest.skip(f"official EPCIS context not found at {context_file}")
    text = context_file.read_text(encoding="utf-8")
    in_context = set(re.findall(r'"([a-z_]+|[xyz])": "cbv:([A-Za-z]+)-\1"', text))
    expected = {(value, cbv.VOCABULARIES[vocab][1]) for vocab, value in ALL_VALUES}
    assert in_context == expected


@pytest.mark.parametrize(("vocab", "value"), ALL_VALUES)
def test_every_value_round_trips_through_all_spellings(vocab: str, value: str) -> None:
    web = cbv.uri(vocab, value)
    assert web == f"https://ref.gs1.org/cbv/{cbv.VOCABULARIES[vocab][1]}-{value}"
    assert cbv.normalize(vocab, value) == value
    assert cbv.normalize(vocab, web) == value
    assert cbv.uri(vocab, web) == web
    if vocab == "component":  # new in CBV 2.0: no EPCIS 1.x URN
        with pytest.raises(ValueError, match=re.escape("no EPCIS 1.x URN")):
            cbv.urn(vocab, value)
        return
    legacy = cbv.urn(vocab, web)
    assert legacy == f"urn:epcglobal:cbv:{cbv.VOCABULARIES[vocab][2]}:{value}"
    assert cbv.normalize(vocab, legacy) == value
    assert cbv.uri(vocab, legacy) == web


@pytest.mark.parametrize(
    ("vocab", "value", "short"),
    [
        ("bizStep", "http://ref.gs1.org/cbv/BizStep-shipping", "shipping"),
        ("bizStep", "https://REF.GS1.ORG/cbv/BizStep-shipping", "shipping"),
        ("bizStep", "https://ns.gs1.org/cbv/BizStep-shipping", "shipping"),  # EPCIS 2.0 drafts
        ("bizStep", "cbv:BizStep-shipping", "shipping"),  # JSON-LD compact IRI
        ("disposition", "URN:EPCGLOBAL:CBV:DISP:in_transit", "in_transit"),
        ("BizStep", "receiving", "receiving"),  # the URI infix names the vocabulary too
        ("Disp", "https://ref.gs1.org/cbv/Disp-recalled", "recalled"),
        ("BTT", "urn:epcglobal:cbv:btt:po", "po"),
        ("SDT", "owning_party", "owning_party"),
        ("ER", "urn:epcglobal:cbv:er:incorrect_data", "incorrect_data"),
        ("Comp", "https://ref.gs1.org/cbv/Comp-latitude", "latitude"),
    ],
)
def test_unambiguous_variant_spellings_are_accepted(vocab: str, value: str, short: str) -> None:
    assert cbv.normalize(vocab, value) == short


@pytest.mark.parametrize(
    "value",
    [
        "https://example.com/steps/washing",
        "urn:example:step:x",
        "http://epcis.example.org/hc/bizstep/summarising_discharge",  # official example
        "https://ref.gs1.org/epcis/other",
    ],
)
def test_extension_uris_pass_unchanged(value: str) -> None:
    assert cbv.normalize("bizStep", value) == value
    assert cbv.uri("bizStep", value) == value
    assert cbv.urn("bizStep", value) == value


@pytest.mark.parametrize(
    ("vocab", "value"),
    [
        ("bizStep", "nonsense"),
        ("bizStep", "Shipping"),
        ("bizStep", "urn:epcglobal:cbv:bizstep:nonsense"),
        ("bizStep", "https://ref.gs1.org/cbv/BizStep-nonsense"),
        ("bizStep", "https://ref.gs1.org/cbv/Disp-in_transit"),  # a disposition, not a step
        ("bizStep", "urn:epcglobal:cbv:disp:in_transit"),
        ("bizStep", "cbv:BizStep-nonsense"),
        ("bizStep", "in_transit"),
        ("bizStep", ""),
        ("bizStep", "shipping "),
        ("disposition", "shipping"),
        ("bizTransactionType", "purchase_order"),
        ("sourceDestType", "urn:epcglobal:cbv:sdt:owner"),
        ("errorReason", "typo"),
        ("component", "urn:epcglobal:cbv:comp:x"),
    ],
)
def test_unknown_values_are_rejected(vocab: str, value: str) -> None:
    with pytest.raises(ValueError, match=f"not a CBV 2.0 {vocab}") as caught:
        cbv.normalize(vocab, value)
    assert len(str(caught.value)) < 300  # names the vocabulary, lists nothing huge


def test_the_error_suggests_the_right_spellings() -> None:
    with pytest.raises(ValueError, match="BizStep-shipping") as caught:
        cbv.normalize("bizStep", "nonsense")
    assert "'nonsense'" in str(caught.value)


def test_unknown_vocabulary_is_rejected() -> None:
    with pytest.raises(ValueError, match="unknown CBV vocabulary 'bizstep'"):
        cbv.normalize("bizstep", "shipping")
    with pytest.raises(ValueError, match="unknown CBV vocabulary"):
        cbv.uri("action", "ADD")
