"""The EPCIS 2.0 query interface and lot exports, for token holders.

`GET /v1/events` answers the EPCIS 2.0 REST binding's simple event query parameters;
`GET /v1/export/{digital link path}.jsonld` and `.csv` export a lot's trace record.
Inspectors and regulators see everything, an enterprise token its own events and the
events on its goods. Every request by a token holder lands in the audit trail, refusals
included.
"""

from __future__ import annotations

import json
import re

from aiohttp import web

from gateway.auth import PRIVATE, with_access
from gateway.keys import HISTORY, LEDGER, READ_POOL
from gateway.params import digital_link_key, public_base
from gateway.problems import FORBIDDEN, ProblemError
from traceledger.accounts.tokens import AccessToken
from traceledger.inspect.export import (
    ExportService,
    LotExport,
    csv_text,
    epcis_document,
    may_export,
)
from traceledger.inspect.query import parse_query
from traceledger.inspect.query_sql import QueryService
from traceledger.inspect.visibility import Viewer
from traceledger.standards.gs1 import GS1Key

routes = web.RouteTableDef()

EXPORT_PREFIX = "/v1/export/"
_FILENAME_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")


async def _viewer(request: web.Request, access: AccessToken) -> Viewer:
    service = QueryService(request.app[READ_POOL])
    return await service.viewer(None if access.is_authority else access.enterprise_id)


@routes.get("/v1/events")
async def events(request: web.Request) -> web.StreamResponse:
    async def work(access: AccessToken) -> web.Response:
        query = parse_query({name: request.query.getall(name) for name in request.query})
        service = QueryService(request.app[READ_POOL])
        page = await service.events(query, await _viewer(request, access))
        token = page.next_page_token
        body = b'{"events":[%s],"nextPageToken":%s}' % (
            b",".join(page.events),
            json.dumps(token).encode(),
        )
        headers = dict(PRIVATE)
        if token is not None:
            following = request.rel_url.update_query(nextPageToken=token)
            headers["Link"] = f'<{public_base(request)}{following}>; rel="next"'
        return web.Response(body=body, content_type="application/json", headers=headers)

    return await with_access(request, work)


async def _collect(request: web.Request, access: AccessToken, suffix: str) -> LotExport:
    key = digital_link_key(request, EXPORT_PREFIX, suffix)
    viewer = await _viewer(request, access)
    if not may_export(viewer, key):
        raise ProblemError(
            FORBIDDEN,
            f"{key.canonical()} is not under your company prefixes; only its owner, "
            "inspectors and regulators may export it",
        )
    reader = request.app[LEDGER].reader
    service = ExportService(request.app[READ_POOL], reader, request.app[HISTORY])
    return await service.collect(key, viewer)


def _attachment(key: GS1Key, extension: str) -> dict[str, str]:
    name = _FILENAME_UNSAFE.sub("_", key.canonical().replace("/", "_")).strip("_")
    return {**PRIVATE, "Content-Disposition": f'attachment; filename="{name}.{extension}"'}


@routes.get(EXPORT_PREFIX + "{path:.+}.jsonld")
async def export_jsonld(request: web.Request) -> web.StreamResponse:
    async def work(access: AccessToken) -> web.Response:
        export = await _collect(request, access, ".jsonld")
        return web.Response(
            text=json.dumps(epcis_document(export), ensure_ascii=False),
            content_type="application/ld+json",
            headers=_attachment(export.key, "jsonld"),
        )

    return await with_access(request, work)


@routes.get(EXPORT_PREFIX + "{path:.+}.csv")
async def export_csv(request: web.Request) -> web.StreamResponse:
    async def work(access: AccessToken) -> web.Response:
        export = await _collect(request, access, ".csv")
        headers = _attachment(export.key, "csv")
        return web.Response(
            text=csv_text(export),
            content_type="text/csv",
            charset="utf-8",
            headers=headers,
        )

    return await with_access(request, work)
