"""Typed keys for what the application holds (aiohttp AppKey)."""

from __future__ import annotations

from aiohttp import web

from traceledger.capture import CaptureService
from traceledger.history import HistoryService
from traceledger.ledger import Ledger
from traceledger.settings import Settings
from traceledger.trace import TraceService

SETTINGS = web.AppKey("settings", Settings)
LEDGER = web.AppKey("ledger", Ledger)
CAPTURE = web.AppKey("capture", CaptureService)
HISTORY = web.AppKey("history", HistoryService)
TRACE = web.AppKey("trace", TraceService)
OPERATOR_TOKEN = web.AppKey("operator_token", str)
