"""Admin API for the enterprise registry, guarded by the operator's bearer token."""

from __future__ import annotations

from typing import Any

from aiohttp import web

from gateway.keys import LEDGER, OPERATOR_TOKEN
from gateway.params import parse_int, read_limited
from gateway.problems import BAD_REQUEST, UNAUTHORIZED, ProblemError
from traceledger.accounts import registry
from traceledger.accounts.tokens import same_token
from traceledger.ingest.envelopes import load_json
from traceledger.inspect.recall_notices import remove_endpoint, set_endpoint
from traceledger.standards.dsse import load_public_key_pem

routes = web.RouteTableDef()


# Registry requests are a name, a few prefixes and a PEM key.
ADMIN_BODY_LIMIT = 64 * 1024


def require_operator(request: web.Request) -> None:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not same_token(token.strip(), request.app[OPERATOR_TOKEN]):
        raise ProblemError(
            UNAUTHORIZED,
            "send the operator token as 'Authorization: Bearer <token>' "
            "(it is in <home>/operator-token or TRACELEDGER_OPERATOR_TOKEN)",
            headers={"WWW-Authenticate": 'Bearer realm="traceledger-admin"'},
        )


async def json_object(request: web.Request) -> dict[str, Any]:
    body = load_json(await read_limited(request, ADMIN_BODY_LIMIT), "body")
    if not isinstance(body, dict):
        raise ProblemError(BAD_REQUEST, "the body must be a JSON object")
    return body


def _field(body: dict[str, Any], name: str, kind: type, required: bool = True) -> Any:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, kind) or isinstance(value, bool):
        raise ProblemError(BAD_REQUEST, f"{name!r} must be a {kind.__name__}", parameter=name)
    return value


@routes.post("/v1/admin/enterprises")
async def add_enterprise(request: web.Request) -> web.Response:
    require_operator(request)
    body = await json_object(request)
    gcp = _field(body, "gcp", list)
    if not all(isinstance(p, str) for p in gcp):
        raise ProblemError(BAD_REQUEST, "'gcp' must be a list of strings", parameter="gcp")
    rate = _field(body, "rateLimit", (int, float), required=False)  # type: ignore[arg-type]
    key = load_public_key_pem(_field(body, "publicKey", str).encode())
    async with request.app[LEDGER].pool.acquire() as conn:
        ent_id, key_id = await registry.add_enterprise(
            conn,
            _field(body, "name", str),
            gcp,
            key,
            role=_field(body, "role", str, required=False) or "enterprise",
            rate_limit=float(rate) if rate is not None else None,
        )
    return web.json_response({"id": ent_id, "keyId": key_id}, status=201)


@routes.get("/v1/admin/enterprises")
async def list_enterprises(request: web.Request) -> web.Response:
    require_operator(request)
    async with request.app[LEDGER].pool.acquire() as conn:
        found = await registry.list_enterprises(conn)
    return web.json_response({"enterprises": [e.to_json() for e in found]})


@routes.post("/v1/admin/enterprises/{id}/keys")
async def add_key(request: web.Request) -> web.Response:
    require_operator(request)
    enterprise_id = parse_int(request.match_info["id"], "id")
    key = load_public_key_pem(_field(await json_object(request), "publicKey", str).encode())
    async with request.app[LEDGER].pool.acquire() as conn:
        key_id = await registry.add_key(conn, enterprise_id, key)
    return web.json_response({"keyId": key_id}, status=201)


@routes.post("/v1/admin/enterprises/{id}/delegations")
async def delegate(request: web.Request) -> web.Response:
    require_operator(request)
    owner_id = parse_int(request.match_info["id"], "id")
    body = await json_object(request)
    to_id = _field(body, "to", int)
    gcp = _field(body, "gcp", str, required=False)
    async with request.app[LEDGER].pool.acquire() as conn:
        delegation = await registry.delegate(conn, owner_id, to_id, gcp)
    return web.json_response(delegation.to_json(), status=201)


@routes.post("/v1/admin/keys/{key_id}/revoke")
async def revoke_key(request: web.Request) -> web.Response:
    require_operator(request)
    key_id = request.match_info["key_id"]
    async with request.app[LEDGER].pool.acquire() as conn:
        revoked = await registry.revoke_key(conn, key_id)
    return web.json_response({"keyId": key_id, "revokedAt": revoked.isoformat()})


@routes.post("/v1/admin/enterprises/{id}/notify")
async def set_recall_endpoint(request: web.Request) -> web.Response:
    """Where the enterprise gets recall notices; the answer holds the secret that signs
    them (given as `secret`, or generated), shown this once."""
    require_operator(request)
    enterprise_id = parse_int(request.match_info["id"], "id")
    body = await json_object(request)
    url = _field(body, "url", str)
    async with request.app[LEDGER].pool.acquire() as conn:
        secret = await set_endpoint(
            conn, enterprise_id, url, _field(body, "secret", str, required=False)
        )
    return web.json_response({"enterpriseId": enterprise_id, "url": url, "secret": secret})


@routes.delete("/v1/admin/enterprises/{id}/notify")
async def remove_recall_endpoint(request: web.Request) -> web.Response:
    require_operator(request)
    enterprise_id = parse_int(request.match_info["id"], "id")
    async with request.app[LEDGER].pool.acquire() as conn:
        await remove_endpoint(conn, enterprise_id)
    return web.Response(status=204)
