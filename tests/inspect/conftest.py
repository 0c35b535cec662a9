"""Fixtures for the notifier's tests: a service whose webhook retries come milliseconds
apart (and give up after three attempts), so a test sees many of them."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.app import create_app
from traceledger.settings import Settings


@pytest.fixture
def fast(settings: Settings) -> Settings:
    return dataclasses.replace(
        settings,
        notify_interval=0.02,
        webhook_retry_base=0.005,
        webhook_retry_max=0.02,
        webhook_max_attempts=3,
        webhook_timeout=5,
    )


@pytest.fixture
async def app(fast: Settings) -> AsyncIterator[TestClient[web.Request, web.Application]]:
    async with TestClient(TestServer(create_app(fast))) as client:
        yield client
