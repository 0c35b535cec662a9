"""The EPCIS 2.0 REST binding's named queries and subscriptions (`/queries`).

`POST /queries` stores a query written in the EPCIS query language; `GET
/queries/{name}/events` answers it as an EPCISQueryDocument, a page at a time, or as a
live WebSocket stream; `POST /queries/{name}/subscriptions` registers a webhook that the
notifier pushes results to. Any token may use them (enterprises see only what they may
see); every request by a token holder is audited.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from aiohttp import web

from gateway.auth import PRIVATE, with_access
from gateway.keys import LEDGER, READ_POOL
from gateway.params import public_base, read_limited
from gateway.problems import BAD_REQUEST, UNSUPPORTED_MEDIA, ProblemError
from gateway.routes.query_stream import stream_events, wants_websocket
from traceledger.accounts.tokens import AccessToken
from traceledger.errors import QueryParameterError
from traceledger.ingest.envelopes import load_json
from traceledger.inspect.named_queries import (
    NamedQuery,
    Owner,
    check_name,
    create_query,
    delete_query,
    find_query,
    list_queries,
)
from traceledger.inspect.query import PAGING, parse_query
from traceledger.inspect.query_document import query_document
from traceledger.inspect.query_sql import QueryService
from traceledger.inspect.subscriptions import (
    check_request,
    create_subscription,
    delete_subscription,
    find_subscription,
    list_subscriptions,
)

routes = web.RouteTableDef()

BODY_LIMIT = 64 * 1024  # a query definition or a subscription is a few hundred bytes
_EPCIS = {"GS1-EPCIS-Version": "2.0.0", "GS1-CBV-Version": "2.0.0"}


def owner_of(access: AccessToken) -> Owner:
    return Owner(access.id, None if access.is_authority else access.enterprise_id)


async def json_object(request: web.Request) -> dict[str, Any]:
    if request.content_type not in ("application/json", "application/ld+json"):
        raise ProblemError(UNSUPPORTED_MEDIA, "send the body as application/json")
    body = load_json(await read_limited(request, BODY_LIMIT), "body")
    if not isinstance(body, dict):
        raise ProblemError(BAD_REQUEST, "the body must be a JSON object")
    return body


async def _named(request: web.Request, access: AccessToken) -> NamedQuery:
    async with request.app[LEDGER].pool.acquire() as conn:
        return await find_query(conn, owner_of(access), request.match_info["name"])


def _json(body: object, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    return web.json_response(body, status=status, headers={**PRIVATE, **_EPCIS, **(headers or {})})


@routes.post("/queries")
async def create(request: web.Request) -> web.StreamResponse:
    async def work(access: AccessToken) -> web.Response:
        body = await json_object(request)
        if "query" not in body:
            raise QueryParameterError("query", "give the query's definition as 'query'")
        async with request.app[LEDGER].pool.acquire() as conn:
            named = await create_query(conn, owner_of(access), body.get("name"), body["query"])
        return _json(named.to_json(), 201, {"Location": f"/queries/{named.name}"})

    return await with_access(request, work)


@routes.get("/queries")
async def list_all(request: web.Request) -> web.StreamResponse:
    async def work(access: AccessToken) -> web.Response:
        unknown = sorted(set(request.query) - set(PAGING))
        if unknown:
            raise QueryParameterError(unknown[0][:80], "GET /queries takes only perPage")
        # The page token is the last name listed.
        after = request.query.get("nextPageToken")
        per_page = parse_query({"perPage": request.query.getall("perPage", [])}).per_page
        async with request.app[LEDGER].pool.acquire() as conn:
            found, more = await list_queries(
                conn, owner_of(access), check_name(after) if after else None, per_page
            )
        headers = {}
        if more:
            following = request.rel_url.update_query(nextPageToken=found[-1].name)
            headers["Link"] = f'<{public_base(request)}{following}>; rel="next"'
        return _json([q.to_json() for q in found], headers=headers)

    return await with_access(request, work)


@routes.get("/queries/{name}")
async def show(request: web.Request) -> web.StreamResponse:
    async def work(access: AccessToken) -> web.Response:
        return _json((await _named(request, access)).to_json())

    return await with_access(request, work)


@routes.delete("/queries/{name}")
async def delete(request: web.Request) -> web.StreamResponse:
    async def work(access: AccessToken) -> web.Response:
        async with request.app[LEDGER].pool.acquire() as conn:
            await delete_query(conn, owner_of(access), request.match_info["name"])
        return web.Response(status=204, headers=PRIVATE)

    return await with_access(request, work)


@routes.get("/queries/{name}/events")
async def events(request: web.Request) -> web.StreamResponse:
    async def work(access: AccessToken) -> web.StreamResponse:
        named = await _named(request, access)
        service = QueryService(request.app[READ_POOL])
        viewer = await service.viewer(owner_of(access).enterprise_id)
        if wants_websocket(request):
            return await stream_events(request, named, viewer)
        params = {n: request.query.getall(n) for n in request.query}
        unknown = sorted(set(params) - set(PAGING))
        if unknown:
            raise QueryParameterError(
                unknown[0][:80], "a named query's results take only perPage and nextPageToken"
            )
        paging = parse_query(params)
        query = dataclasses.replace(named.query, per_page=paging.per_page, after=paging.after)
        page = await service.events(query, viewer)
        headers = {}
        if page.next_page_token is not None:
            following = request.rel_url.update_query(nextPageToken=page.next_page_token)
            headers["Link"] = f'<{public_base(request)}{following}>; rel="next"'
        return web.Response(
            body=query_document(named.name, page.events),
            content_type="application/json",
            headers={**PRIVATE, **_EPCIS, **headers},
        )

    return await with_access(request, work)


@routes.post("/queries/{name}/subscriptions")
async def subscribe(request: web.Request) -> web.StreamResponse:
    async def work(access: AccessToken) -> web.Response:
        named = await _named(request, access)
        wanted = check_request(await json_object(request))
        async with request.app[LEDGER].pool.acquire() as conn:
            made = await create_subscription(conn, named, wanted)
        where = f"/queries/{named.name}/subscriptions/{made['subscriptionID']}"
        return _json(made, 201, {"Location": where})

    return await with_access(request, work)


@routes.get("/queries/{name}/subscriptions")
async def subscriptions(request: web.Request) -> web.StreamResponse:
    async def work(access: AccessToken) -> web.Response:
        named = await _named(request, access)
        async with request.app[LEDGER].pool.acquire() as conn:
            return _json(await list_subscriptions(conn, named))

    return await with_access(request, work)


@routes.get("/queries/{name}/subscriptions/{id}")
async def subscription(request: web.Request) -> web.StreamResponse:
    async def work(access: AccessToken) -> web.Response:
        named = await _named(request, access)
        async with request.app[LEDGER].pool.acquire() as conn:
            return _json(await find_subscription(conn, named, request.match_info["id"]))

    return await with_access(request, work)


@routes.delete("/queries/{name}/subscriptions/{id}")
async def unsubscribe(request: web.Request) -> web.StreamResponse:
    async def work(access: AccessToken) -> web.Response:
        named = await _named(request, access)
        async with request.app[LEDGER].pool.acquire() as conn:
            await delete_subscription(conn, named, request.match_info["id"])
        return web.Response(status=204, headers=PRIVATE)

    return await with_access(request, work)
