"""The log's read side over real HTTP, audited the way stock tlog-tiles tooling would."""

from __future__ import annotations

import base64
import hashlib
from typing import Any

import asyncpg
import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer

from gateway.keys import LEDGER
from gateway.problems import problem_middleware
from tests.conftest import wait_for_checkpoint
from traceledger.accounts import tokens
from traceledger.log.sequencer import Entry
from traceledger.tlog import merkle
from traceledger.tlog.checkpoint import open_checkpoint
from traceledger.tlog.leaf import Leaf
from traceledger.tlog.note import Verifier
from traceledger.tlog.tiles import TILE_WIDTH, tile_path

Client = TestClient[web.Request, web.Application]


async def fill(client: Client, count: int) -> None:
    ledger = client.app[LEDGER]
    payloads = [f"item {i}".encode() for i in range(count)]
    for start in range(0, count, 500):
        await ledger.sequencer.append(
            [Entry(hashlib.sha256(p).digest(), p, b"env") for p in payloads[start : start + 500]]
        )
    await wait_for_checkpoint(ledger, count)


async def get_json(client: Client, path: str, status: int = 200) -> dict[str, Any]:
    response = await client.get(path)
    assert response.status == status, await response.text()
    body: dict[str, Any] = await response.json(content_type=None)
    return body


async def test_log_info_names_origin_key_size_and_root(client: Client) -> None:
    await fill(client, 3)
    info = await get_json(client, "/v1/log")
    assert info["origin"] == "test.traceledger.localhost/log"
    verifier = Verifier.parse(str(info["verifierKey"]))
    assert verifier.name == info["origin"]
    assert info["treeSize"] == 3
    assert len(base64.b64decode(str(info["rootHash"]))) == 32


async def test_checkpoint_is_a_short_lived_signed_note(client: Client) -> None:
    await fill(client, 5)
    info = await get_json(client, "/v1/log")
    response = await client.get("/checkpoint")
    assert response.headers["Content-Type"] == "text/plain; charset=utf-8"
    assert "max-age=2" in response.headers["Cache-Control"]
    cp = open_checkpoint(await response.text(), Verifier.parse(str(info["verifierKey"])))
    assert cp.size == 5


async def test_tiles_and_entry_bundles_reproduce_the_checkpoint_root(client: Client) -> None:
    """An auditor with only the verifier key, /checkpoint and the tiles recomputes the root."""
    size = 70_000 // 100  # two full level-0 tiles plus a partial one
    await fill(client, size)
    vkey = Verifier.parse(str((await get_json(client, "/v1/log"))["verifierKey"]))
    cp = open_checkpoint(await (await client.get("/checkpoint")).text(), vkey)

    leaf_hashes: list[bytes] = []
    for n in range((cp.size + TILE_WIDTH - 1) // TILE_WIDTH):
        width = min(TILE_WIDTH, cp.size - n * TILE_WIDTH)
        tile = await client.get("/" + tile_path(0, n, width))
        assert tile.status == 200
        assert tile.headers["Content-Type"] == "application/octet-stream"
        assert "immutable" in tile.headers["Cache-Control"]
        hashes = await tile.read()
        bundle = await (await client.get("/" + tile_path("entries", n, width))).read()
        entries, pos = [], 0
        while pos < len(bundle):
            length = int.from_bytes(bundle[pos : pos + 2], "big")
            entries.append(bundle[pos + 2 : pos + 2 + length])
            pos += 2 + length
        assert [merkle.leaf_hash(e) for e in entries] == [
            hashes[i : i + 32] for i in range(0, len(hashes), 32)
        ]
        leaf_hashes += [merkle.leaf_hash(e) for e in entries]
    assert merkle.root_from_leaf_hashes(leaf_hashes) == cp.root_hash
    # Level 1 holds the roots of full level-0 tiles.
    level1 = await (await client.get("/" + tile_path(1, 0, 2))).read()
    assert level1[:32] == merkle.root_from_leaf_hashes(leaf_hashes[:256])


async def test_tiles_beyond_the_checkpoint_are_not_found(client: Client) -> None:
    await fill(client, 10)
    for path in ("/tile/0/000", "/tile/0/000.p/11", "/tile/entries/001.p/1", "/tile/1/000.p/1"):
        response = await client.get(path)
        assert response.status == 404, path
        assert response.content_type == "application/problem+json"


async def test_malformed_tile_paths_are_bad_requests(client: Client) -> None:
    await fill(client, 1)
    for path in (
        "/tile/0/1",
        "/tile/0/x000/001",
        "/tile/0/000.p/0",
        "/tile/0/000.p/256",
        "/tile/00/000",
        "/tile/0/000.p/01",
        "/tile/64/000",
        "/tile/-1/000",
    ):
        response = await client.get(path)
        assert response.status == 400, path
        problem = await response.json(content_type=None)
        assert problem["type"] in ("/problems/bad-request", "/problems/out-of-range")


async def test_entry_shows_exact_leaf_decoded_fields_and_payload(client: Client) -> None:
    await fill(client, 2)
    public = await get_json(client, "/v1/entries/1")
    assert (public["payload"], public["envelope"], public["access"]) == (None, None, None)
    async with client.app[LEDGER].pool.acquire() as conn:
        _, token = await tokens.add_token(conn, "Inspector Li", "inspector")
    response = await client.get("/v1/entries/1", headers={"Authorization": f"Bearer {token}"})
    body = await response.json()
    assert body["access"] == "inspector"
    assert {k: v for k, v in body.items() if k not in ("payload", "envelope", "access")} == {
        k: v for k, v in public.items() if k not in ("payload", "envelope", "access")
    }
    leaf = base64.b64decode(str(body["leaf"]))
    decoded = Leaf.decode(leaf)
    fields = body["fields"]
    assert isinstance(fields, dict)
    assert fields["index"] == decoded.index == 1
    assert fields["payloadHash"] == hashlib.sha256(b"item 1").hexdigest()
    assert base64.b64decode(str(body["payload"])) == b"item 1"
    assert base64.b64decode(str(body["envelope"])) == b"env"
    assert str(fields["recordTime"]).endswith("Z")


async def test_proofs_over_http_verify_against_the_checkpoint(client: Client) -> None:
    await fill(client, 300)
    info = await get_json(client, "/v1/log")
    root = base64.b64decode(str(info["rootHash"]))
    for index in (0, 1, 255, 256, 299):
        entry = await get_json(client, f"/v1/entries/{index}")
        proof = await get_json(client, f"/v1/proof/inclusion?index={index}&treeSize=300")
        merkle.verify_inclusion(
            merkle.leaf_hash(base64.b64decode(str(entry["leaf"]))),
            index,
            300,
            [base64.b64decode(h) for h in proof["hashes"]],
            root,
        )
    small_root = await client.app[LEDGER].reader.root_at(17)
    proof = await get_json(client, "/v1/proof/consistency?first=17&second=300")
    merkle.verify_consistency(
        17,
        300,
        small_root,
        root,
        [base64.b64decode(h) for h in proof["hashes"]],
    )


async def test_bad_proof_parameters_get_precise_problems(client: Client) -> None:
    await fill(client, 4)
    cases = {
        "/v1/proof/inclusion?index=1": (400, "treeSize"),
        "/v1/proof/inclusion?index=x&treeSize=4": (400, "index"),
        "/v1/proof/inclusion?index=4&treeSize=4": (400, "not in a tree"),
        "/v1/proof/inclusion?index=0&treeSize=5": (400, "beyond the latest checkpoint"),
        "/v1/proof/consistency?first=3&second=2": (400, "between 0 and second"),
        "/v1/proof/inclusion?index=-1&treeSize=4": (400, "index"),
        "/v1/proof/inclusion?index=99999999999999999999&treeSize=4": (400, "index"),
        "/v1/entries/4": (404, "no entry"),
        "/v1/entries/abc": (400, "index"),
        "/nowhere": (404, ""),
    }
    for path, (status, words) in cases.items():
        response = await client.get(path)
        assert response.status == status, path
        assert response.content_type == "application/problem+json", path
        problem = await response.json(content_type=None)
        assert problem["status"] == status
        assert words in problem["detail"], (path, problem)


async def test_wrong_method_is_a_problem_not_a_crash(client: Client) -> None:
    response = await client.post("/v1/log")
    assert response.status == 405
    assert (await response.json(content_type=None))["type"] == "/problems/method-not-allowed"


@pytest.mark.parametrize(
    "lost",
    [
        ConnectionRefusedError("connect refused"),
        asyncpg.ConnectionDoesNotExistError("connection was closed in the middle of operation"),
        asyncpg.CannotConnectNowError("the database system is starting up"),
        asyncpg.AdminShutdownError("terminating connection due to administrator command"),
    ],
)
async def test_a_database_lost_mid_request_is_a_retriable_503_not_a_500(
    lost: Exception,
) -> None:
    async def handler(request: web.Request) -> web.Response:
        raise lost

    app = web.Application(middlewares=[problem_middleware])
    app.router.add_get("/x", handler)
    async with TestClient(TestServer(app)) as client:
        response = await client.get("/x")
        assert response.status == 503
        assert response.content_type == "application/problem+json"
        assert response.headers["Retry-After"] == "5"
        assert (await response.json())["type"].endswith("/problems/unavailable")
