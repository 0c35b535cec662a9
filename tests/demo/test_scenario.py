"""The demo scenario: valid, authorized, in the past, complete, and loaded exactly once."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.demo import demo_inbox, setup_demo
from gateway.keys import CAPTURE, LEDGER
from tests.conftest import free_port, wait_for_checkpoint, wait_for_index
from tests.webhooks import poll
from traceledger.demo import parties as demo_parties
from traceledger.demo import scenario
from traceledger.ledger import Ledger
from traceledger.lookup.names import read_names
from traceledger.settings import Settings
from traceledger.standards import eventhash
from traceledger.standards.dsse import sign_document
from traceledger.standards.epcis import (
    authority_only,
    authorization_errors,
    check_event,
    created_mentions,
    parse_time,
    raw_mentions,
)
from traceledger.standards.gs1 import GS1Key, parse_digital_link, parse_identifier
from traceledger.standards.schemas import SchemaSet

Client = TestClient[web.Request, web.Application]

NOW = datetime.now(UTC)
STORY = scenario.build(NOW)
PARTIES = {p.name: p for p in STORY.parties}


def events_of(step: scenario.Step) -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = step.document["epcisBody"]["eventList"]
    return events


def all_events() -> list[tuple[scenario.Step, dict[str, Any]]]:
    return [(step, event) for step in STORY.steps for event in events_of(step)]


def mentioned_keys(event: dict[str, Any]) -> set[str]:
    keys = set()
    for uri, _, _ in raw_mentions(event):
        key = parse_identifier(uri)
        if key is not None:
            keys.add(key.canonical())
    return keys


async def tree_size(ledger: Ledger) -> int:
    async with ledger.pool.acquire() as conn:
        size: int = await conn.fetchval("SELECT size FROM log_head")
    return size


# --------------------------------------------------------------------- the data itself


def test_every_document_passes_the_capture_schema() -> None:
    schemas = SchemaSet()
    for step in STORY.steps:
        # As the ledger sees it: through JSON.
        assert schemas.document_errors(json.loads(json.dumps(step.document))) == []


def test_every_event_is_meaningful_and_authorized_for_its_signer() -> None:
    for step, event in all_events():
        party = PARTIES[step.party]
        checked, problems = check_event(event, 0, now=NOW, max_future_skew=0)
        assert problems == [], (step.party, event)
        assert checked is not None
        refused = authorization_errors(checked, 0, party.prefixes, party.role == "authority")
        assert refused == [], (step.party, refused)


def test_each_creating_event_is_by_the_owner_and_verdicts_are_by_the_authority() -> None:
    """The rules restated from the story's side, so a lax checker would not hide a bad story."""
    owners = {p.prefixes[0]: p.name for p in STORY.parties}
    created = 0
    for step, event in all_events():
        checked, _ = check_event(event, 0, now=NOW, max_future_skew=0)
        assert checked is not None
        for mention in created_mentions(checked):
            assert mention.key is not None
            owner = [name for prefix, name in owners.items() if mention.key.owned_by(prefix)]
            assert owner == [step.party], mention.uri
            created += 1
        if authority_only(checked):
            foreign = [
                m
                for m in checked.mentions
                if m.role not in ("readPoint", "bizLocation", "source", "destination")
                and m.key is not None
                and not any(m.key.owned_by(p) for p in PARTIES[step.party].prefixes)
            ]
            assert not foreign or PARTIES[step.party].role == "authority"
    assert created > 20


def test_every_time_is_in_the_past_and_the_story_runs_forward() -> None:
    for step in STORY.steps:
        assert parse_time(step.document["creationDate"]) <= NOW
        for event in events_of(step):
            when = parse_time(event["eventTime"])
            assert NOW - timedelta(weeks=9) < when < NOW - timedelta(days=3)
            declaration = event.get("errorDeclaration")
            if declaration:
                assert when < parse_time(declaration["declarationTime"]) < NOW
    producer_first = parse_time(events_of(STORY.steps[0])[0]["eventTime"])
    recall = [
        parse_time(e["eventTime"]) for _, e in all_events() if e.get("disposition") == "recalled"
    ]
    assert len(recall) == 2
    assert min(recall) > max(
        parse_time(e["eventTime"])
        for _, e in all_events()
        if e.get("bizStep") in ("retail_selling", "destroying", "inspecting")
    )
    assert producer_first < min(recall)


def test_the_story_covers_every_party_event_type_and_outcome() -> None:
    assert {s.party for s in STORY.steps} == set(PARTIES)
    assert {p.role for p in STORY.parties} == {"enterprise", "authority"}
    assert len({p.prefixes[0] for p in STORY.parties}) == len(STORY.parties)
    events = [e for _, e in all_events()]
    assert {e["type"] for e in events} >= {"ObjectEvent", "AggregationEvent", "TransformationEvent"}
    assert {e.get("disposition") for e in events} >= {
        "conformant",
        "non_conformant",
        "destroyed",
        "retail_sold",
        "recalled",
    }
    assert {e.get("bizStep") for e in events} >= {
        "commissioning",
        "packing",
        "shipping",
        "arriving",
        "receiving",
        "inspecting",
        "destroying",
        "unpacking",
        "retail_selling",
    }
    assert sum("errorDeclaration" in e for e in events) == 1
    assert all(e["ilmd"]["cbvmda:countryOfOrigin"] for e in events if "ilmd" in e)
    # The authority recalls lot A; the blended lot is recalled only through its input.
    recalls = [(s.party, e) for s, e in all_events() if e.get("disposition") == "recalled"]
    assert {PARTIES[p].role for p, _ in recalls} == {"enterprise", "authority"}
    recalled = {k for _, e in recalls for k in mentioned_keys(e) if k.startswith("01/")}
    blend = next(e for e in events if e["type"] == "TransformationEvent")
    blend_inputs = set().union(
        *(mentioned_keys({"epcList": [q["epcClass"]]}) for q in blend["inputQuantityList"])
    )
    assert len(recalled) == 1
    assert recalled < blend_inputs


def test_the_error_declaration_names_its_corrective_event() -> None:
    context = eventhash.document_context(STORY.steps[0].document)
    step, declared = next((s, e) for s, e in all_events() if "errorDeclaration" in e)
    original = {k: v for k, v in declared.items() if k != "errorDeclaration"}
    assert any(e == original for _, e in all_events())  # it declares an event really recorded
    (corrective_id,) = declared["errorDeclaration"]["correctiveEventIDs"]
    ids = {eventhash.event_hash_id(eventhash.event_hash(e, context)) for e in events_of(step)}
    assert corrective_id in ids


def test_highlights_are_valid_digital_links_the_story_mentions() -> None:
    labels = [label for label, _ in STORY.highlights]
    assert len(labels) == len(set(labels)) >= 6
    mentioned = set().union(*(mentioned_keys(e) for _, e in all_events()))
    schemes = set()
    for _, path in STORY.highlights:
        key = parse_digital_link("https://id.gs1.org/" + path)  # check digits verified
        assert key.canonical() == path
        schemes.add(key.scheme)
        # EPC URNs cannot carry a serial's lot: the story names the can without it.
        plain = GS1Key(key.scheme, key.key, serial=key.serial) if key.serial else key
        assert plain.canonical() in mentioned, path
    assert schemes == {"gtin", "sscc", "gln"}


def test_building_is_deterministic_so_reloads_are_replays() -> None:
    # Times depend on the anchor's date only, so sub-second noise changes nothing.
    start = NOW.replace(microsecond=0)
    assert scenario.build(start) == scenario.build(start.replace(microsecond=999_999))
    name = STORY.parties[0].name
    document = STORY.steps[0].document
    assert sign_document(document, scenario.party_key(name)) == sign_document(
        document, scenario.party_key(name)
    )
    keys = {scenario.party_key(p.name).private_bytes_raw() for p in STORY.parties}
    assert len(keys) == len(STORY.parties)


def test_build_refuses_a_naive_time() -> None:
    with pytest.raises(ValueError, match="timezone"):
        scenario.build(datetime(2026, 1, 1))


# --------------------------------------------------------------------- through the ledger


def entries_of(story: scenario.Scenario) -> int:
    """The log entries a story adds: its events, and each party's master data once per
    distinct header (the same names from the same party again are a duplicate)."""
    headers = {(s.party, json.dumps(s.document["epcisHeader"])) for s in story.steps}
    return sum(len(events_of(s)) for s in story.steps) + len(headers)


async def test_loading_accepts_every_step_and_loading_again_adds_nothing(client: Client) -> None:
    ledger, capture = client.app[LEDGER], client.app[CAPTURE]
    story = scenario.build(datetime.now(UTC))
    keys = await scenario.load(story, ledger.pool, capture)  # raises on any refusal
    assert set(keys) == set(PARTIES)
    size = await tree_size(ledger)
    assert size == entries_of(story)  # every event is new

    await scenario.load(story, ledger.pool, capture)
    assert await tree_size(ledger) == size
    for step in story.steps:  # over HTTP, each step is now a replay (200, not 201 or 4xx)
        body, content_type = sign_document(step.document, keys[step.party])
        response = await client.post(
            "/v1/capture", data=body, headers={"Content-Type": content_type}
        )
        assert response.status == 200, await response.text()
    assert await tree_size(ledger) == size
    await wait_for_checkpoint(ledger, size)
    assert (await ledger.reader.checkpoint()).size == size


async def test_the_index_attributes_every_event_to_its_signer(client: Client) -> None:
    ledger = client.app[LEDGER]
    story = scenario.build(datetime.now(UTC))
    await scenario.load(story, ledger.pool, client.app[CAPTURE])
    size = await tree_size(ledger)
    await wait_for_index(ledger, size)
    async with ledger.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT e.event_type, n.name, e.corrects FROM events e"
            " JOIN enterprises n ON n.id = e.enterprise_id ORDER BY e.idx"
        )
    expected = [(e["type"], s.party) for s in story.steps for e in events_of(s)]
    assert [(r["event_type"], r["name"]) for r in rows] == expected
    assert sum(r["corrects"] is not None for r in rows) == 1  # the error declaration


async def test_the_demo_loads_on_startup_once_and_prints_where_to_look(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    # The inbox is not listening until startup ends: retry soon after.
    settings = dataclasses.replace(settings, notify_interval=0.02, webhook_retry_base=0.05)

    async def start() -> int:
        """One `traceledger demo` run, as the CLI wires it; the tree size it leaves once
        every recall notice reached the demo's own inbox."""
        app = create_app(settings)
        port = free_port()
        setup_demo(app, "http://demo.example:8080", demo_inbox("127.0.0.1", port))
        async with TestClient(TestServer(app, port=port)) as running:
            ledger = running.app[LEDGER]
            await poll(lambda: all_delivered(ledger), what="every recall notice delivered")
            return await tree_size(ledger)

    size = await start()
    assert size == entries_of(STORY)
    out = capsys.readouterr().out
    for party in STORY.parties:
        assert party.name in out
    for _, path in STORY.highlights:
        assert f"http://demo.example:8080/{path}" in out
    # The recall of lot A reached the retailer selling the blended product made from it.
    notice = out[out.index(f"recall notice for {scenario.RETAILER_2.name}: recall") :]
    assert "signature verified; proven in the log" in notice.splitlines()[1]
    assert await start() == size  # a restart: same anchor, same envelopes, all replays


async def all_delivered(ledger: Ledger) -> bool:
    """The notifier read the whole log, and every notice it planned was delivered."""
    async with ledger.pool.acquire() as conn:
        row = await conn.fetchrow(
            "SELECT (SELECT next_idx FROM notice_state) >= (SELECT size FROM log_head) AS read,"
            " (SELECT count(*) FROM recall_deliveries WHERE delivered_at IS NULL) AS waiting"
        )
    return row is not None and bool(row["read"]) and not row["waiting"]


async def test_the_lookup_shows_the_recall_downstream_and_the_destroyed_lot(
    client: Client,
) -> None:
    ledger = client.app[LEDGER]
    story = scenario.build(datetime.now(UTC))
    await scenario.load(story, ledger.pool, client.app[CAPTURE])
    size = await tree_size(ledger)
    await wait_for_index(ledger, size)
    await wait_for_checkpoint(ledger, size)
    paths = dict(story.highlights)
    status: dict[str, dict[str, Any]] = {}
    for label, path in paths.items():
        response = await client.get("/" + path, headers={"Accept": "application/json"})
        assert response.status == 200, (label, await response.text())
        status[label] = (await response.json())["status"]
    assert status["recalled can (lot A, sold in Jing'an)"]["recalled"] is True
    assert status["blended product made from lot A"]["recalled"] is True
    assert status["lot A: conformant at the port, recalled later"]["recalled"] is True
    assert status["lot B: non-conformant, destroyed"]["recalled"] is False


async def test_every_place_party_and_product_is_named_by_its_owner_in_both_languages(
    client: Client,
) -> None:
    ledger = client.app[LEDGER]
    story = scenario.build(datetime.now(UTC))
    await scenario.load(story, ledger.pool, client.app[CAPTURE])
    await wait_for_index(ledger, await tree_size(ledger))
    places = [f"414/{gln}" for gln in demo_parties.PLACES]
    parties = [
        f"417/{demo_parties.Company(p.prefixes[0]).gln('00000')}" for p in demo_parties.PARTIES
    ]
    products = [f"01/{gtin}" for gtin in demo_parties.PRODUCTS]
    async with ledger.pool.acquire() as conn:
        names = await read_names(conn, places + parties + products)
    for key in places + parties + products:
        assert set(names[key]["name"]) == {"en", "zh"}, key
        assert names[key]["by"] != "registry", key  # said by the owner, in the log
    assert names[f"414/{demo_parties.PORT}"]["name"]["zh"] == "洋山深水港查验场地"
