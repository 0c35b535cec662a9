"""Operating the service: /metrics after real traffic, request ids, JSON logs, probes."""

from __future__ import annotations

import io
import json
import logging
import re
import socket
from collections.abc import Iterator
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway import observability
from gateway.app import create_app
from gateway.keys import LEDGER
from tests.conftest import poll, settled, wait_for_checkpoint
from tests.epcis_samples import PRODUCER_GCP, document, object_event
from tests.ingest.test_capture import post, register
from traceledger.log.sequencer import Entry
from traceledger.settings import Settings
from traceledger.store.leader import stall_limit
from traceledger.tlog.leaf import sha256

Client = TestClient[web.Request, web.Application]


def sample(text: str, name: str, **labels: str) -> float | None:
    """The value of one sample in Prometheus text, or None if absent."""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        match = re.fullmatch(r"([a-zA-Z_:][\w:]*)(?:\{(.*)\})? (\S+)", line)
        if match is None or match[1] != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match[2] or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match[3])
    return None


async def readyz_json(client: Client) -> tuple[int, dict[str, Any]]:
    response = await client.get("/readyz")
    return response.status, await response.json(content_type=None)


async def metrics_text(client: Client) -> str:
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    return await response.text()


async def test_metrics_after_real_traffic(client: Client) -> None:
    producer = await register(client, "Shanghai Dairy", [PRODUCER_GCP])
    status, receipt = await post(client, document(object_event(1), object_event(2)), producer)
    assert status == 201, receipt
    await wait_for_checkpoint(client.app[LEDGER], 2)
    for _ in range(3):
        assert (await client.get("/v1/entries/0")).status == 200
    assert (await client.get("/v1/log")).status == 200
    assert (await client.get("/no/such/thing")).status == 404

    text = await metrics_text(client)
    requests = "traceledger_http_requests_total"
    assert sample(text, requests, route="/v1/entries/{index}", status="200") == 3
    assert sample(text, requests, route="/v1/log", status="200", method="GET") == 1
    assert sample(text, requests, route="/v1/capture", status="201", method="POST") == 1
    assert sample(text, requests, route="unmatched", status="404") == 1
    assert (
        sample(
            text,
            "traceledger_http_request_duration_seconds_count",
            route="/v1/entries/{index}",
            status="200",
        )
        == 3
    )
    assert (sample(text, "traceledger_events_appended_total") or 0) >= 2
    assert (sample(text, "traceledger_sequencer_batch_size_count") or 0) >= 1
    assert (sample(text, "traceledger_sequencer_batch_size_sum") or 0) >= 2
    assert sample(text, "traceledger_sequencer_batch_size_bucket", le="+Inf") is not None
    assert sample(text, "traceledger_sequencing_lag_entries") == 0
    assert sample(text, "traceledger_integration_lag_entries") is not None
    assert sample(text, "traceledger_prebuild_lag_entries") is not None
    age = sample(text, "traceledger_checkpoint_age_seconds")
    assert age is not None
    assert 0 <= age < 60
    assert sample(text, "traceledger_log_size_entries") == 2
    assert (sample(text, "traceledger_db_pool_size") or 0) >= 1
    assert sample(text, "traceledger_db_pool_idle") is not None
    assert sample(text, "traceledger_db_pool_max") == client.app[LEDGER].pool.get_max_size()
    assert sample(text, "traceledger_metrics_db_up") == 1
    assert sample(text, "traceledger_integrator_leading") == 1


async def test_each_app_has_its_own_registry(client: Client) -> None:
    # Nothing lands in prometheus_client's process-global default registry.
    from prometheus_client import REGISTRY

    assert REGISTRY.get_sample_value("traceledger_http_requests_total") is None
    assert client.app[observability.METRICS].registry is not REGISTRY


async def test_request_id_is_echoed_on_success_and_on_problems(client: Client) -> None:
    await wait_for_checkpoint(client.app[LEDGER], 0)
    ok = await client.get("/v1/log", headers={"X-Request-ID": "trace-abc-123"})
    assert ok.status == 200
    assert ok.headers["X-Request-ID"] == "trace-abc-123"

    missing = await client.get("/v1/entries/99999", headers={"X-Request-ID": "lookup 7"})
    assert missing.status >= 400
    assert missing.headers["Content-Type"].startswith("application/problem+json")
    assert missing.headers["X-Request-ID"] == "lookup 7"

    unmatched = await client.get("/nowhere", headers={"X-Request-ID": "r-404"})
    assert unmatched.status == 404
    assert unmatched.headers["X-Request-ID"] == "r-404"


@pytest.mark.parametrize("given", [None, "", "x" * 129, "tab\there", "\u00fcnicode"])
async def test_a_request_id_is_generated_when_absent_or_invalid(
    client: Client, given: str | None
) -> None:
    headers = {} if given is None else {"X-Request-ID": given}
    first = await client.get("/healthz", headers=headers)
    second = await client.get("/healthz", headers=headers)
    ids = {first.headers["X-Request-ID"], second.headers["X-Request-ID"]}
    assert len(ids) == 2
    assert all(re.fullmatch(r"[0-9a-f]{32}", i) for i in ids)


async def test_internal_errors_carry_the_request_id(settings: Settings) -> None:
    async def boom(request: web.Request) -> web.Response:
        raise RuntimeError("kaput")

    # The service's own app (middlewares, signals, metrics), plus a handler that fails.
    app = create_app(settings)
    app.router.add_get("/boom", boom)
    async with TestClient(TestServer(app)) as other:
        response = await other.get("/boom", headers={"X-Request-ID": "boom-1"})
        assert response.status == 500
        assert response.headers["X-Request-ID"] == "boom-1"
        assert (await response.json(content_type=None))["type"] == "/problems/internal"
    registry = app[observability.METRICS].registry
    labels = {"method": "GET", "route": "/boom", "status": "500"}
    assert registry.get_sample_value("traceledger_http_requests_total", labels) == 1


async def test_healthz(client: Client) -> None:
    response = await client.get("/healthz")
    assert response.status == 200
    assert await response.json() == {"status": "ok"}


async def test_readyz_is_ready_with_a_live_database(client: Client) -> None:
    await wait_for_checkpoint(client.app[LEDGER], 0)
    response = await client.get("/readyz")
    assert response.status == 200, await response.text()
    body = await response.json()
    assert (body["status"], body["role"]) == ("ready", "all")
    assert body["workers"]["integrator"]["state"] == "leading"


def dead_dsn() -> str:
    """A loopback port nobody listens on: connections are refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"postgresql://postgres@127.0.0.1:{port}/postgres"


async def test_readyz_is_503_when_the_database_is_unreachable(
    client: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A real pool at a dead address (min_size 0 connects lazily); Ledger.open still
    # closes its own pool, so swapping the attribute is safe for teardown.
    dead = await asyncpg.create_pool(dead_dsn(), min_size=0, max_size=1)
    try:
        monkeypatch.setattr(client.app[LEDGER], "pool", dead)
        response = await client.get("/readyz", headers={"X-Request-ID": "ready-1"})
        assert response.status == 503
        assert response.headers["Content-Type"].startswith("application/problem+json")
        assert response.headers["X-Request-ID"] == "ready-1"
        problem = await response.json(content_type=None)
        assert problem["type"] == "/problems/not-ready"
        assert "database" in problem["detail"]
        # /healthz only says the process is alive.
        assert (await client.get("/healthz")).status == 200
        # /metrics still answers, and says the database could not be queried.
        text = await metrics_text(client)
        assert sample(text, "traceledger_metrics_db_up") == 0
    finally:
        await dead.close()


async def test_readyz_follows_the_real_stall_rule(client: Client, database_url: str) -> None:
    """A round blocked in PostgreSQL is a stall once it has made no progress for
    max(10 x interval, 10 s): here 10 s, with a 0.05 s checkpoint interval."""
    settings = client.app[LEDGER].settings
    limit = stall_limit(settings.checkpoint_interval)
    assert limit == 10.0
    assert stall_limit(2.0) == 20.0
    ledger = client.app[LEDGER]
    await settled(ledger, 0)
    blocker = await asyncpg.connect(database_url)
    try:
        async with blocker.transaction():
            # The integrator reads the tiles every round that has leaves to fold in.
            await blocker.execute("LOCK TABLE tiles IN ACCESS EXCLUSIVE MODE")
            await ledger.sequencer.append([Entry(sha256(b"blocked"), b"blocked")])

            async def stalled() -> dict[str, Any] | None:
                status, body = await readyz_json(client)
                integrator = body["workers"]["integrator"]
                if status == 200:
                    return None
                # Never before the limit: the round is slow, not stalled, until then.
                assert integrator["lastSuccessAgeSeconds"] >= limit, body
                return body

            body = await poll("a stalled integrator", stalled, within=limit + 60)
            assert "integrator is stalled" in body["detail"]
            assert f"(limit {limit:g}s)" in body["detail"]
        await settled(ledger, 1)
        status, body = await readyz_json(client)
        assert status == 200, body
    finally:
        await blocker.close()


@pytest.fixture
def json_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    root_level = logging.getLogger().level
    observability.configure_logging(logging.INFO, stream)
    try:
        yield stream
    finally:
        observability.unconfigure_logging()
        logging.getLogger().setLevel(root_level)


async def test_access_log_is_one_json_line_with_the_request_id(
    client: Client, json_log: io.StringIO
) -> None:
    response = await client.get("/v1/entries/0", headers={"X-Request-ID": "log-me-42"})
    assert response.headers["X-Request-ID"] == "log-me-42"
    logging.getLogger("asyncpg.test").warning("foreign %s", "record")

    records = [json.loads(line) for line in json_log.getvalue().splitlines() if line.strip()]
    access = [r for r in records if r.get("event") == "request"]
    assert len(access) == 1, records
    line = access[0]
    assert line["request_id"] == "log-me-42"
    assert line["method"] == "GET"
    assert line["route"] == "/v1/entries/{index}"
    assert line["status"] == response.status
    assert isinstance(line["duration_ms"], float)
    assert line["logger"] == "traceledger.access"
    # Other libraries' stdlib logging comes out as JSON too.
    assert any(r.get("event") == "foreign record" and r["level"] == "warning" for r in records)
