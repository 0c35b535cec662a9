"""Subscriptions to named queries, against real webhook receivers: exactly the matching
events in log order across a restart, retries with backoff, suspension, signatures,
proofs of inclusion, schedules and WebSocket streams."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from gateway.keys import LEDGER
from tests.epcis_samples import OTHER_GCP, PRODUCER_GCP
from tests.ingest.test_capture import register
from tests.inspect.test_named_queries import (
    auth,
    call,
    capture,
    create_query,
    receiving,
    shipping,
    token_for,
)
from tests.webhooks import Delivery, Receiver, poll
from traceledger.audit.pushed import verify_pushed
from traceledger.inspect.webhooks import SIGNATURE_HEADER, sign, signature_valid
from traceledger.settings import Settings

Client = TestClient[web.Request, web.Application]
SECRET = "13df38d8275b13f05704629e5f1cf3d45d6132d5"


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    async with Receiver() as started:
        yield started


def events_of(delivery: Delivery) -> list[dict[str, Any]]:
    doc = delivery.json()
    events: list[dict[str, Any]] = doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
    return events


def delivered_ids(receiver: Receiver) -> list[str]:
    return [e["eventID"] for d in receiver.received for e in events_of(d)]


async def wait_for_events(receiver: Receiver, count: int) -> None:
    async def enough() -> bool:
        return len(delivered_ids(receiver)) >= count

    await poll(enough, what=f"{count} delivered events")


async def subscribe(client: Client, token: str, query: str, **fields: Any) -> dict[str, Any]:
    made: dict[str, Any] = await call(
        client, "POST", f"/queries/{query}/subscriptions", token, fields, 201
    )
    return made


def check_delivery(delivery: Delivery, client: Client, secret: str | None = SECRET) -> None:
    """Signed with the subscriber's token, and every event proven in the log."""
    if secret is None:
        assert SIGNATURE_HEADER not in delivery.headers
    else:
        assert signature_valid(secret, delivery.body, delivery.headers.get(SIGNATURE_HEADER))
        assert not signature_valid(
            "another secret", delivery.body, delivery.headers[SIGNATURE_HEADER]
        )
    doc = delivery.json()
    report = verify_pushed(doc["traceledger:log"], events_of(delivery), client.app[LEDGER].verifier)
    assert len(report.verified) == len(events_of(delivery))


async def test_a_stream_subscription_gets_exactly_the_matching_events_in_order_across_a_restart(
    fast: Settings, receiver: Receiver
) -> None:
    expected: list[str] = []
    async with TestClient(TestServer(create_app(fast))) as client:
        dairy = await register(client, "Shanghai Dairy", [PRODUCER_GCP])
        token = await token_for(client, dairy)
        await create_query(client, token, "shipments", {"EQ_bizStep": ["shipping"]})
        made = await subscribe(
            client, token, "shipments", dest=receiver.url(), signatureToken=SECRET, stream=True
        )
        assert made["stream"] is True
        assert "signatureToken" not in made
        ids = await capture(client, dairy, shipping(1), receiving(2), shipping(3))
        expected += [ids[0], ids[2]]
        await wait_for_events(receiver, 2)
        for delivery in receiver.received:
            check_delivery(delivery, client)
        # The receiver goes down; two more matching events wait for it.
        receiver.failing = True
        ids = await capture(client, dairy, shipping(4), receiving(5), shipping(6))
        expected += [ids[0], ids[2]]
        await poll(refused_once(receiver), what="a refused delivery")
    # The ledger stopped with them undelivered; the receiver comes back, so does the ledger.
    receiver.failing = False
    async with TestClient(TestServer(create_app(fast))) as client:
        ids = await capture(client, dairy, receiving(7), shipping(8))
        expected.append(ids[1])
        await wait_for_events(receiver, 5)
        for delivery in receiver.received:
            check_delivery(delivery, client)
    assert delivered_ids(receiver) == expected
    indexes = [
        e["index"] for d in receiver.received for e in d.json()["traceledger:log"]["entries"]
    ]
    assert indexes == sorted(indexes)


def refused_once(receiver: Receiver) -> Any:
    async def check() -> bool:
        return receiver.refused > 0

    return check


async def test_a_receiver_that_fails_five_times_gets_the_event_on_the_sixth(
    fast: Settings,
) -> None:
    patient = dataclasses.replace(fast, webhook_max_attempts=10)
    async with (
        Receiver(fail=5) as receiver,
        TestClient(TestServer(create_app(patient))) as app,
    ):
        dairy = await register(app, "Shanghai Dairy", [PRODUCER_GCP])
        token = await token_for(app, dairy)
        await create_query(app, token, "shipments", {"EQ_bizStep": ["shipping"]})
        made = await subscribe(
            app, token, "shipments", dest=receiver.url(), signatureToken=SECRET, stream=True
        )
        (event_id,) = await capture(app, dairy, shipping(1))
        await wait_for_events(receiver, 1)
        assert receiver.refused == 5
        assert delivered_ids(receiver) == [event_id]
        check_delivery(receiver.received[0], app)
        path = f"/queries/shipments/subscriptions/{made['subscriptionID']}"
        state = await call(app, "GET", path, token)
        assert state["status"] == "active"
        assert state["failures"] == 0
        assert "lastNotifiedAt" in state


async def test_a_dead_endpoint_is_suspended_and_its_owner_sees_why(fast: Settings) -> None:
    # `fast` gives up after three attempts.
    async with (
        Receiver(failing=True) as dead,
        Receiver() as alive,
        TestClient(TestServer(create_app(fast))) as client,
    ):
        dairy = await register(client, "Shanghai Dairy", [PRODUCER_GCP])
        token = await token_for(client, dairy)
        await create_query(client, token, "shipments", {"EQ_bizStep": ["shipping"]})
        made = await subscribe(client, token, "shipments", dest=dead.url(), stream=True)
        await capture(client, dairy, shipping(1))
        path = f"/queries/shipments/subscriptions/{made['subscriptionID']}"

        async def suspended() -> dict[str, Any] | None:
            state: dict[str, Any] = await call(client, "GET", path, token)
            return state if state["status"] == "suspended" else None

        state = await poll(suspended, what="the suspension")
        assert state["failures"] == 3
        assert state["lastError"] == "HTTP 503"
        assert dead.refused == 3
        listed = await call(client, "GET", "/queries/shipments/subscriptions", token)
        assert [s["status"] for s in listed] == ["suspended"]
        # Another subscriber keeps getting events; the suspended one is not tried again.
        await subscribe(client, token, "shipments", dest=alive.url(), stream=True)
        (later,) = await capture(client, dairy, shipping(2))
        await wait_for_events(alive, 1)
        assert delivered_ids(alive) == [later]
        assert dead.refused == 3
        check_delivery(alive.received[0], client, secret=None)
        # The owner removes it.
        response = await client.delete(path, headers=auth(token))
        assert response.status == 204
        await call(client, "GET", path, token, status=404)


async def test_subscriptions_deliver_only_what_the_subscriber_may_see(
    app: Client, receiver: Receiver
) -> None:
    dairy = await register(app, "Shanghai Dairy", [PRODUCER_GCP])
    other = await register(app, "Berlin Foods", [OTHER_GCP])
    token = await token_for(app, other)
    await create_query(app, token, "everything", {})
    await subscribe(app, token, "everything", dest=receiver.url(), stream=True)
    await capture(app, dairy, shipping(1), receiving(2))
    (theirs,) = await capture(app, other, shipping(3, OTHER_GCP))
    await wait_for_events(receiver, 1)
    assert delivered_ids(receiver) == [theirs]


async def test_subscription_requests_are_checked(app: Client, receiver: Receiver) -> None:
    dairy = await register(app, "Shanghai Dairy", [PRODUCER_GCP])
    token = await token_for(app, dairy)
    await create_query(app, token, "shipments", {"EQ_bizStep": ["shipping"]})
    bad: list[dict[str, Any]] = [
        {"dest": receiver.url()},  # neither stream nor schedule
        {"dest": receiver.url(), "stream": True, "schedule": {"hour": "1"}},
        {"dest": "http://example.com/hook", "stream": True},  # plain http elsewhere
        {"dest": "https://user:pw@example.com/hook", "stream": True},
        {"dest": "ftp://example.com/hook", "stream": True},
        {"dest": receiver.url(), "schedule": {"hour": "25"}},
        {"dest": receiver.url(), "schedule": {"dayOfMonth": "31", "month": "2"}},
        {"dest": receiver.url(), "schedule": {"fortnight": "1"}},
        {"dest": receiver.url(), "stream": True, "signatureToken": ""},
        {"dest": receiver.url(), "stream": True, "colour": "red"},
    ]
    for body in bad:
        problem = await call(app, "POST", "/queries/shipments/subscriptions", token, body, 400)
        assert problem["type"] == "/problems/invalid-subscription", body
    await call(
        app, "POST", "/queries/nope/subscriptions", token, {"dest": receiver.url()}, status=404
    )
    made = await subscribe(app, token, "shipments", dest="https://example.com/hook", stream=True)
    assert made["dest"] == "https://example.com/hook"


async def test_a_scheduled_subscription_reports_each_run_even_when_empty(
    app: Client, receiver: Receiver
) -> None:
    dairy = await register(app, "Shanghai Dairy", [PRODUCER_GCP])
    token = await token_for(app, dairy)
    await create_query(app, token, "shipments", {"EQ_bizStep": ["shipping"]})
    made = await subscribe(
        app,
        token,
        "shipments",
        dest=receiver.url(),
        signatureToken=SECRET,
        schedule={"second": "0/1"},
        reportIfEmpty=True,
    )
    assert made["schedule"] == {"second": "0/1"}
    assert made["reportIfEmpty"] is True
    await receiver.wait_for(1)
    assert events_of(receiver.received[0]) == []
    check_delivery(receiver.received[0], app)
    (event_id,) = await capture(app, dairy, shipping(1))
    await wait_for_events(receiver, 1)
    assert delivered_ids(receiver) == [event_id]


async def test_a_websocket_streams_new_matching_events(app: Client) -> None:
    dairy = await register(app, "Shanghai Dairy", [PRODUCER_GCP])
    token = await token_for(app, dairy)
    await create_query(app, token, "shipments", {"EQ_bizStep": ["shipping"]})
    refused = await app.get(
        "/queries/shipments/events?stream=true&hour=1",
        headers={**auth(token), "Upgrade": "websocket", "Connection": "Upgrade"},
    )
    assert refused.status == 400
    async with app.ws_connect("/queries/shipments/events?stream=true", headers=auth(token)) as ws:
        ids = await capture(app, dairy, receiving(1), shipping(2))
        message = await ws.receive(timeout=30)
        doc = json.loads(message.data)
        events = doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
        assert [e["eventID"] for e in events] == [ids[1]]
        verify_pushed(doc["traceledger:log"], events, app.app[LEDGER].verifier)
        # Deleting the query ends its streams.
        assert (await app.delete("/queries/shipments", headers=auth(token))).status == 204
        closing = await ws.receive(timeout=30)
        assert closing.type == aiohttp.WSMsgType.CLOSE


def test_the_signature_is_hmac_sha256_of_the_body_with_the_token() -> None:
    import hashlib
    import hmac

    body = b'{"type":"EPCISQueryDocument"}'
    expected = hmac.new(SECRET.encode(), body, hashlib.sha256).hexdigest()
    assert sign(SECRET, body) == f"sha256={expected}"
    assert signature_valid(SECRET, body, f"sha256={expected}")
    assert not signature_valid(SECRET, body + b" ", f"sha256={expected}")
    assert not signature_valid(SECRET, body, None)


async def test_a_websocket_on_a_schedule_reports_each_run(app: Client) -> None:
    dairy = await register(app, "Shanghai Dairy", [PRODUCER_GCP])
    token = await token_for(app, dairy)
    await create_query(app, token, "shipments", {"EQ_bizStep": ["shipping"]})
    path = "/queries/shipments/events?second=0/1&reportIfEmpty=true"
    async with app.ws_connect(path, headers=auth(token)) as ws:
        first = json.loads((await ws.receive(timeout=30)).data)
        assert first["epcisBody"]["queryResults"]["resultsBody"]["eventList"] == []
        (event_id,) = await capture(app, dairy, shipping(1))
        while True:  # each second reports, empty until the event is in the log
            doc = json.loads((await ws.receive(timeout=30)).data)
            events = doc["epcisBody"]["queryResults"]["resultsBody"]["eventList"]
            if events:
                break
        assert [e["eventID"] for e in events] == [event_id]
