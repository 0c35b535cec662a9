"""Witness cosigning (c2sp.org/tlog-witness, c2sp.org/tlog-cosignature), end to end.

Real Ed25519 keys, real HTTP (aiohttp test servers on loopback), a real PostgreSQL for
the log side; the witness itself keeps a state file in its own home folder.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given
from hypothesis import strategies as st

from gateway.app import create_app
from gateway.keys import LEDGER
from gateway.witness_app import TLOG_SIZE, WITNESS, WitnessConfig, create_witness_app
from tests.conftest import ROOT
from tests.epcis_samples import document
from tests.ingest.test_capture import post, register
from tests.log.test_log import entry
from traceledger.audit.history_check import verify_history
from traceledger.errors import ConfigError, NoteError
from traceledger.log.cosigned import witness_names
from traceledger.log.logkey import load_or_create_log_key
from traceledger.log.witness import StateFile, Witness, parse_add_checkpoint
from traceledger.settings import Settings
from traceledger.tlog import merkle
from traceledger.tlog.checkpoint import Checkpoint, open_checkpoint, sign_checkpoint
from traceledger.tlog.cosignature import (
    Cosignature,
    CosignatureSigner,
    CosignatureVerifier,
    cosignature_key_hash,
    verified_cosignatures,
)
from traceledger.tlog.note import Signer, Verifier, b64encode
from traceledger.tlog.witness_policy import WitnessEndpoint, WitnessPolicy, parse_witnesses

Client = TestClient[web.Request, web.Application]
ORIGIN = "example.org/log"

# --- Known answers: a real checkpoint of a public CT log, cosigned by three public
# witnesses (as of 2026), whose verifier keys their operators publish.
REAL_BODY = (
    "arche2025h1.staging.ct.transparency.dev\n"
    "1432088532\n"
    "U7WM79jrzyhGZ5/GUBTpM7NzwdyfFx61t3RovgcC4Ro=\n"
)
GARDEN = "transparency.dev/DEV:witness-little-garden"
REAL_COSIGNATURES = {
    f"{GARDEN}+d8042a87+BCtusOxINQNUTN5Oj8HObRkh2yHf/MwYaGX4CPdiVEPM": (
        "— transparency.dev/DEV:witness-little-garden 2AQqhwAAAABqEiEgzgFIqqhbUoDwjMWE6UP8nd8/"
        "KYTzwZ2rhIgcqoXHAwVkjZr4AscylP3v7sEodkRAErumC2q44vdgJY096st5BQ=="
    ),
    "remora.n621.de+da77ade7+BOvN63jn/bLvkieywe8R6UYAtVtNbZpXh34x7onlmtw2": (
        "— remora.n621.de 2net5wAAAABqEiEgPlfF3V06o0Y+fHM+J5J9s27wgxxcOVSpZ/2g/KSiXCg9DEZI+aVCIo"
        "bWX9sXTynk5XeU/zZ0WBxtqB0DrAWfBw=="
    ),
    "witness.stagemole.eu+67f7aea0+BEqSG3yu9YrmcM3BHvQYTxwFj3uSWakQepafafpUqklv": (
        "— witness.stagemole.eu Z/euoAAAAABqEiEgw0i+7g2ENfDAWHmtRzCfKTHSDwYDJA2NmKeGi9Y8FtEyOUvVr"
        "+AJmIY/2TUFucgKi7lI7cUiOvKFYe/TmN9DAg=="
    ),
}
REAL_TIMESTAMP = 1779573024


def test_real_witness_keys_parse_with_their_published_key_ids() -> None:
    for vkey in REAL_COSIGNATURES:
        verifier = CosignatureVerifier.parse(vkey)
        assert verifier.encode() == vkey
    # The same public key as a plain signed-note key (type 0x01) has another key ID: the
    # type byte is hashed in, so a cosignature can never pass for a log signature.
    garden = GARDEN
    note_key = Verifier.parse(f"{garden}+4b7fca75+AStusOxINQNUTN5Oj8HObRkh2yHf/MwYaGX4CPdiVEPM")
    raw = note_key.public_key.public_bytes_raw()
    assert cosignature_key_hash(garden, raw).hex() == "d8042a87"
    with pytest.raises(NoteError):
        CosignatureVerifier.parse(f"{garden}+4b7fca75+AStusOxINQNUTN5Oj8HObRkh2yHf/MwYaGX4CPdiVEPM")


def test_real_cosignatures_verify_and_any_change_breaks_them() -> None:
    verifiers = [CosignatureVerifier.parse(v) for v in REAL_COSIGNATURES]
    log_line = (
        "— arche2025h1.staging.ct.transparency.dev ui8GwCF1+kWqZrxGdhj4aX3gcw7XUlXQQabg/27lefwh"
        "UkzbC3NygNI75MdhL1bfTW9g8Ei59RA23oHP7Ry1k3ZFWwQ=\n"
    )
    note = REAL_BODY + "\n" + log_line + "".join(f"{c}\n" for c in REAL_COSIGNATURES.values())
    found = verified_cosignatures(note, verifiers)
    assert [v for v, _ in found] == verifiers
    assert {c.timestamp for _, c in found} == {REAL_TIMESTAMP}
    assert witness_names(note) == sorted(v.name for v in verifiers)
    for (verifier, cosig), line in zip(found, REAL_COSIGNATURES.values(), strict=True):
        assert cosig.line() == line + "\n"  # parse and encode are exact inverses
        assert not verifier.verify(REAL_BODY.replace("1432088532", "1432088533"), cosig)
        later = dataclasses.replace(cosig, timestamp=cosig.timestamp + 1)
        assert not verifier.verify(REAL_BODY, later)
    with pytest.raises(NoteError, match="invalid cosignature"):
        verified_cosignatures(note.replace("1432088532", "1432088533"), verifiers)


names = st.text(
    st.characters(min_codepoint=0x21, max_codepoint=0x7E, exclude_characters="+"),
    min_size=1,
    max_size=40,
)


@given(
    name=names,
    key_hash=st.binary(min_size=4, max_size=4),
    timestamp=st.integers(0, 2**63 - 1),
    signature=st.binary(min_size=64, max_size=64),
)
def test_a_cosignature_line_parses_back_to_itself(
    name: str, key_hash: bytes, timestamp: int, signature: bytes
) -> None:
    cosig = Cosignature(name, key_hash, timestamp, signature)
    assert Cosignature.parse(cosig.line()) == cosig


SIGNER = CosignatureSigner("witness.example/w", Ed25519PrivateKey.generate())


@given(
    size=st.integers(0, 2**64 - 1),
    root=st.binary(min_size=32, max_size=32),
    extensions=st.lists(names, max_size=3),
    timestamp=st.integers(0, 2**63 - 1),
)
def test_a_cosignature_verifies_only_for_its_checkpoint_and_time(
    size: int, root: bytes, extensions: list[str], timestamp: int
) -> None:
    body = Checkpoint(ORIGIN, size, root, tuple(extensions)).body()
    cosig = SIGNER.cosign(body, timestamp)
    verifier = CosignatureVerifier.parse(SIGNER.verifier.encode())
    assert verifier.verify(body, Cosignature.parse(cosig.line()))
    other = Checkpoint(ORIGIN, size ^ 1, root, tuple(extensions)).body()
    assert not verifier.verify(other, cosig)
    assert not verifier.verify(body, dataclasses.replace(cosig, timestamp=timestamp ^ 1))


# --- An in-memory log to feed the witness.


class Tree:
    """Leaf hashes of a log, its roots and consistency proofs (from traceledger.tlog.merkle)."""

    def __init__(self, leaves: list[bytes]) -> None:
        self.hashes = [merkle.leaf_hash(leaf) for leaf in leaves]

    def root(self, size: int) -> bytes:
        return merkle.root_from_leaf_hashes(self.hashes[:size])

    def node(self, level: int, index: int) -> bytes:
        return merkle.root_from_leaf_hashes(self.hashes[index << level : (index + 1) << level])

    def proof(self, old: int, new: int) -> list[bytes]:
        if old in (0, new):
            return []
        return merkle.consistency_proof(old, new, self.node)


def leaves(n: int, tag: str = "") -> list[bytes]:
    return [f"entry {i}{tag}".encode() for i in range(n)]


LOG_KEY = Signer(ORIGIN, Ed25519PrivateKey.generate())


def note_for(tree: Tree, size: int, signer: Signer = LOG_KEY, origin: str = ORIGIN) -> str:
    return sign_checkpoint(Checkpoint(origin, size, tree.root(size)), signer)


def request(old: int, proof: list[bytes], note: str) -> bytes:
    return (f"old {old}\n" + "".join(b64encode(h) + "\n" for h in proof) + "\n" + note).encode()


def config(home: Path, name: str = "witness.example/w1") -> WitnessConfig:
    return WitnessConfig(home, name, {ORIGIN: [LOG_KEY.verifier]})


@pytest.fixture
async def witness(tmp_path: Path) -> AsyncIterator[Client]:
    async with TestClient(TestServer(create_witness_app(config(tmp_path / "w1")))) as client:
        yield client


async def add(client: Client, body: bytes) -> tuple[int, str, str]:
    response = await client.post("/add-checkpoint", data=body)
    return response.status, response.content_type, await response.text()


def verifier_of(client: Client) -> CosignatureVerifier:
    return client.app[WITNESS].signer.verifier


async def test_the_witness_cosigns_a_consistent_checkpoint_and_the_cosignature_verifies(
    witness: Client,
) -> None:
    tree = Tree(leaves(20))
    status, _, body = await add(witness, request(0, [], note_for(tree, 7)))
    assert status == 200, body
    verifier = verifier_of(witness)
    first = Cosignature.parse(body)
    assert verifier.verify(Checkpoint(ORIGIN, 7, tree.root(7)).body(), first)
    # Growing the tree with a proof from 7 is cosigned too; the cosigned note (the
    # checkpoint plus the returned line) verifies for the log and for the witness.
    note = note_for(tree, 20)
    status, _, body = await add(witness, request(7, tree.proof(7, 20), note))
    assert status == 200, body
    cosigned = note + body
    assert open_checkpoint(cosigned, LOG_KEY.verifier, ORIGIN).size == 20
    assert [v for v, _ in verified_cosignatures(cosigned, [verifier])] == [verifier]
    # The same checkpoint again (old = its size, empty proof) is cosigned afresh.
    status, _, _ = await add(witness, request(20, [], note))
    assert status == 200


async def test_a_bad_consistency_proof_is_422_and_a_same_size_fork_is_409(
    witness: Client,
) -> None:
    tree, fork = Tree(leaves(16)), Tree(leaves(16, "forked"))
    assert (await add(witness, request(0, [], note_for(tree, 5))))[0] == 200
    proof = tree.proof(5, 16)
    proof[0] = bytes(32)
    status, ctype, body = await add(witness, request(5, proof, note_for(tree, 16)))
    assert (status, ctype) == (422, "application/problem+json")
    assert json.loads(body)["type"] == "/problems/witness-bad-proof"
    # A correctly signed fork: its own valid-looking proof does not lead to our size-5 root.
    status, _, _ = await add(witness, request(5, fork.proof(5, 16), note_for(fork, 16)))
    assert status == 422
    # Same size, different root: a conflict, and the body is the size the witness holds.
    assert await add(witness, request(5, [], note_for(fork, 5))) == (409, TLOG_SIZE, "5\n")
    # Nothing of that was recorded: the honest tree still extends from 5.
    assert (await add(witness, request(5, tree.proof(5, 16), note_for(tree, 16))))[0] == 200


async def test_unsigned_wrongly_signed_and_unknown_logs_are_refused(witness: Client) -> None:
    tree = Tree(leaves(4))
    impostor = Signer(ORIGIN, Ed25519PrivateKey.generate())
    status, _, body = await add(witness, request(0, [], note_for(tree, 4, impostor)))
    assert status == 403
    assert json.loads(body)["type"] == "/problems/witness-forbidden"
    # A known key whose signature does not verify is refused too, not ignored.
    good = note_for(tree, 4)
    bad_sig = good[:-10] + ("A" if good[-10] != "A" else "B") + good[-9:]
    assert (await add(witness, request(0, [], bad_sig)))[0] == 403
    # An origin the witness does not watch: 404, as c2sp.org/tlog-witness prescribes.
    other = Signer("other.example/log", Ed25519PrivateKey.generate())
    status, _, body = await add(witness, request(0, [], note_for(tree, 4, other, other.name)))
    assert status == 404
    assert json.loads(body)["type"] == "/problems/witness-unknown-log"


async def test_a_stale_old_size_is_409_with_the_witnessed_size(witness: Client) -> None:
    tree = Tree(leaves(30))
    assert (await add(witness, request(0, [], note_for(tree, 10))))[0] == 200
    assert await add(witness, request(0, [], note_for(tree, 30))) == (409, TLOG_SIZE, "10\n")
    response = await witness.post("/add-checkpoint", data=request(0, [], note_for(tree, 30)))
    assert response.headers["Content-Type"] == "text/x.tlog.size"  # exactly, no charset
    assert await add(witness, request(4, tree.proof(4, 30), note_for(tree, 30))) == (
        409,
        TLOG_SIZE,
        "10\n",
    )
    # A client that was told 10 gets its cosignature from there.
    assert (await add(witness, request(10, tree.proof(10, 30), note_for(tree, 30))))[0] == 200


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"old 0\n",  # no blank line, no checkpoint
        b"old 01\n\n",  # leading zero
        b"new 0\n\n",
        b"old 0\nnot base64!\n\n",
        b"old 0\n" + b"AAAA\n" + b"\n",  # not 32 bytes
        b"old 0\n" + b"".join(b64encode(bytes(32)).encode() + b"\n" for _ in range(64)) + b"\n",
        b"old 0\n\n\xff\xfe",
        b"old 0\n\nexample.org/log\n1\nnot a root\n\n",
    ],
)
async def test_malformed_requests_are_400(witness: Client, body: bytes) -> None:
    status, ctype, _ = await add(witness, body)
    assert (status, ctype) == (400, "application/problem+json")


async def test_an_old_size_beyond_the_checkpoint_is_400(witness: Client) -> None:
    tree = Tree(leaves(3))
    assert (await add(witness, request(5, [], note_for(tree, 3))))[0] == 400


def test_request_parsing_keeps_the_note_whole() -> None:
    tree = Tree(leaves(9))
    note = note_for(tree, 9)
    parsed = parse_add_checkpoint(request(3, tree.proof(3, 9), note))
    assert (parsed.old_size, list(parsed.proof), parsed.note) == (3, tree.proof(3, 9), note)


async def test_the_witness_state_survives_a_restart_and_one_process_owns_it(
    tmp_path: Path,
) -> None:
    home = tmp_path / "w"
    tree = Tree(leaves(12))
    async with TestClient(TestServer(create_witness_app(config(home)))) as first:
        assert (await add(first, request(0, [], note_for(tree, 8))))[0] == 200
        key = verifier_of(first)
        with (
            pytest.raises(ConfigError, match="another witness process"),
            Witness.open(home, "witness.example/w1", {}),
        ):
            pass
    state = json.loads((home / "state.json").read_text())
    assert state["logs"][ORIGIN]["size"] == 8
    assert StateFile(home / "state.json").load()[ORIGIN].root_hash == tree.root(8)
    async with TestClient(TestServer(create_witness_app(config(home)))) as again:
        assert verifier_of(again) == key  # same key
        # It remembers size 8: a request from 0 (e.g. a fork it never saw) is refused.
        assert await add(again, request(0, [], note_for(tree, 12))) == (409, TLOG_SIZE, "8\n")
        assert (await add(again, request(8, tree.proof(8, 12), note_for(tree, 12))))[0] == 200


async def test_concurrent_requests_never_roll_the_state_back(witness: Client) -> None:
    tree = Tree(leaves(40))
    assert (await add(witness, request(0, [], note_for(tree, 1))))[0] == 200
    sizes = range(2, 40)
    results = await asyncio.gather(
        *(add(witness, request(1, tree.proof(1, n), note_for(tree, n))) for n in sizes)
    )
    assert [r[0] for r in results].count(200) == 1  # only the first to arrive wins
    winner = next(n for n, r in zip(sizes, results, strict=True) if r[0] == 200)
    assert all(r == (409, TLOG_SIZE, f"{winner}\n") for r in results if r[0] != 200)


def test_the_witness_cli_prints_its_verifier_key(tmp_path: Path) -> None:
    home = tmp_path / "cli-witness"
    run = [sys.executable, "-m", "gateway.cli.main", "witness", "key"]
    args = ["--witness-home", str(home), "--name", "witness.example/cli"]
    out = subprocess.run([*run, *args], cwd=ROOT, capture_output=True, text=True, check=True)
    verifier = CosignatureVerifier.parse(out.stdout.strip())
    assert verifier.name == "witness.example/cli"
    again = subprocess.run([*run, *args], cwd=ROOT, capture_output=True, text=True, check=True)
    assert again.stdout == out.stdout  # the key is created once, then kept
    assert (home / "witness-key.pem").stat().st_mode & 0o777 == 0o600


def test_witness_settings_are_read_and_checked() -> None:
    a, b = (CosignatureSigner(f"w{i}.example", Ed25519PrivateKey.generate()) for i in (1, 2))
    env = {
        "TRACELEDGER_WITNESSES": f"http://a:1={a.verifier.encode()}, https://b/x/={b.verifier.encode()}",
        "TRACELEDGER_WITNESS_QUORUM": "1",
    }
    settings = Settings.from_env(env)
    policy = settings.witness_policy
    assert policy is not None
    assert policy.quorum == 1
    assert [w.url for w in policy.witnesses] == ["http://a:1", "https://b/x"]
    assert Settings.from_env({}).witness_policy is None
    with pytest.raises(ConfigError, match="quorum"):
        Settings.from_env({**env, "TRACELEDGER_WITNESS_QUORUM": "3"})
    with pytest.raises(ConfigError):
        parse_witnesses(f"a={a.verifier.encode()}")  # not a URL
    with pytest.raises(ConfigError):
        parse_witnesses(f"http://a={LOG_KEY.verifier.encode()}")  # a log key, not a witness key


# --- The log side: a ledger with two witnesses.


@dataclasses.dataclass
class RunningWitness:
    client: Client
    url: str
    verifier: CosignatureVerifier


@pytest.fixture
async def witnesses(tmp_path: Path, settings: Settings) -> AsyncIterator[list[RunningWitness]]:
    # The log's key exists before the ledger starts, so the witnesses can be told it.
    signer = Signer(settings.origin, load_or_create_log_key(settings.log_key_file))
    running = []
    async with contextlib.AsyncExitStack() as stack:
        for n in (1, 2):
            cfg = WitnessConfig(
                tmp_path / f"witness{n}",
                f"witness{n}.example",
                {settings.origin: [signer.verifier]},
            )
            client = await stack.enter_async_context(
                TestClient(TestServer(create_witness_app(cfg)))
            )
            running.append(
                RunningWitness(client, str(client.make_url("")).rstrip("/"), verifier_of(client))
            )
        yield running


def witnessed(settings: Settings, ws: list[RunningWitness], quorum: int) -> Settings:
    endpoints = tuple(WitnessEndpoint(w.url, w.verifier) for w in ws)
    return dataclasses.replace(settings, witnesses=endpoints, witness_quorum=quorum)


async def eventually(check: Callable[[], Any], within: float = 20.0) -> Any:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + within
    while True:
        result = await check()
        if result:
            return result
        if loop.time() > deadline:
            raise TimeoutError("condition not met in time")
        await asyncio.sleep(0.05)


async def test_the_log_serves_a_checkpoint_cosigned_by_its_quorum(
    settings: Settings, witnesses: list[RunningWitness]
) -> None:
    config2 = witnessed(settings, witnesses, quorum=2)
    async with TestClient(TestServer(create_app(config2))) as client:
        ledger = client.app[LEDGER]
        await ledger.sequencer.append([entry(i) for i in range(5)])

        async def cosigned(size: int) -> str | None:
            response = await client.get("/checkpoint")
            text = await response.text()
            if response.status != 200:
                return None
            return text if Checkpoint.parse(text.split("\n\n")[0] + "\n").size >= size else None

        note = await eventually(lambda: cosigned(5))
        cp = open_checkpoint(note, ledger.verifier, settings.origin)
        found = verified_cosignatures(note, [w.verifier for w in witnesses])
        assert sorted(v.name for v, _ in found) == ["witness1.example", "witness2.example"]
        # More entries: each witness gets a consistency proof from where it stands.
        await ledger.sequencer.append([entry(i) for i in range(5, 40)])
        note = await eventually(lambda: cosigned(40))
        assert open_checkpoint(note, ledger.verifier).size == 40 > cp.size
        assert len(verified_cosignatures(note, [w.verifier for w in witnesses])) == 2
        # Proofs served are against the cosigned checkpoint.
        response = await client.get("/v1/log")
        assert (await response.json())["treeSize"] == 40


async def test_without_quorum_the_last_witnessed_checkpoint_stays_served(
    settings: Settings, witnesses: list[RunningWitness]
) -> None:
    async with TestClient(TestServer(create_app(witnessed(settings, witnesses, 2)))) as client:
        ledger = client.app[LEDGER]
        await ledger.sequencer.append([entry(i) for i in range(3)])

        async def served() -> str | None:
            response = await client.get("/checkpoint")
            return await response.text() if response.status == 200 else None

        async def served_at_three() -> str | None:
            # The empty tree's checkpoint may be cosigned first; wait for the appended 3.
            note = await served()
            return note if note and open_checkpoint(note, ledger.verifier).size == 3 else None

        witnessed_note = await eventually(served_at_three)
        await witnesses[1].client.close()  # one witness goes away: 1 of 2 left
        await ledger.sequencer.append([entry(i) for i in range(3, 10)])
        async with ledger.pool.acquire() as conn:
            await eventually(
                lambda: conn.fetchval(
                    "SELECT count(*) FROM cosignatures WHERE size = 10"
                )  # witness1 cosigned the new checkpoint, witness2 could not
            )
        # Not served: only 1 of the 2 required witnesses vouches for size 10.
        assert await served() == witnessed_note
        response = await client.get("/v1/log")
        assert (await response.json())["treeSize"] == 3


async def test_before_any_quorum_the_checkpoint_is_not_served(
    settings: Settings, tmp_path: Path
) -> None:
    # A witness that is configured but never answers (nothing listens on its port).
    absent = CosignatureSigner("absent.example", Ed25519PrivateKey.generate())
    config2 = dataclasses.replace(
        settings, witnesses=(WitnessEndpoint("http://127.0.0.1:9", absent.verifier),)
    )
    async with TestClient(TestServer(create_app(config2))) as client:
        ledger = client.app[LEDGER]
        await ledger.sequencer.append([entry(1)])
        async with ledger.pool.acquire() as conn:
            await eventually(lambda: conn.fetchval("SELECT count(*) FROM checkpoints"))
        response = await client.get("/checkpoint")
        assert response.status == 404
        assert "cosigned by 1 of the 1 witnesses" in (await response.json())["detail"]


DAIRY = "9421234"
CAN = f"urn:epc:id:sgtin:{DAIRY}.012345.CAN1"
CAN_DL = "/01/09421234123456/21/CAN1"


async def test_a_lookup_names_the_witnesses_that_vouch_for_its_checkpoint(
    settings: Settings, witnesses: list[RunningWitness]
) -> None:
    async with TestClient(TestServer(create_app(witnessed(settings, witnesses, 2)))) as client:
        dairy = await register(client, "Canterbury Dairy", [DAIRY])
        commission = {
            "type": "ObjectEvent",
            "eventTime": "2026-09-01T08:00:00+08:00",
            "eventTimeZoneOffset": "+08:00",
            "action": "ADD",
            "bizStep": "commissioning",
            "disposition": "active",
            "epcList": [CAN],
        }
        assert (await post(client, document(commission), dairy))[0] == 201

        async def looked_up() -> dict[str, Any] | None:
            response = await client.get(CAN_DL, headers={"Accept": "application/json"})
            if response.status != 200:
                return None
            body: dict[str, Any] = await response.json()
            return body if body["events"] else None

        h = await eventually(looked_up)
        assert h["witnesses"] == ["witness1.example", "witness2.example"]
        verifiers = [w.verifier for w in witnesses]
        assert len(verified_cosignatures(h["checkpoint"], verifiers)) == 2
        assert not verify_history(h, Verifier.parse(h["verifierKey"])).failures


def test_a_checkpoint_signed_only_by_the_log_names_no_witness() -> None:
    assert witness_names(note_for(Tree(leaves(1)), 1)) == []
    assert witness_names("not a note") == []


def test_a_policy_needs_sensible_numbers() -> None:
    w = WitnessEndpoint("http://w", SIGNER.verifier)
    with pytest.raises(ConfigError):
        WitnessPolicy((w,), 0)
    with pytest.raises(ConfigError):
        WitnessPolicy((w, w), 1)  # the same witness twice
    assert WitnessPolicy.of((w,), None) == WitnessPolicy((w,), 1)
