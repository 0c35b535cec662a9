"""The page's proof checker (gateway/pages/static/verify.mjs) agrees with the Python log
code: it accepts what traceledger signs and proves, and rejects every alteration.

It runs under Node.js (Web Crypto as in browsers); tests/gateway/test_page_browser.py runs
it where shoppers do, in Chromium.
"""

from __future__ import annotations

import base64
import copy
import dataclasses
import json
import random
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from gateway import pages
from gateway.keys import LEDGER
from tests.lookup.test_history import BLEND_DL, CAN_DL, tell_story
from tests.tlog.test_merkle import (
    INCLUSION_VECTORS,
    NODE_HASHES,
    ROOT_HASHES,
    corrupt_inclusion_probes,
)
from traceledger.settings import Settings
from traceledger.tlog import merkle
from traceledger.tlog.checkpoint import Checkpoint, sign_checkpoint
from traceledger.tlog.cosignature import CosignatureSigner
from traceledger.tlog.leaf import Leaf
from traceledger.tlog.note import Signer

Client = TestClient[web.Request, web.Application]
NODE = shutil.which("node")
VERIFY = Path(pages.__file__).parent / "static" / "verify.mjs"

pytestmark = pytest.mark.skipif(NODE is None, reason="no node on this machine (Node.js 20+)")

# Runs each case through verify.mjs: {"op": ..., ...} -> {"ok": ...} or {"code": ...}.
DRIVER = """
import { readFileSync } from "node:fs";
const v = await import(process.argv[1]);
const b = v.b64decode;
const out = [];
for (const c of JSON.parse(readFileSync(0, "utf8"))) {
  try {
    if (c.op === "inclusion") {
      out.push({ ok: await v.verifyInclusion(b(c.leafHash), c.index, c.size,
        c.proof.map(b), b(c.root)) });
    } else if (c.op === "leaf") {
      const leaf = v.readLeaf(b(c.leaf));
      out.push({ ok: true, index: leaf.index, recordTime: leaf.recordTime,
        payloadHash: v.b64encode(leaf.payloadHash) });
    } else if (c.op === "checkpoint") {
      const key = await v.parseVerifierKey(c.key);
      const cp = await v.openCheckpoint(c.note, key);
      const witnesses = await Promise.all(c.witnesses.map((w) => v.parseVerifierKey(w, 4)));
      const cosigned = await v.cosignatures(c.note, witnesses);
      out.push({ ok: true, size: cp.size, origin: cp.origin, cosigned: cosigned.count,
        newest: cosigned.newest });
    } else if (c.op === "answer") {
      const r = await v.verifyAnswer(c.answer, c.pins, c.shown ?? []);
      out.push({ ok: true, records: r.records, withheld: r.withheld, witnesses: r.witnesses });
    }
  } catch (e) {
    out.push({ ok: false, code: e.code ?? "exception", message: String(e.message) });
  }
}
process.stdout.write(JSON.stringify(out));
"""


def run(cases: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Every case in one Node.js process (each start costs ~50 ms)."""
    assert NODE is not None
    done = subprocess.run(
        [NODE, "--input-type=module", "-e", DRIVER, VERIFY.as_uri()],
        input=json.dumps(cases),
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    results: list[dict[str, Any]] = json.loads(done.stdout)
    assert len(results) == len(cases)
    return results


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def inclusion(
    leaf: bytes, index: int, size: int, proof: list[bytes], root: bytes
) -> dict[str, Any]:
    return {
        "op": "inclusion",
        "leafHash": b64(leaf),
        "index": index,
        "size": size,
        "proof": [b64(p) for p in proof],
        "root": b64(root),
    }


# --- Merkle proofs -------------------------------------------------------------------------


def test_inclusion_proofs_of_the_reference_vectors_verify_and_every_corruption_fails() -> None:
    good: list[dict[str, Any]] = []
    bad: list[dict[str, Any]] = []
    for index, size, proof in INCLUSION_VECTORS:
        leaf, root = NODE_HASHES[0][index], ROOT_HASHES[size]
        good.append(inclusion(leaf, index, size, proof, root))
        probes = corrupt_inclusion_probes(index, size, proof, root, leaf)
        bad.extend(inclusion(*probe[:5]) for probe in probes)
    results = run(good + bad)
    assert all(r["ok"] for r in results[: len(good)])
    accepted = [case for case, r in zip(bad, results[len(good) :], strict=True) if r["ok"]]
    assert accepted == []


def levels_of(leaves: list[bytes]) -> list[list[bytes]]:
    """Every perfect node of a tree, level by level (what tiles store)."""
    levels = [[merkle.leaf_hash(leaf) for leaf in leaves]]
    while len(levels[-1]) > 1:
        below = levels[-1]
        levels.append(
            [merkle.node_hash(below[i], below[i + 1]) for i in range(0, len(below) - 1, 2)]
        )
    return levels


def test_inclusion_proofs_of_larger_trees_agree_with_the_python_verifier() -> None:
    rng = random.Random(9162)
    leaves = [rng.randbytes(20) for _ in range(1100)]
    levels = levels_of(leaves)
    cases: list[dict[str, Any]] = []
    expected: list[bool] = []
    for _ in range(150):
        size = rng.randint(1, len(leaves))
        index = rng.randrange(size)
        root = merkle.root_from_leaf_hashes(levels[0][:size])
        proof = merkle.inclusion_proof(index, size, lambda lv, ix: levels[lv][ix])
        merkle.verify_inclusion(levels[0][index], index, size, proof, root)  # the oracle
        cases.append(inclusion(levels[0][index], index, size, proof, root))
        expected.append(True)
        wrong = rng.randrange(size + 1)
        if wrong != index:
            cases.append(inclusion(levels[0][index], wrong, size, proof, root))
            expected.append(False)
    assert [r["ok"] for r in run(cases)] == expected


# --- leaves, notes, checkpoints, cosignatures ----------------------------------------------


def test_leaves_are_read_as_the_python_code_writes_them() -> None:
    rng = random.Random(1)
    leaves = [
        Leaf(index, rng.randbytes(32), micros, rng.randbytes(32), rng.randbytes(32), envelope)
        for index, micros, envelope in [
            (0, 0, None),
            (127, 1, rng.randbytes(32)),
            (128, 255, None),
            (65_536, 1_790_000_000_000_000, rng.randbytes(32)),
            (2**53 - 1, 2**53 - 1, None),
        ]
    ]
    results = run([{"op": "leaf", "leaf": b64(leaf.encode())} for leaf in leaves])
    for leaf, result in zip(leaves, results, strict=True):
        assert result == {
            "ok": True,
            "index": leaf.index,
            "recordTime": leaf.record_time_us,
            "payloadHash": b64(leaf.payload_hash),
        }
    strange = [
        Leaf(0, bytes(32), 0, bytes(32), bytes(32), None).encode()[:-1],  # cut short
        Leaf(0, bytes(32), 0, bytes(32), bytes(32), None).encode() + b"\x00",  # trailing
        b"\x97\x03" + Leaf(0, bytes(32), 0, bytes(32), bytes(32), None).encode()[2:],  # v3
        b"\x92\x01\xa1x",  # a string where nothing may be one
    ]
    for result in run([{"op": "leaf", "leaf": b64(data)} for data in strange]):
        assert result["code"] == "data"


def signed(text_size: int = 42) -> tuple[str, str, list[CosignatureSigner]]:
    signer = Signer("example.org/log", Ed25519PrivateKey.generate())
    body = Checkpoint("example.org/log", text_size, bytes(range(32))).body()
    note = sign_checkpoint(Checkpoint.parse(body), signer)
    witnesses = [
        CosignatureSigner(f"witness{n}.example", Ed25519PrivateKey.generate()) for n in range(2)
    ]
    for n, witness in enumerate(witnesses):
        note += witness.cosign(body, 1_790_000_000 + n).line()
    return note, signer.verifier.encode(), witnesses


def test_checkpoints_and_cosignatures_verify_and_alterations_fail() -> None:
    note, key, witnesses = signed()
    keys = [w.verifier.encode() for w in witnesses]
    other = Signer("example.org/log", Ed25519PrivateKey.generate()).verifier.encode()
    stranger = CosignatureSigner("witness0.example", Ed25519PrivateKey.generate())
    flipped_sig = note.replace(note.split("\n")[4][-6:], "AAAAA=", 1)
    cases = [
        {"op": "checkpoint", "note": note, "key": key, "witnesses": keys},
        {"op": "checkpoint", "note": note.replace("\n42\n", "\n43\n"), "key": key, "witnesses": []},
        {"op": "checkpoint", "note": note, "key": other, "witnesses": []},
        {"op": "checkpoint", "note": flipped_sig, "key": key, "witnesses": []},
        {
            "op": "checkpoint",
            "note": note,
            "key": key,
            "witnesses": [stranger.verifier.encode()],  # same name, another key: ignored
        },
    ]
    results = run(cases)
    assert results[0] == {
        "ok": True,
        "size": 42,
        "origin": "example.org/log",
        "cosigned": 2,
        "newest": 1_790_000_001,
    }
    assert [r.get("code") for r in results[1:4]] == ["signature", "signature", "signature"]
    assert results[4]["ok"]
    assert results[4]["cosigned"] == 0


# --- whole answers from a real ledger ------------------------------------------------------


@pytest.fixture(params=[False, True], ids=["version-1 leaves", "version-2 leaves"])
def settings(request: pytest.FixtureRequest, settings: Settings) -> Settings:
    """Every test here runs on leaves committing to payloads and to salted field digests."""
    return dataclasses.replace(settings, selective_disclosure=request.param)


@pytest.fixture
async def answers(client: Client) -> dict[str, dict[str, Any]]:
    await tell_story(client)
    found = {}
    for path in (CAN_DL, BLEND_DL):
        response = await client.get(path, headers={"Accept": "application/json"})
        found[path] = await response.json()
    return found


def pins(answer: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"logKeys": [answer["verifierKey"]], "witnessKeys": [], "quorum": 0} | more


def flip(value: str, at: int = 10) -> str:
    raw = bytearray(base64.b64decode(value))
    raw[at % len(raw)] ^= 0x01
    return b64(bytes(raw))


def shown(answer: dict[str, Any]) -> list[dict[str, Any]]:
    """The records as the page lists them (data-* attributes, <time datetime>)."""
    return [
        {
            "log": e["log"],
            "index": e["index"],
            "step": e["bizStep"] or "",
            "disposition": e["disposition"] or "",
            "time": e["eventTime"],
        }
        for e in answer["events"]
    ]


def altered(answer: dict[str, Any], change: str) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """`answer` (and the page's records) with one alteration an attacker might make."""
    bad = copy.deepcopy(answer)
    page = shown(answer)
    event = next(e for e in bad["events"] if e["payload"] is not None or e.get("disclosures"))
    v2 = "disclosures" in event
    if change == "payload byte" and v2:  # a salt: the disclosed field no longer adds up
        event["disclosures"][0][0] = flip(event["disclosures"][0][0])
    elif change == "payload byte":
        event["payload"] = flip(event["payload"])
    elif change == "leaf byte":
        event["leaf"] = flip(event["leaf"], 40)
    elif change == "proof hash":
        event["inclusionProof"][0] = flip(event["inclusionProof"][0])
    elif change == "proof cut":
        event["inclusionProof"] = event["inclusionProof"][:-1]
    elif change == "index":
        event["index"] += 1
    elif change == "bizStep in the answer":
        event["bizStep"] = "destroying"
    elif change == "disposition on the page":
        page[0]["disposition"] = "conformant"
    elif change == "time on the page":
        page[0]["time"] = "2020-01-01T00:00:00Z"
    elif change == "record only on the page":
        page.append({**page[0], "index": 999})
    elif change == "tree size":
        bad["treeSize"] += 1
    elif change == "checkpoint":
        bad["checkpoint"] = bad["checkpoint"].replace("\n", "\n ", 1)
    elif change == "withheld payload put back wrong" and v2:
        hidden = next(e for e in bad["events"] if e["withheldDigests"])
        hidden["withheldDigests"].pop()
        hidden["disclosures"].append(event["disclosures"][0])
    elif change == "withheld payload put back wrong":
        hidden = next(e for e in bad["events"] if e["payload"] is None)
        hidden["payload"] = event["payload"]
    return bad, page


CHANGES = {
    "payload byte": "payload",
    "leaf byte": "proof",
    "proof hash": "proof",
    "proof cut": "proof",
    "index": "proof",
    "bizStep in the answer": "payload",
    "disposition on the page": "shown",
    "time on the page": "shown",
    "record only on the page": "missing",
    "tree size": "signature",
    "checkpoint": "signature",
    "withheld payload put back wrong": "payload",
}


async def test_real_answers_verify_and_every_alteration_fails_for_its_reason(
    answers: dict[str, dict[str, Any]],
) -> None:
    can, blend = answers[CAN_DL], answers[BLEND_DL]
    cases = [
        {"op": "answer", "answer": can, "pins": pins(can), "shown": shown(can)},
        {"op": "answer", "answer": blend, "pins": pins(blend), "shown": shown(blend)},
    ]
    for change in CHANGES:
        bad, page = altered(blend, change)
        cases.append({"op": "answer", "answer": bad, "pins": pins(blend), "shown": page})
    other_log = Signer("test.traceledger.localhost/log", Ed25519PrivateKey.generate())
    cases.append(
        {"op": "answer", "answer": can, "pins": pins(can, logKeys=[other_log.verifier.encode()])}
    )
    witness = CosignatureSigner("w.example", Ed25519PrivateKey.generate()).verifier.encode()
    cases.append(
        {"op": "answer", "answer": can, "pins": pins(can, witnessKeys=[witness], quorum=1)}
    )
    results = run(cases)
    v2 = any("disclosures" in e for e in blend["events"])
    for answer, result in zip((can, blend), results, strict=False):
        # The blend's ILMD is confidential: its inclusion is proven, its content withheld
        # (version 1), or its other fields proven and the ILMD's digest withheld (2).
        assert result == {
            "ok": True,
            "records": len(answer["events"]),
            "withheld": 0 if v2 else 1,
            "witnesses": 0,
        }
    got = {change: r.get("code") for change, r in zip(CHANGES, results[2:], strict=False)}
    assert got == CHANGES
    assert results[-2]["code"] == "signature"  # pinned key of another log
    assert results[-1]["code"] == "witness"  # a pinned witness that did not cosign


async def test_an_answer_signed_by_the_ledger_names_its_log_key(client: Client) -> None:
    """The page pins the key the ledger is configured with, not the answer's."""
    await tell_story(client)
    page = await (await client.get(CAN_DL, headers={"Accept": "text/html"})).text()
    assert f'data-log-keys="{client.app[LEDGER].verifier.encode()}"' in page
