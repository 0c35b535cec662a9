"""Named EPCIS queries over the REST binding: create, list, read, answer, page, delete;
refusals; and an enterprise never seeing another's private events through them."""

from __future__ import annotations

import json
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from hypothesis import given
from hypothesis import strategies as st

from gateway.keys import LEDGER
from tests.conftest import SHARED_EPCIS, settled
from tests.epcis_samples import OTHER_GCP, PRODUCER_GCP, document, object_event
from tests.ingest.test_capture import Signer, post, register
from traceledger.accounts import tokens
from traceledger.inspect.query import definition_params, parse_definition, parse_query

Client = TestClient[web.Request, web.Application]


def shipping(serial: int, gcp: str = PRODUCER_GCP) -> dict[str, Any]:
    return object_event(
        serial, gcp=gcp, action="OBSERVE", biz_step="shipping", disposition="in_transit"
    )


def receiving(serial: int, gcp: str = PRODUCER_GCP) -> dict[str, Any]:
    return object_event(
        serial, gcp=gcp, action="OBSERVE", biz_step="receiving", disposition="in_progress"
    )


async def capture(client: Client, signer: Signer, *events: dict[str, Any]) -> list[str]:
    """Capture and wait until indexed and signed; the events' IDs."""
    status, receipt = await post(client, document(*events), signer)
    assert status == 201, receipt
    await settled(client.app[LEDGER])
    return [e["eventID"] for e in receipt["entries"]]


async def token_for(client: Client, signer: Signer | None, role: str = "enterprise") -> str:
    async with client.app[LEDGER].pool.acquire() as conn:
        ent = signer.enterprise_id if signer is not None else None
        return (await tokens.add_token(conn, f"{role} {ent}", role, enterprise_id=ent))[1]


def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def call(
    client: Client, method: str, path: str, token: str, body: object = None, status: int = 200
) -> Any:
    response = await client.request(method, path, json=body, headers=auth(token))
    text = await response.text()
    assert response.status == status, text
    return json.loads(text) if text else None


async def create_query(client: Client, token: str, name: str, query: dict[str, Any]) -> None:
    answer = await call(client, "POST", "/queries", token, {"name": name, "query": query}, 201)
    assert answer == {"name": name, "query": query}


def event_ids(doc: dict[str, Any]) -> list[str]:
    assert doc["type"] == "EPCISQueryDocument"
    return [e["eventID"] for e in doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"]]


@pytest.fixture
async def dairy(client: Client) -> Signer:
    return await register(client, "Shanghai Dairy", [PRODUCER_GCP])


async def test_a_named_query_is_created_listed_answered_paged_and_deleted(
    client: Client, dairy: Signer
) -> None:
    token = await token_for(client, dairy)
    shipped = await capture(client, dairy, shipping(1), receiving(2), shipping(3), shipping(4))
    response = await client.post(
        "/queries",
        json={"name": "shipments", "query": {"EQ_bizStep": ["shipping"]}},
        headers=auth(token),
    )
    assert response.status == 201
    assert response.headers["Location"] == "/queries/shipments"
    assert await call(client, "GET", "/queries", token) == [
        {"name": "shipments", "query": {"EQ_bizStep": ["shipping"]}}
    ]
    assert (await call(client, "GET", "/queries/shipments", token))["name"] == "shipments"

    doc = await call(client, "GET", "/queries/shipments/events", token)
    assert event_ids(doc) == [shipped[0], shipped[2], shipped[3]]
    assert doc["epcisBody"]["queryResults"]["queryName"] == "shipments"
    if SHARED_EPCIS.exists():
        import jsonschema

        schema = json.loads((SHARED_EPCIS / "EPCIS-JSON-Schema.json").read_text())
        jsonschema.validate(doc, schema)

    got: list[str] = []
    url: str | None = "/queries/shipments/events?perPage=2"
    while url is not None:
        response = await client.get(url, headers=auth(token))
        got += event_ids(await response.json())
        link = response.headers.get("Link")
        url = link[link.index("/queries") : link.index(">")] if link else None
    assert got == [shipped[0], shipped[2], shipped[3]]

    response = await client.delete("/queries/shipments", headers=auth(token))
    assert response.status == 204
    await call(client, "GET", "/queries/shipments/events", token, status=404)
    assert await call(client, "GET", "/queries", token) == []


async def test_the_query_list_comes_a_page_at_a_time(client: Client, dairy: Signer) -> None:
    token = await token_for(client, dairy)
    for name in ("c", "a", "b"):
        await create_query(client, token, name, {})
    names: list[str] = []
    url: str | None = "/queries?perPage=2"
    while url is not None:
        response = await client.get(url, headers=auth(token))
        assert response.status == 200
        names += [q["name"] for q in await response.json()]
        link = response.headers.get("Link")
        url = link[link.index("/queries") : link.index(">")] if link else None
    assert names == ["a", "b", "c"]
    await call(client, "GET", "/queries?colour=red", token, status=400)


async def test_the_full_query_language_works_in_a_definition(client: Client, dairy: Signer) -> None:
    token = await token_for(client, dairy)
    ids = await capture(client, dairy, shipping(1), receiving(2), shipping(3))
    definition: dict[str, Any] = {
        "eventType": ["ObjectEvent"],
        "EQ_action": ["OBSERVE"],
        "MATCH_anyEPC": [f"urn:epc:id:sgtin:{PRODUCER_GCP}.107346.3"],
        "EXISTS_errorDeclaration": None,
    }
    await create_query(client, token, "declared", definition)
    assert event_ids(await call(client, "GET", "/queries/declared/events", token)) == []
    del definition["EXISTS_errorDeclaration"]
    definition |= {"orderBy": "recordTime", "orderDirection": "DESC", "eventCountLimit": 5}
    await create_query(client, token, "third", definition)
    assert event_ids(await call(client, "GET", "/queries/third/events", token)) == [ids[2]]


async def test_bad_requests_are_refused_precisely(client: Client, dairy: Signer) -> None:
    token = await token_for(client, dairy)
    await create_query(client, token, "q1", {"EQ_bizStep": ["shipping"]})
    cases: list[tuple[object, int, str]] = [
        ({"name": "q1", "query": {}}, 409, "/problems/query-exists"),
        ({"name": "has space", "query": {}}, 400, "/problems/bad-request"),
        ({"name": "q2", "query": {"EQ_bizStep": ["dancing"]}}, 400, "/problems/bad-request"),
        ({"name": "q2", "query": {"colour": ["red"]}}, 400, "/problems/bad-request"),
        ({"name": "q2", "query": {"eventType": "ObjectEvent|x"}}, 400, "/problems/bad-request"),
        ({"name": "q2", "query": {"perPage": 3}}, 400, "/problems/bad-request"),
        ({"name": "q2", "query": ["not", "an", "object"]}, 400, "/problems/bad-request"),
        ({"name": "q2"}, 400, "/problems/bad-request"),
        (["not an object"], 400, "/problems/bad-request"),
    ]
    for body, status, kind in cases:
        problem = await call(client, "POST", "/queries", token, body, status)
        assert problem["type"] == kind, body
    response = await client.post(
        "/queries", data=b"name=q3", headers={**auth(token), "Content-Type": "text/plain"}
    )
    assert response.status == 415
    response = await client.post("/queries", json={"name": "q4", "query": {}})
    assert response.status == 401
    await call(client, "GET", "/queries/q1/events?EQ_bizStep=receiving", token, status=400)
    await call(client, "GET", "/queries/nope/events", token, status=404)
    await call(client, "DELETE", "/queries/nope", token, status=404)


async def test_an_enterprise_query_never_returns_another_enterprises_private_events(
    client: Client, dairy: Signer
) -> None:
    other = await register(client, "Berlin Foods", [OTHER_GCP])
    mine = await capture(client, dairy, shipping(1), receiving(2))
    theirs = await capture(client, other, shipping(1, OTHER_GCP), receiving(2, OTHER_GCP))
    dairy_token, other_token = await token_for(client, dairy), await token_for(client, other)
    inspector = await token_for(client, None, "inspector")
    for token in (dairy_token, other_token, inspector):
        await create_query(client, token, "everything", {})
    assert event_ids(await call(client, "GET", "/queries/everything/events", other_token)) == (
        theirs
    )
    assert event_ids(await call(client, "GET", "/queries/everything/events", dairy_token)) == (mine)
    everything = await call(client, "GET", "/queries/everything/events", inspector)
    assert set(event_ids(everything)) == set(mine) | set(theirs)
    # Naming the other's goods outright finds nothing, and its queries do not exist.
    wanted = {"MATCH_epc": [f"urn:epc:id:sgtin:{PRODUCER_GCP}.107346.1"]}
    await create_query(client, other_token, "theirs", wanted)
    assert event_ids(await call(client, "GET", "/queries/theirs/events", other_token)) == []
    await create_query(client, dairy_token, "mine", wanted)
    await call(client, "GET", "/queries/mine/events", other_token, status=404)
    await call(client, "DELETE", "/queries/mine", other_token, status=404)
    assert [q["name"] for q in await call(client, "GET", "/queries", other_token)] == [
        "everything",
        "theirs",
    ]


# ---------------------------------------------------------------------------------------------
# A definition means what the same parameters mean in a query string.

_VALUES: dict[str, list[str]] = {
    "eventType": ["ObjectEvent", "AggregationEvent", "TransformationEvent"],
    "EQ_action": ["ADD", "OBSERVE", "DELETE"],
    "EQ_bizStep": ["shipping", "receiving", "urn:epcglobal:cbv:bizstep:packing"],
    "EQ_disposition": ["in_transit", "recalled"],
    "MATCH_epc": [f"urn:epc:id:sgtin:{PRODUCER_GCP}.107346.{i}" for i in range(3)],
    "MATCH_parentID": [f"urn:epc:id:sscc:{PRODUCER_GCP}.0000000001"],
    "EQ_source_owning_party": [f"urn:epc:id:pgln:{PRODUCER_GCP}.00001"],
    "GE_eventTime": ["2026-01-01T00:00:00Z"],
    "LT_recordTime": ["2027-01-01T00:00:00+08:00"],
    "orderBy": ["eventTime", "recordTime"],
    "eventCountLimit": ["7"],
}
_SINGLE = {"GE_eventTime", "LT_recordTime", "orderBy", "eventCountLimit"}


@given(
    st.dictionaries(
        st.sampled_from(sorted(_VALUES)),
        st.integers(min_value=0, max_value=2),
        min_size=0,
        max_size=6,
    )
)
def test_a_definition_means_what_its_query_string_means(chosen: dict[str, int]) -> None:
    definition: dict[str, Any] = {}
    rest: dict[str, list[str]] = {}
    for name, n in chosen.items():
        values = _VALUES[name][: n + 1]
        if name in _SINGLE:
            definition[name] = int(values[0]) if name == "eventCountLimit" else values[0]
            rest[name] = [values[0]]
        else:
            definition[name] = values
            rest[name] = ["|".join(values)]
    assert parse_definition(definition) == parse_query(rest)
    assert set(definition_params(definition)) == set(rest)
