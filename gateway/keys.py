"""Typed keys for what the application holds (aiohttp AppKey)."""

from __future__ import annotations

from aiohttp import web

from traceledger.ledger import Ledger
from traceledger.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
LEDGER = web.AppKey("ledger", Ledger)
