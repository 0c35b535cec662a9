"""Master data over real HTTP and a real database: a document header's names are logged,
versioned and believed only from the identifier's owner; the registry names sites by
`traceledger location add`; and every name shown is provable from the log."""

from __future__ import annotations

import base64
import hashlib
import json
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from gateway.cli.main import main as cli_main
from gateway.keys import LEDGER
from tests.conftest import cli_args, settled
from tests.epcis_samples import OTHER_GCP, PRODUCER_GCP, document, object_event
from tests.ingest.test_capture import Client, post, register
from traceledger.accounts import registry, tokens
from traceledger.ingest.masterdata import add_location
from traceledger.inspect.export import _location_names as location_names
from traceledger.ledger import Ledger
from traceledger.lookup.names import read_names
from traceledger.settings import Settings
from traceledger.standards import dsse
from traceledger.standards.masterdata import Statement, statements
from traceledger.tlog.leaf import sha256
from traceledger.tlog.merkle import leaf_hash, verify_inclusion

MDA = "urn:epcglobal:cbv:mda#"
SITE = f"urn:epc:id:sgln:{PRODUCER_GCP}.00001.0"  # the sample events' read point
SITE_KEY = "414/0614141000012"
OTHERS_SITE = f"urn:epc:id:sgln:{OTHER_GCP}.00001.0"
ITEM = "/01/10614141073464/21/1"  # object_event(1)


def named(ident: str, **names: str) -> dict[str, Any]:
    values = [{"@value": v, "@language": lang} for lang, v in names.items()]
    return {"id": ident, "attributes": [{"id": f"{MDA}name", "attribute": values}]}


def with_names(doc: dict[str, Any], *elements: dict[str, Any]) -> dict[str, Any]:
    vocabulary = {
        "type": "urn:epcglobal:epcis:vtype:BusinessLocation",
        "vocabularyElementList": list(elements),
    }
    return {**doc, "epcisHeader": {"epcisMasterData": {"vocabularyList": [vocabulary]}}}


def signed_by(body: bytes, key: Ed25519PublicKey) -> dsse.Envelope:
    """The DSSE envelope in `body`, once its signature by `key` verified."""
    envelope = dsse.from_json_object(json.loads(body))
    assert dsse.verify(envelope, lambda kid: key if kid == dsse.keyid(key) else None)
    return envelope


async def names_of(client: Client, path: str = ITEM) -> dict[str, Any]:
    got = await client.get(path, params={"format": "json"})
    assert got.status == 200
    answer: dict[str, Any] = await got.json()
    found: dict[str, Any] = answer.get("names", {})
    return found


async def versions(ledger: Ledger, key: str) -> list[tuple[str, str, int]]:
    async with ledger.pool.acquire() as conn:
        rows = await conn.fetch(
            "SELECT lang, value, version FROM master_data WHERE key = $1 AND attribute = 'name'"
            " ORDER BY lang, version",
            key,
        )
    return [(r["lang"], r["value"], r["version"]) for r in rows]


def test_statements_read_every_language_and_leave_out_what_they_cannot_read() -> None:
    said = statements(
        [
            {
                "type": "urn:epcglobal:epcis:vtype:BusinessLocation",
                "vocabularyElementList": [
                    named(SITE, en="Dairy plant", zh="乳品厂"),
                    {"id": SITE, "attributes": [{"id": f"{MDA}city", "attribute": "Auckland"}]},
                    {"id": SITE, "attributes": [{"id": f"{MDA}name", "attribute": {"x": 1}}]},
                    {"id": 7, "attributes": []},
                    "junk",
                ],
            },
            "junk",
        ]
    )
    assert sorted(said, key=lambda s: (s.attribute, s.lang)) == [
        Statement(SITE_KEY, "city", "", "Auckland"),
        Statement(SITE_KEY, "name", "en", "Dairy plant"),
        Statement(SITE_KEY, "name", "zh", "乳品厂"),
    ]


async def test_names_in_a_header_are_logged_versioned_and_believed_from_the_owner_only(
    client: Client,
) -> None:
    ledger = client.app[LEDGER]
    dairy = await register(client, "Dairy", [PRODUCER_GCP])
    first = with_names(
        document(object_event(1)),
        named(SITE, en="Dairy plant", zh="乳品厂"),
        named(OTHERS_SITE, en="A rival's plant, renamed by the dairy"),
    )
    status, receipt = await post(client, first, dairy)
    assert status == 201
    assert receipt["masterData"] == {"index": 1, "status": "appended"}
    assert [e["index"] for e in receipt["entries"]] == [0]
    await settled(ledger)
    names = await names_of(client)
    assert names[SITE_KEY]["name"] == {"en": "Dairy plant", "zh": "乳品厂"}
    assert names[SITE_KEY]["by"] == "Dairy"
    assert names[SITE_KEY]["statedIn"]["index"] == 1
    assert await versions(ledger, "414/4012345000016") == []  # not the dairy's to name
    # The same names again: a new statement, but no new version of anything.
    again = with_names(document(object_event(2)), named(SITE, en="Dairy plant", zh="乳品厂"))
    assert (await post(client, again, dairy))[0] == 201
    renamed = with_names(document(object_event(3)), named(SITE, en="Dairy plant No. 1"))
    assert (await post(client, renamed, dairy))[0] == 201
    await settled(ledger)
    assert await versions(ledger, SITE_KEY) == [
        ("en", "Dairy plant", 1),
        ("en", "Dairy plant No. 1", 2),
        ("zh", "乳品厂", 1),
    ]
    # Pages call it by its newest name (once the few seconds names are kept for are over).
    async with ledger.pool.acquire() as conn:
        newest = (await read_names(conn, [SITE_KEY]))[SITE_KEY]
    assert newest["name"] == {"en": "Dairy plant No. 1", "zh": "乳品厂"}
    assert newest["statedIn"]["version"] == 2
    # Exports describe the location by that name too.
    async with ledger.pool.acquire() as conn:
        described = await location_names(conn, {SITE_KEY[4:], "4012345000016"})
    assert described == {SITE_KEY[4:]: "Dairy plant No. 1"}


async def test_a_name_shown_is_provable_from_the_log(client: Client) -> None:
    ledger = client.app[LEDGER]
    dairy = await register(client, "Dairy", [PRODUCER_GCP])
    doc = with_names(document(object_event(1)), named(SITE, en="Dairy plant", zh="乳品厂"))
    assert (await post(client, doc, dairy))[0] == 201
    await settled(ledger)
    answer = await (await client.get(ITEM, params={"format": "json"})).json()
    index = answer["names"][SITE_KEY]["statedIn"]["index"]
    entry = await (await client.get(f"/v1/entries/{index}")).json()
    # The payload is the one the leaf commits to, and it says the name.
    payload = base64.b64decode(entry["payload"])
    assert sha256(payload).hex() == entry["fields"]["payloadHash"]
    stated = statements(json.loads(payload)["vocabularyList"])
    assert Statement(SITE_KEY, "name", "zh", "乳品厂") in stated
    # The leaf is in the tree the answer's signed checkpoint commits to.
    size = answer["treeSize"]
    proof = await (
        await client.get("/v1/proof/inclusion", params={"index": index, "treeSize": size})
    ).json()
    root = base64.b64decode(answer["checkpoint"].split("\n")[2])
    leaf = base64.b64decode(entry["leaf"])
    verify_inclusion(
        leaf_hash(leaf), index, size, [base64.b64decode(h) for h in proof["hashes"]], root
    )
    # The envelope the leaf names is the dairy's own signature over the header it sent;
    # the whole signed document (its events too) is for the dairy, not the public.
    assert entry["envelope"] is None
    async with ledger.pool.acquire() as conn:
        _, token = await tokens.add_token(conn, "dairy system", "enterprise", dairy.enterprise_id)
    entry = await (
        await client.get(f"/v1/entries/{index}", headers={"Authorization": f"Bearer {token}"})
    ).json()
    assert entry["access"] == "signer"
    envelope_bytes = base64.b64decode(entry["envelope"])
    assert hashlib.sha256(envelope_bytes).hexdigest() == entry["fields"]["envelopeHash"]
    envelope = signed_by(envelope_bytes, dairy.key.public_key())
    header = json.loads(envelope.payload)["epcisHeader"]["epcisMasterData"]["vocabularyList"]
    assert set(statements(header)) == set(stated)


def test_location_add_names_a_registered_enterprises_site_in_the_log(
    settings: Settings,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    base = cli_args(settings)
    monkeypatch.chdir(tmp_path)
    assert cli_main(["keygen", "-o", "dairy"]) == 0
    assert cli_main([*base, "enterprise", "add", "Dairy", "--gcp", PRODUCER_GCP, "--key",
                     "dairy.pub.pem"]) == 0  # fmt: skip
    capsys.readouterr()
    gln = SITE_KEY.removeprefix("414/")
    assert cli_main([*base, "location", "add", gln, "Dairy plant", "--name-zh", "乳品厂"]) == 0
    assert "named in log entry 0 (appended)" in capsys.readouterr().out
    assert cli_main([*base, "location", "add", gln, "Dairy plant", "--name-zh", "乳品厂"]) == 0
    # The same statement again is the same signed envelope: the first answer, no new entry.
    assert "named in log entry 0 (appended)" in capsys.readouterr().out
    assert cli_main([*base, "location", "add", gln, "Dairy plant No. 1"]) == 0
    assert "named in log entry 1 (appended)" in capsys.readouterr().out
    # Only a registered enterprise's sites: nobody holds this prefix.
    assert cli_main([*base, "location", "add", "4012345000016", "Nobody's"]) == 2
    assert "no registered enterprise" in capsys.readouterr().err
    assert cli_main([*base, "location", "add", "4012345000015", "Mistyped"]) == 2
    assert "check digit" in capsys.readouterr().err


async def test_the_registry_names_a_site_and_the_owner_may_rename_it(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    async with Ledger.open(settings) as ledger:
        key = Ed25519PrivateKey.generate()
        async with ledger.pool.acquire() as conn:
            await registry.add_enterprise(conn, "Dairy", [PRODUCER_GCP], key.public_key())
            assert ledger.sequencer is not None
            assert ledger.signer is not None
            named_site = await add_location(
                conn, ledger.sequencer, ledger.signer.private_key, SITE_KEY[4:], {"": "Plant"}
            )
        await settled(ledger)
        assert await versions(ledger, SITE_KEY) == [("", "Plant", 1)]
        async with ledger.pool.acquire() as conn:
            found = await read_names(conn, [SITE_KEY], "log")
        assert found[SITE_KEY]["by"] == "registry"
        assert found[SITE_KEY]["statedIn"] == {
            "log": "log",
            "index": named_site.index,
            "version": 1,
        }
        # The statement is signed by the log key, over exactly the logged payload.
        stored = await ledger.reader.entry(named_site.index)
        assert stored.envelope is not None
        assert stored.payload is not None
        envelope = signed_by(stored.envelope, ledger.signer.private_key.public_key())
        assert envelope.payload == stored.payload
