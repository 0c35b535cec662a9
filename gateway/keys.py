"""Typed keys for what the application holds (aiohttp AppKey)."""

from __future__ import annotations

import asyncpg
from aiohttp import web

from traceledger.ingest.capture import CaptureService
from traceledger.ingest.catalogs.publishing import CatalogPublisher
from traceledger.inspect.trace import TraceService
from traceledger.ledger import Ledger
from traceledger.lookup.history import HistoryService
from traceledger.lookup.names import NameBook
from traceledger.settings import Settings

SETTINGS = web.AppKey("settings", Settings)
LEDGER = web.AppKey("ledger", Ledger)
# Where read-only queries go: READ_DATABASE_URL (a replica) or else the ledger's own pool.
# Writes, including the audit trail of lookups, always use LEDGER's pool (the primary).
READ_POOL = web.AppKey("read_pool", asyncpg.Pool)
CAPTURE = web.AppKey("capture", CaptureService)
CATALOG_PUBLISHER = web.AppKey("catalog_publisher", CatalogPublisher)
HISTORY = web.AppKey("history", HistoryService)
TRACE = web.AppKey("trace", TraceService)
# Names of places, parties and products (master data and the registry).
NAMES = web.AppKey("names", NameBook)
OPERATOR_TOKEN = web.AppKey("operator_token", str)
