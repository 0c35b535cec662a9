"""Confidential means confidential (issue 12), through real HTTP on real PostgreSQL.

A distributor records receiving the brand's serial with a price, the place and the
disposition marked confidential. The public reads what verification needs and the
curated history, never those fields; the signer, the goods' owner and an inspector read
the whole event; a competitor's enterprise token cannot read its body.
"""

from __future__ import annotations

import asyncio
import base64
import dataclasses
import json
import logging
from typing import Any

import pytest

from gateway.cli.main import main as cli
from gateway.keys import LEDGER
from tests.conftest import cli_args, settled
from tests.epcis_samples import document
from tests.ingest.test_capture import Signer, post
from tests.lookup.test_history import history
from tests.trust.story import (
    BRAND,
    DISTRIBUTOR,
    LOT,
    SERIAL,
    Client,
    commissioning,
    inspector,
    on_items,
    parties,
    path,
)
from tests.trust.test_attacks import record
from traceledger.accounts import tokens
from traceledger.audit.history_check import verify_history
from traceledger.audit.verify import verify_log
from traceledger.errors import IntegrityError
from traceledger.settings import Settings
from traceledger.tlog.leaf import Leaf
from traceledger.tlog.note import Verifier

SECRET_PRICE = "SECRET-PRICE-4711"
SECRET_SITE = f"urn:epc:id:sgln:{DISTRIBUTOR}.04711.0"
# How the site shows in any form: the URN, or the GLN's first 12 digits in a key.
SITE_MARKS = (f"{DISTRIBUTOR}.04711", f"{DISTRIBUTOR}04711")
CONTEXT = {"ex": "https://example.com/voc/"}


def secret_receiving() -> dict[str, Any]:
    event = on_items(13, [SERIAL], "receiving", "in_progress")
    event["bizLocation"] = {"id": SECRET_SITE}
    event["ex:price"] = SECRET_PRICE
    event["traceledger:confidential"] = ["ex:price", "bizLocation", "disposition"]
    return event


def leaks(text: str) -> list[str]:
    return [m for m in (SECRET_PRICE, "in_progress", *SITE_MARKS) if m in text]


@dataclasses.dataclass
class Secret:
    who: dict[str, Signer]
    index: int
    tokens: dict[str, str]  # inspector, and an enterprise token per party


@pytest.fixture
async def secret(client: Client) -> Secret:
    who = await parties(client)
    await record(client, who["brand"], commissioning(10))
    doc = document(secret_receiving())
    doc["@context"] = [*doc["@context"], CONTEXT]
    status, receipt = await post(client, doc, who["distributor"])
    assert status == 201, receipt
    await settled(client.app[LEDGER])
    found = {"inspector": await inspector(client)}
    async with client.app[LEDGER].pool.acquire() as conn:
        for name in ("brand", "distributor", "attacker"):
            _, found[name] = await tokens.add_token(
                conn, f"{name} system", "enterprise", who[name].enterprise_id
            )
    return Secret(who, receipt["entries"][0]["index"], found)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def text_of(client: Client, url: str, **headers: str) -> tuple[int, str]:
    response = await client.get(url, headers=headers)
    body = await response.read()
    return response.status, body.decode("utf-8", "replace")


async def test_the_public_never_reads_a_confidential_field(
    client: Client, secret: Secret, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    i = secret.index
    seen: dict[str, tuple[int, str]] = {
        "entry": await text_of(client, f"/v1/entries/{i}"),
        "entry body": await text_of(client, f"/v1/entries/{i}?include=body"),
        "bundle": await text_of(client, f"/tile/entries/000.p/{i + 1}"),
        "json": await text_of(client, path(SERIAL), Accept="application/json"),
        "lot json": await text_of(client, path(LOT), Accept="application/json"),
        "html": await text_of(client, path(SERIAL) + "?lang=en", Accept="text/html"),
        "zh html": await text_of(client, path(SERIAL) + "?lang=zh", Accept="text/html"),
        "linkset": await text_of(client, path(SERIAL) + "?linkType=all"),
        "place": await text_of(client, path(SECRET_SITE), Accept="application/json"),
        "export": await text_of(client, f"/v1/export{path(LOT)}.jsonld"),
        "csv": await text_of(client, f"/v1/export{path(LOT)}.csv"),
        "events": await text_of(client, "/v1/events"),
        "rest": await text_of(client, "/events"),
        "metrics": await text_of(client, "/metrics"),
    }
    for name, (_, text) in seen.items():
        # The place's page repeats the GLN it was asked about, and nothing else.
        text = text.replace(path(SECRET_SITE)[1:], "") if name == "place" else text
        assert not leaks(text), (name, leaks(text))
    logged = "\n".join(str(r.__dict__) for r in caplog.records)
    assert SECRET_PRICE not in logged
    assert "in_progress" not in logged
    assert seen["entry"][0] == 200
    entry = json.loads(seen["entry"][1])
    assert (entry["payload"], entry["envelope"], entry["access"]) == (None, None, None)
    assert entry["fields"]["payloadHash"]
    assert seen["entry body"][0] == 401
    # The only event there is known by a secret place: it is not listed.
    assert json.loads(seen["place"][1])["events"] == []
    assert {seen[n][0] for n in ("export", "csv", "events", "rest")} == {401}
    shown = next(e for e in json.loads(seen["json"][1])["events"] if e["index"] == i)
    assert shown["confidential"] is True
    assert (shown["bizStep"], shown["disposition"]) == ("receiving", None)
    assert shown["where"] == {"readPoint": None, "bizLocation": None}


async def test_the_public_answer_discloses_fields_and_withholds_confidential_ones(
    client: Client, secret: Secret
) -> None:
    answer = await history(client, path(SERIAL))
    report = verify_history(answer, Verifier.parse(answer["verifierKey"]))
    assert not report.failures
    assert (report.verified, report.withheld) == (2, 0)
    assert report.withheld_fields == 3  # price, place and disposition
    shown = next(e for e in answer["events"] if e["index"] == secret.index)
    names = {name for _, name, _ in shown["disclosures"]}
    assert {"epcList", "bizStep", "eventID", "type", "action"} <= names
    assert not names & {"ex:price", "bizLocation", "disposition"}
    assert len(shown["withheldDigests"]) == 3
    assert shown["payload"] is None


def tampered(answer: dict[str, Any], index: int, change: Any) -> dict[str, Any]:
    bad: dict[str, Any] = json.loads(json.dumps(answer))
    change(next(e for e in bad["events"] if e["index"] == index))
    return bad


async def test_an_altered_disclosed_field_or_salt_fails_verify_history(
    client: Client, secret: Secret
) -> None:
    answer = await history(client, path(SERIAL))
    key = Verifier.parse(answer["verifierKey"])

    def disclosure(event: dict[str, Any], name: str) -> list[str]:
        found: list[str] = next(d for d in event["disclosures"] if d[1] == name)
        return found

    def other_step(event: dict[str, Any]) -> None:
        disclosure(event, "bizStep")[2] = '"shipping"'
        event["bizStep"] = "shipping"

    def other_salt(event: dict[str, Any]) -> None:
        disclosure(event, "epcList")[0] = base64.b64encode(bytes(16)).decode()

    def one_withheld_less(event: dict[str, Any]) -> None:
        event["withheldDigests"].pop()

    def a_withheld_field_disclosed_as_something_else(event: dict[str, Any]) -> None:
        salt = disclosure(event, "epcList")[0]
        event["disclosures"].append([salt, "ex:price", '"0.01"'])
        event["withheldDigests"].pop()

    for change in (other_step, other_salt, one_withheld_less):
        report = verify_history(tampered(answer, secret.index, change), key)
        assert report.failures, change.__name__
    bad = tampered(answer, secret.index, a_withheld_field_disclosed_as_something_else)
    assert verify_history(bad, key).failures


async def body(client: Client, index: int, token: str) -> tuple[int, dict[str, Any]]:
    response = await client.get(f"/v1/entries/{index}?include=body", headers=bearer(token))
    return response.status, await response.json(content_type=None)


@pytest.mark.parametrize(
    ("reader", "reason"),
    [("distributor", "signer"), ("brand", "goods-owner"), ("inspector", "inspector")],
)
async def test_the_signer_the_goods_owner_and_an_inspector_read_the_body(
    client: Client, secret: Secret, reader: str, reason: str
) -> None:
    status, entry = await body(client, secret.index, secret.tokens[reader])
    assert status == 200, entry
    assert entry["access"] == reason
    payload = json.loads(base64.b64decode(entry["payload"]))
    assert payload["ex:price"] == SECRET_PRICE
    envelope = json.loads(base64.b64decode(entry["envelope"]))
    assert SECRET_PRICE in base64.b64decode(envelope["payload"]).decode()
    async with client.app[LEDGER].pool.acquire() as conn:
        logged = await conn.fetch("SELECT path, status FROM audit_log")
    assert [(r["path"], r["status"]) for r in logged] == [
        (f"/v1/entries/{secret.index}?include=body", 200)
    ]


async def test_a_competitor_cannot_read_the_body_of_an_event_on_goods_it_does_not_own(
    client: Client, secret: Secret
) -> None:
    status, problem = await body(client, secret.index, secret.tokens["attacker"])
    assert status == 403
    assert problem["type"] == "/problems/read-forbidden"
    assert not leaks(json.dumps(problem))
    # Without asking for the body explicitly: the public fields, as anyone gets them.
    response = await client.get(
        f"/v1/entries/{secret.index}", headers=bearer(secret.tokens["attacker"])
    )
    assert response.status == 200
    entry = await response.json()
    assert (entry["payload"], entry["envelope"], entry["access"]) == (None, None, None)
    assert (await client.get(f"/v1/entries/{secret.index}", headers=bearer("wrong"))).status == 401
    # Nor through the EPCIS queries.
    status, text = await text_of(client, "/v1/events", **bearer(secret.tokens["attacker"]))
    assert status == 200
    assert not leaks(text)
    assert BRAND not in text  # it sees none of the brand's events


async def test_inspectors_see_confidential_fields_in_lookups(
    client: Client, secret: Secret
) -> None:
    inside = await history(client, path(SERIAL), **bearer(secret.tokens["inspector"]))
    shown = next(e for e in inside["events"] if e["index"] == secret.index)
    assert shown["extensions"]["ex:price"] == SECRET_PRICE
    assert shown["disposition"] == "in_progress"
    assert shown["where"]["bizLocation"]
    status, text = await text_of(
        client, path(SERIAL) + "?lang=en", Accept="text/html", **bearer(secret.tokens["inspector"])
    )
    assert status == 200
    assert leaks(text)


async def test_traceledger_verify_checks_version_2_leaves(client: Client, secret: Secret) -> None:
    ledger = client.app[LEDGER]
    assert (await verify_log(ledger.pool)).entries == 2
    assert (await verify_log(ledger.pool, workers=2)).entries == 2
    async with ledger.pool.acquire() as conn:
        leaf = bytes(await conn.fetchval("SELECT leaf FROM entries WHERE idx = $1", secret.index))
        assert Leaf.decode(leaf).version == 2
        await conn.execute(
            "UPDATE entries SET payload"
            " = convert_to(replace(convert_from(payload, 'UTF8'), $2, 'cheap'), 'UTF8')"
            " WHERE idx = $1",
            secret.index,
            SECRET_PRICE,
        )
    with pytest.raises(IntegrityError) as altered:
        await verify_log(ledger.pool)
    assert altered.value.index == secret.index
    with pytest.raises(IntegrityError) as by_workers:  # each reading on its own connection
        await verify_log(ledger.pool, workers=2)
    assert by_workers.value.index == secret.index
    async with ledger.pool.acquire() as conn:
        await conn.execute(
            "UPDATE entries SET"
            " payload = convert_to(replace(convert_from(payload, 'UTF8'), 'cheap', $2), 'UTF8'),"
            " salts = overlay(salts placing '\\x00'::bytea from 1) WHERE idx = $1",
            secret.index,
            SECRET_PRICE,
        )
    with pytest.raises(IntegrityError) as salted:
        await verify_log(ledger.pool)
    assert salted.value.index == secret.index


# --- redaction ----------------------------------------------------------------------------


async def run_cli(*args: str, settings: Settings) -> int:
    """The command's exit status; usage errors exit (2) through argparse, as in a shell."""
    try:
        code: int = await asyncio.to_thread(cli, [*cli_args(settings), *args])
    except SystemExit as exc:
        return int(exc.code or 0)
    return code


async def stored_anywhere(client: Client, secret_text: str) -> list[str]:
    """The tables whose rows still hold `secret_text` (bytea and text columns)."""
    found = []
    async with client.app[LEDGER].pool.acquire() as conn:
        for table, column in (
            ("entries", "payload"),
            ("envelopes", "body"),
            ("prebuilt_answers", "body"),
        ):
            hit = await conn.fetchval(
                f"SELECT count(*) FROM {table}"
                f" WHERE position(convert_to($1, 'UTF8') IN {column}) > 0",
                secret_text,
            )
            if hit:
                found.append(table)
    return found


async def test_a_redacted_field_is_gone_and_everything_still_verifies(
    client: Client, secret: Secret, settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    ledger = client.app[LEDGER]
    assert await stored_anywhere(client, SECRET_PRICE)
    why = "court order 2026-17: erase the price"
    code = await run_cli(
        "redact",
        str(secret.index),
        "ex:price",
        "--reason",
        why,
        "--by",
        "operator Zhang",
        settings=settings,
    )
    assert code == 0, capsys.readouterr()
    await settled(ledger)
    assert await stored_anywhere(client, SECRET_PRICE) == []
    assert await run_cli("verify", settings=settings) == 0
    by_workers = await verify_log(ledger.pool, workers=2)  # each on its own connection
    assert by_workers.entries == (await verify_log(ledger.pool, workers=0)).entries > 2

    # The entry still proves; the field shows as redacted, to everyone.
    inside = await history(client, path(SERIAL), **bearer(secret.tokens["inspector"]))
    public = await history(client, path(SERIAL))
    for answer in (inside, public):
        assert not verify_history(answer, Verifier.parse(answer["verifierKey"])).failures
        shown = next(e for e in answer["events"] if e["index"] == secret.index)
        assert shown["redacted"] == ["ex:price"]
        assert "ex:price" not in {name for _, name, _ in shown["disclosures"]}
        assert SECRET_PRICE not in json.dumps(answer)
    status, entry = await body(client, secret.index, secret.tokens["distributor"])
    assert status == 200
    assert entry["redacted"] == ["ex:price"]
    assert entry["envelope"] is None  # the signed document held the value: erased whole
    assert "ex:price" not in json.loads(base64.b64decode(entry["payload"]))

    # The redaction is a log entry: who, when, why (the field, never the value).
    record_index = max(e["index"] for e in public["events"]) + 1
    status, record = await body(client, record_index, secret.tokens["inspector"])
    assert status == 200, record
    said = json.loads(base64.b64decode(record["payload"]))
    assert said["type"] == "traceledger:Redaction"
    assert said["redacts"]["index"] == secret.index
    assert said["redacts"]["field"] == "ex:price"
    assert (said["reason"], said["by"]) == (why, "operator Zhang")
    assert said["at"]


async def test_what_cannot_be_redacted_is_refused(
    client: Client, secret: Secret, settings: Settings
) -> None:
    reason = ("--reason", "a reason long enough")
    assert await run_cli("redact", str(secret.index), "eventID", *reason, settings=settings) == 1
    assert await run_cli("redact", str(secret.index), "nothing", *reason, settings=settings) == 1
    assert await run_cli("redact", "999", "ilmd", *reason, settings=settings) == 1
    assert (
        await run_cli("redact", str(secret.index), "ilmd", "--reason", "x", settings=settings) == 2
    )
    async with client.app[LEDGER].pool.acquire() as conn:
        assert await conn.fetchval("SELECT count(*) FROM redactions") == 0
