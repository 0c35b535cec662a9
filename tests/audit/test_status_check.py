"""verify-history proves an answer's conclusions, not only its events: a status, a
producer or a lot edited in a stored answer fails offline, with the server's own rules."""

from __future__ import annotations

import copy
import json
from typing import Any

from gateway.keys import LEDGER
from tests.lookup.test_history import CAN_DL, tell_story
from tests.lookup.test_prebuilt import Client, build_all, stored
from traceledger.audit.history_check import verify_history
from traceledger.ledger import answer_builder
from traceledger.tlog.note import Verifier

CAN = CAN_DL[1:]


def failures(answer: dict[str, Any]) -> list[str]:
    return verify_history(answer, Verifier.parse(answer["verifierKey"])).failures


async def recalled_can(client: Client) -> dict[str, Any]:
    await tell_story(client)
    ledger = client.app[LEDGER]
    await build_all(answer_builder(ledger))
    answer = (await stored(ledger))[CAN]
    assert answer["status"]["recalled"] is True
    assert not failures(answer)
    return answer


async def test_a_stored_answer_with_its_recall_removed_fails_verify_history(
    client: Client,
) -> None:
    answer = await recalled_can(client)
    ledger = client.app[LEDGER]
    edited = copy.deepcopy(answer)
    edited["status"] |= {"recalled": False, "recalls": []}
    async with ledger.pool.acquire() as conn:
        await conn.execute(
            "UPDATE prebuilt_answers SET body = $2 WHERE key = $1",
            CAN,
            json.dumps(edited).encode(),
        )
    served = (await stored(ledger))[CAN]
    found = failures(served)
    assert any(f.startswith("status.recalled") for f in found), found
    assert any(f.startswith("status.recalls") for f in found), found


async def test_an_edited_disposition_or_producer_fails_verify_history(client: Client) -> None:
    answer = await recalled_can(client)
    hidden = copy.deepcopy(answer)
    recall = next(e for e in hidden["events"] if e["disposition"] == "recalled")
    recall["disposition"] = "active"  # the recall event "is not one", and status agrees
    hidden["status"] |= {"recalled": False, "recalls": []}
    assert any("disposition shown differs" in f for f in failures(hidden))
    producer = copy.deepcopy(answer)
    producer["product"]["producer"]["name"] = "Someone Else"
    assert any(f.startswith("product.producer") for f in failures(producer))


async def test_an_erroneous_flag_no_declaration_supports_fails(client: Client) -> None:
    answer = await recalled_can(client)
    edited = copy.deepcopy(answer)
    recall = next(e for e in edited["events"] if e["disposition"] == "recalled")
    recall["erroneous"] = True  # as if the recall had been retracted
    edited["status"] |= {"recalled": False, "recalls": []}
    assert any("erroneous is True" in f for f in failures(edited))
