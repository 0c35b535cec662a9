"""The enterprise registry over the admin API and the command line."""

from __future__ import annotations

import asyncio
import json
import sys
from pathlib import Path

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from gateway.cli.main import main as cli_main
from gateway.keys import LEDGER, OPERATOR_TOKEN
from tests.conftest import ROOT, cli_args
from tests.epcis_samples import PRODUCER_GCP, document, object_event
from traceledger.accounts import registry
from traceledger.errors import DelegationError, UnknownEnterpriseError
from traceledger.settings import Settings
from traceledger.standards.dsse import keyid, load_private_key

Client = TestClient[web.Request, web.Application]


def pem() -> tuple[Ed25519PrivateKey, str]:
    key = Ed25519PrivateKey.generate()
    text = key.public_key().public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)
    return key, text.decode()


def auth(client: Client) -> dict[str, str]:
    return {"Authorization": f"Bearer {client.app[OPERATOR_TOKEN]}"}


async def test_admin_api_refuses_requests_without_the_operator_token(client: Client) -> None:
    for headers in ({}, {"Authorization": "Bearer wrong-token-wrong-token"}):
        response = await client.get("/v1/admin/enterprises", headers=headers)
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert (await response.json(content_type=None))["type"] == "/problems/unauthorized"


async def test_operator_token_file_is_private(client: Client, settings: Settings) -> None:
    path = settings.operator_token_file
    assert path.read_text().strip() == client.app[OPERATOR_TOKEN]
    assert path.stat().st_mode & 0o777 == 0o600


async def test_admin_api_registers_rotates_and_revokes(client: Client) -> None:
    key, public = pem()
    response = await client.post(
        "/v1/admin/enterprises",
        headers=auth(client),
        json={"name": "Dairy", "gcp": [PRODUCER_GCP], "publicKey": public, "rateLimit": 50},
    )
    assert response.status == 201, await response.text()
    created = await response.json()
    assert created["keyId"] == keyid(key.public_key())

    _, second = pem()
    response = await client.post(
        f"/v1/admin/enterprises/{created['id']}/keys",
        headers=auth(client),
        json={"publicKey": second},
    )
    assert response.status == 201
    second_id = (await response.json())["keyId"]

    response = await client.post(f"/v1/admin/keys/{created['keyId']}/revoke", headers=auth(client))
    assert response.status == 200
    listing = await (await client.get("/v1/admin/enterprises", headers=auth(client))).json()
    (dairy,) = listing["enterprises"]
    assert dairy["gcp"] == [PRODUCER_GCP]
    assert dairy["rateLimit"] == 50
    states = {k["keyId"]: k["revokedAt"] for k in dairy["keys"]}
    assert states[second_id] is None
    assert states[created["keyId"]] is not None


async def test_admin_api_gives_precise_problems_for_bad_requests(client: Client) -> None:
    _, public = pem()
    cases = [
        ({"name": "X", "gcp": "0614141", "publicKey": public}, "gcp"),
        ({"name": "X", "gcp": ["12"], "publicKey": public}, "4 to 12 digits"),
        ({"name": "X", "gcp": [PRODUCER_GCP], "publicKey": "not a pem"}, "PEM"),
        ({"name": "X", "gcp": [PRODUCER_GCP], "publicKey": public, "role": "king"}, "role"),
    ]
    for body, words in cases:
        response = await client.post("/v1/admin/enterprises", headers=auth(client), json=body)
        assert response.status == 400, body
        assert words in (await response.json())["detail"], body
    await client.post(
        "/v1/admin/enterprises",
        headers=auth(client),
        json={"name": "Twice", "gcp": [PRODUCER_GCP], "publicKey": public},
    )
    response = await client.post(
        "/v1/admin/enterprises",
        headers=auth(client),
        json={"name": "Twice", "gcp": [PRODUCER_GCP], "publicKey": pem()[1]},
    )
    assert response.status == 400
    response = await client.post("/v1/admin/keys/00/revoke", headers=auth(client))
    assert response.status == 400


def test_cli_registers_lists_rotates_and_revokes(
    settings: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = cli_args(settings)
    monkeypatch.chdir(tmp_path)
    assert cli_main(["keygen", "-o", "dairy"]) == 0
    assert (tmp_path / "dairy.pem").stat().st_mode & 0o777 == 0o600
    assert (
        cli_main(
            [
                *base,
                "enterprise",
                "add",
                "Dairy",
                "--gcp",
                PRODUCER_GCP,
                "--gcp",
                "0614142",
                "--key",
                "dairy.pub.pem",
            ]
        )
        == 0
    )
    out = capsys.readouterr().out
    assert "enterprise 1" in out
    first_key = out.split("key ")[-1].strip()
    assert cli_main(["keygen", "-o", "dairy2"]) == 0
    assert cli_main([*base, "key", "add", "1", "--key", "dairy2.pub.pem"]) == 0
    assert cli_main([*base, "key", "revoke", first_key]) == 0
    capsys.readouterr()
    assert cli_main([*base, "enterprise", "list"]) == 0
    listing = capsys.readouterr().out
    assert "Dairy" in listing
    assert "0614141,0614142" in listing
    assert f"key {first_key}  revoked" in listing
    assert cli_main(["keygen", "-o", "dairy"]) == 2  # never overwrites a key


async def test_push_command_signs_and_sends_a_folder_of_documents(
    client: Client, tmp_path: Path
) -> None:
    key_path = tmp_path / "k.pem"
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "gateway.cli.main", "keygen", "-o", str(tmp_path / "k"), cwd=ROOT
    )
    assert await proc.wait() == 0
    key = load_private_key(key_path)
    async with client.app[LEDGER].pool.acquire() as conn:
        await registry.add_enterprise(conn, "Pusher", [PRODUCER_GCP], key.public_key())
    docs = tmp_path / "docs"
    docs.mkdir()
    for n in range(3):
        (docs / f"{n}.json").write_text(json.dumps(document(object_event(n))))
    proc = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "gateway.cli.main",
        "push",
        str(docs),
        "--key",
        str(key_path),
        "--url",
        str(client.make_url("/")),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    out, err = await proc.communicate()
    assert proc.returncode == 0, err.decode()
    assert "pushed 3 of 3 documents (3 events)" in out.decode()


# ------------------------------------------------------------------------- delegations


async def registered(client: Client, name: str, gcp: list[str]) -> int:
    async with client.app[LEDGER].pool.acquire() as conn:
        ent, _ = await registry.add_enterprise(
            conn, name, gcp, Ed25519PrivateKey.generate().public_key()
        )
    return ent


async def test_admin_api_delegates_and_lists_what_each_enterprise_was_delegated(
    client: Client,
) -> None:
    brand = await registered(client, "Brand", [PRODUCER_GCP, "0614142"])
    maker = await registered(client, "Maker", ["0012345"])
    importer = await registered(client, "Importer", ["0054321"])
    url = f"/v1/admin/enterprises/{brand}/delegations"
    response = await client.post(url, headers=auth(client), json={"to": maker})
    assert response.status == 201, await response.text()
    first = await response.json()
    assert first["prefixes"] == [PRODUCER_GCP, "0614142"]
    assert first["gcp"] is None
    again = await client.post(url, headers=auth(client), json={"to": maker})
    assert (again.status, await again.json()) == (201, first)  # the same delegation
    body = {"to": importer, "gcp": "0614142"}
    response = await client.post(url, headers=auth(client), json=body)
    assert (await response.json())["prefixes"] == ["0614142"]
    listing = await (await client.get("/v1/admin/enterprises", headers=auth(client))).json()
    delegated = {e["name"]: e["delegatedGcp"] for e in listing["enterprises"]}
    assert delegated == {"Brand": [], "Maker": [PRODUCER_GCP, "0614142"], "Importer": ["0614142"]}


async def test_delegation_errors_are_precise_problems(client: Client) -> None:
    brand = await registered(client, "Brand", [PRODUCER_GCP])
    maker = await registered(client, "Maker", ["0012345"])
    cases: list[tuple[int, dict[str, object], int, str, dict[str, object]]] = [
        (404404, {"to": maker}, 404, "unknown-enterprise", {"enterpriseId": 404404}),
        (brand, {"to": 505505}, 404, "unknown-enterprise", {"enterpriseId": 505505}),
        (brand, {"to": 2**70}, 404, "unknown-enterprise", {"enterpriseId": 2**70}),
        (brand, {"to": brand}, 400, "invalid-delegation", {"parameter": "to"}),
        (brand, {"to": maker, "gcp": "0012345"}, 400, "invalid-delegation", {"parameter": "gcp"}),
        (brand, {"to": "Maker"}, 400, "bad-request", {"parameter": "to"}),
    ]
    for owner, body, status, slug, extra in cases:
        response = await client.post(
            f"/v1/admin/enterprises/{owner}/delegations", headers=auth(client), json=body
        )
        problem = await response.json(content_type=None)
        assert response.status == status, (body, problem)
        assert problem["type"] == f"/problems/{slug}", problem
        assert extra.items() <= problem.items(), problem
    response = await client.post(f"/v1/admin/enterprises/{brand}/delegations", json={"to": maker})
    assert response.status == 401
    async with client.app[LEDGER].pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM delegations") == 0
        with pytest.raises(DelegationError, match="not a company prefix of Brand"):
            await registry.delegate(conn, brand, maker, "0012345")
        with pytest.raises(DelegationError, match="cannot delegate to itself"):
            await registry.delegate(conn, brand, brand, None)
        with pytest.raises(UnknownEnterpriseError, match="no enterprise with id 9"):
            await registry.delegate(conn, 9, maker, None)


async def test_cli_delegates_and_lists_the_delegated_prefixes(
    client: Client, settings: Settings
) -> None:
    brand = await registered(client, "Brand", [PRODUCER_GCP, "0614142"])
    maker = await registered(client, "Maker", ["0012345"])

    async def cli(*args: str) -> tuple[int, str, str]:
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "gateway.cli.main",
            *cli_args(settings),
            "enterprise",
            *args,
            cwd=ROOT,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await proc.communicate()
        assert proc.returncode is not None
        return proc.returncode, out.decode(), err.decode()

    code, out, err = await cli("delegate", str(brand), "--to", str(maker), "--gcp", "0614142")
    assert code == 0, err
    assert (
        out.strip()
        == f"enterprise {maker} may create goods of enterprise {brand} under prefix 0614142"
    )
    code, out, err = await cli("delegate", str(brand), "--to", str(maker))
    assert code == 0, err
    assert f"under all its prefixes (now {PRODUCER_GCP}, 0614142)" in out
    code, out, err = await cli("list")
    assert f"delegated gcp {PRODUCER_GCP},0614142" in out
    code, out, err = await cli("delegate", str(brand), "--to", str(maker), "--gcp", "0012345")
    assert code == 2
    assert "'0012345' is not a company prefix of Brand" in err
