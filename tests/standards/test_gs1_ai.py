"""Digital Link query attributes are checked by GS1's AI table, like path values."""

from __future__ import annotations

import contextlib
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from traceledger.errors import IdentifierError
from traceledger.standards.gs1_ai import ai_table, check_query_attributes

GTIN_LOT = ["01", "10"]


@pytest.mark.parametrize(
    ("query", "reason"),
    [
        ([("17", "ABCDEF")], "digits"),
        ([("17", "2712")], "6 characters"),
        ([("17", "271399")], "month 13"),
        ([("15", "270230")], "day 30"),
        ([("4321", "1")], "needs AI 00"),
        ([("4321", "2")], "must be 0"),
        ([("21", "123")], "belongs in the path"),
        ([("10", "LOT2")], "appears twice"),
        ([("17", "271231"), ("17", "271231")], "appears twice"),
        ([("9999", "x")], "not a GS1 Application Identifier"),
        ([("02", "10614141073465")], "check digit"),
        ([("3103", "1500")], "6 characters"),
        ([("8006", "106141410734640102")], "may not appear with AI 01"),
        ([("99", "two words")], "CSET 82"),
    ],
)
def test_bad_query_attributes_are_refused_with_the_reason(
    query: list[tuple[str, str]], reason: str
) -> None:
    with pytest.raises(IdentifierError, match=reason):
        check_query_attributes(GTIN_LOT, query)


@pytest.mark.parametrize(
    "query",
    [
        [("17", "271231")],
        [("17", "271200")],  # day 00: the last day of the month (GS1)
        [("15", "280229"), ("3103", "001500")],
        [("format", "json"), ("linkType", "all"), ("lang", "zh")],  # not AIs: ours
        [("99", "internal-ref.7")],
    ],
)
def test_good_query_attributes_pass(query: list[tuple[str, str]]) -> None:
    check_query_attributes(GTIN_LOT, query)


def test_an_sscc_link_may_carry_dangerous_goods() -> None:
    check_query_attributes(["00"], [("4321", "1"), ("4326", "270105")])


def test_the_table_knows_the_whole_ai_range() -> None:
    table = ai_table()
    assert table["3103"].title == "NET WEIGHT (kg)"
    assert table["01"].key
    assert not table["21"].attribute
    assert len(table) > 500


@given(st.text(max_size=60), st.sampled_from(sorted(ai_table())))
def test_any_value_is_accepted_or_refused_never_crashes(value: str, code: str) -> None:
    with contextlib.suppress(IdentifierError):
        check_query_attributes(["00", "01"] if code not in ("00", "01") else [], [(code, value)])


def test_checking_is_linear_in_the_query_length() -> None:
    """A value 100 times longer costs about 100 times more, not 10,000 times."""

    def cost(size: int) -> float:
        query = [("99", "A" * size), ("4320", "%41" * (size // 3))]
        started = time.perf_counter()
        for _ in range(20):
            with contextlib.suppress(IdentifierError):
                check_query_attributes(["00"], query)
        return time.perf_counter() - started

    small, large = cost(1_000), cost(100_000)
    assert large < small * 1000


@pytest.mark.parametrize("query", ["?17=ABCDEF", "?17=2712", "?4321=1", "?21=X"])
async def test_the_resolver_answers_400_with_the_reason(client: Any, query: str) -> None:
    response = await client.get(
        "/01/09421023100156/10/CPA117" + query, headers={"Accept": "application/json"}
    )
    assert response.status == 400
    problem = await response.json()
    assert problem["type"] == "/problems/invalid-identifier"
    assert "AI " in problem["detail"]


async def test_the_resolver_takes_valid_attributes(client: Any) -> None:
    response = await client.get(
        "/01/09421023100156/10/CPA117?17=271231", headers={"Accept": "application/json"}
    )
    assert response.status == 404  # a well-formed link to an item nobody recorded
