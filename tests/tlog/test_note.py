"""Signed notes (c2sp.org/signed-note) and checkpoints (c2sp.org/tlog-checkpoint).

Known answers come from the reference implementation and from real logs; an independent
verifier written here from the spec text checks what our signer produces.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable

import pytest
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from hypothesis import given, settings
from hypothesis import strategies as st

from traceledger.errors import NoteError
from traceledger.tlog.checkpoint import (
    MAX_TREE_SIZE,
    Checkpoint,
    open_checkpoint,
    sign_checkpoint,
)
from traceledger.tlog.note import (
    MAX_NOTE_SIZE,
    Note,
    Signature,
    Signer,
    Verifier,
    key_hash,
    open_note,
    parse_note,
    sign_note,
    verifier_key,
)

# ---------------------------------------------------------------------------------------
# Known-answer vectors.
#
# From golang.org/x/mod sumdb/note/note_test.go (github.com/golang/mod, commit
# 02c991387e35f9e4c0a9b7ce137717055f8d716d), TestNewVerifier, TestSign, TestOpen.
PETER_VKEY = "PeterNeumann+c74f20a3+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
PETER_SKEY = "PRIVATE+KEY+PeterNeumann+c74f20a3+AYEKFALVFGyNhPJEMzD1QIDr+Y7hfZx09iUvxdXHKDFz"
ENOCH_VKEY = "EnochRoot+af0cfe78+ATtqJ7zOtqQtYqOo0CpvDXNlMhV3HeJDpjrASKGLWdop"
PETER_TEXT = (
    "If you think cryptography is the answer to your problem,\n"
    "then you don't know what your problem is.\n"
)
PETER_SIG = (
    "— PeterNeumann x08go/ZJkuBS9UG/SffcvIAQxVBtiFupLLr8pAcElZInNIuGUgYN1FFYC2pZSNXgKvqfqdngot"
    "pRZb6KE6RyyBwJnAM=\n"
)
ENOCH_SIG = (
    "— EnochRoot rwz+eBzmZa0SO3NbfRGzPCpDckykFXSdeX+MNtCOXm2/5n2tiOHp+vAF1aGrQ5ovTG01oOTGwnWLox"
    "33WWd1RvMc+QQ=\n"
)
PETER_NOTE = PETER_TEXT + "\n" + PETER_SIG

# The key Go pins for sum.golang.org: golang/go src/cmd/go/internal/modfetch/key.go
# (commit c674ce87c2e47699bb51e02885fb80519ecbfb27).
SUMDB_VKEY = "sum.golang.org+033de0ae+Ac4zctda0e5eza+HJyk9SxEdh+s3Ux18htTTAD8OuAn8"
# A real checkpoint signed by sum.golang.org, from google/trillian-examples
# formats/log/checkpoint_test.go, TestSumDBNoteParsing (commit
# 57e46b591fbc539f5649e916fb787cec992259ce).
SUMDB_NOTE = (
    "go.sum database tree\n"
    "6476701\n"
    "mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk=\n"
    "\n"
    "— sum.golang.org Az3grsLX85Gz+s1SiTbgkuqxgItqFq7gsMUEyVnrsa9LM7Us9S+1xbFIGu95949rj4nPRYfvi"
    "mWEPWL+o3GeoWwOoAw=\n"
)

# The examples at the top of the C2SP specs (github.com/C2SP/C2SP signed-note.md and
# tlog-checkpoint.md). Their public keys are not published, so they are parse-only.
C2SP_NOTE_EXAMPLE = (
    "Ognuno sta solo sul cuor della terra\n"
    "trafitto da un raggio di sole:\n"
    "\n"
    "ed è subito sera.\n"
    "\n"
    "— quasimodo.example/salvatore NnugSzTjtVAewIS+Z/iJhUPeFDkO/5QQ2i5ddnGITLlC+EhfLW9oJKONrMou"
    "FSQU0xMcXxj99ihAQwaqP3ZekRwNtIc=\n"
)
C2SP_CHECKPOINT_EXAMPLE = (
    "example.com/behind-the-sofa\n"
    "20852163\n"
    "CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=\n"
    "\n"
    "— example.com/behind-the-sofa Az3grlgtzPICa5OS8npVmf1Myq/5IZniMp+ZJurmRDeOoRDe4URYN7u5/Zhc"
    "yv2q1gGzGku9nTo+zyWE+xeMcTOAYQ8=\n"
)


def peter_signer() -> Signer:
    """The Go test's private key: base64(0x01 || 32-byte Ed25519 seed) after the key hash."""
    raw = base64.b64decode(PETER_SKEY.split("+", 4)[4])
    assert raw[0] == 0x01
    return Signer("PeterNeumann", Ed25519PrivateKey.from_private_bytes(raw[1:]))


def fresh_signer(name: str = "log.example/test") -> Signer:
    return Signer(name, Ed25519PrivateKey.generate())


ROOT = hashlib.sha256(b"some root").digest()


# ---------------------------------------------------------------------------------------
# An independent verifier, written from the text of c2sp.org/signed-note alone. It uses
# only hashlib, base64 and cryptography, never traceledger.


def spec_key_id(name: str, public_key: bytes) -> bytes:
    """key ID = SHA-256(key name || 0x0A || 0x01 || 32-byte Ed25519 public key)[:4]"""
    return hashlib.sha256(name.encode("utf-8") + b"\x0a" + b"\x01" + public_key).digest()[:4]


def spec_verify(note: str, name: str, public_key: bytes) -> bool:
    """Whether `note` is well formed and carries a valid signature by (name, public_key).

    Malformed notes fail an assertion; a signature line by the key that does not verify,
    or no such line at all, answers False.
    """
    data = note.encode("utf-8")  # "Signed notes MUST be valid UTF-8"
    # "... and MUST NOT contain any ASCII control characters other than newline" (bytes
    # >= 0x80 belong to multi-byte UTF-8 sequences, so a byte-wise check suffices).
    assert all(b >= 0x20 or b == 0x0A for b in data)
    # "the text is separated from the signatures by the last empty line in the note"
    split = data.rindex(b"\n\n")
    text, block = data[: split + 1], data[split + 2 :]
    assert text.endswith(b"\n")
    assert block.endswith(b"\n")
    key_id = spec_key_id(name, public_key)
    found = False
    for line in block[:-1].split(b"\n"):
        prefix = "\u2014 ".encode()  # em dash (U+2014), space (U+0020)
        assert line.startswith(prefix)
        line_name, space, b64 = line[len(prefix) :].partition(b" ")
        assert space
        raw = base64.b64decode(b64, validate=True)  # "4+n bytes"
        if line_name != name.encode("utf-8") or raw[:4] != key_id:
            continue  # "Verifiers MUST ignore signatures from unknown keys"
        try:
            Ed25519PublicKey.from_public_bytes(public_key).verify(raw[4:], text)
        except InvalidSignature:
            return False
        found = True
    return found


def spec_checkpoint_text(origin: str, size: int, root: bytes, *extensions: str) -> str:
    """c2sp.org/tlog-checkpoint: origin, decimal size, base64 root, extension lines."""
    return "".join(
        line + "\n" for line in (origin, str(size), base64.b64encode(root).decode(), *extensions)
    )


def raw_public(signer: Signer) -> bytes:
    return signer.private_key.public_key().public_bytes_raw()


# ---------------------------------------------------------------------------------------
# Known answers: golang.org/x/mod/sumdb/note.


def test_peter_neumann_verifier_key_parses_to_its_name_hash_and_key() -> None:
    v = Verifier.parse(PETER_VKEY)
    assert v.name == "PeterNeumann"
    assert v.key_hash == bytes.fromhex("c74f20a3")
    assert v.public_key.public_bytes_raw() == base64.b64decode(PETER_VKEY.split("+", 2)[2])[1:]
    assert v.encode() == PETER_VKEY
    assert verifier_key(v.name, v.public_key) == PETER_VKEY


def test_key_hash_matches_the_known_key_ids() -> None:
    for vkey in (PETER_VKEY, ENOCH_VKEY, SUMDB_VKEY):
        name, hash16, key64 = vkey.split("+", 2)
        public = base64.b64decode(key64)[1:]
        assert key_hash(name, public) == bytes.fromhex(hash16)
        assert spec_key_id(name, public) == bytes.fromhex(hash16)


def test_private_key_of_the_go_vector_derives_the_published_verifier() -> None:
    assert peter_signer().verifier == Verifier.parse(PETER_VKEY)
    assert peter_signer().verifier.encode() == PETER_VKEY


def test_every_proper_substring_of_the_verifier_key_is_rejected() -> None:
    # TestNewVerifier: every b[i:j] other than the whole key fails.
    for i in range(len(PETER_VKEY) + 1):
        for j in range(i + 1, len(PETER_VKEY) + 1):
            if (i, j) == (0, len(PETER_VKEY)):
                continue
            with pytest.raises(NoteError):
                Verifier.parse(PETER_VKEY[i:j])


def test_every_single_character_increment_of_the_verifier_key_is_rejected() -> None:
    for i, c in enumerate(PETER_VKEY):
        mangled = PETER_VKEY[:i] + chr(ord(c) + 1) + PETER_VKEY[i + 1 :]
        with pytest.raises(NoteError):
            Verifier.parse(mangled)


def test_wrong_length_or_unknown_type_keys_are_rejected_even_with_a_matching_hash() -> None:
    wrong_length = "PeterNeumann+cc469956+ARpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TWBADKEY=="
    unknown_type = "PeterNeumann+173116ae+ZRpc2QcUPDhMQegwxbzhKqiBfsVkmqq/LDE4izWy10TW"
    for vkey in (wrong_length, unknown_type):
        with pytest.raises(NoteError):
            Verifier.parse(vkey)


def test_signing_the_known_text_with_the_known_key_gives_the_byte_identical_note() -> None:
    # TestSign: Ed25519 is deterministic, so the whole note is a known answer.
    assert sign_note(PETER_TEXT, peter_signer()) == PETER_NOTE


def test_the_known_note_opens_with_the_known_verifier() -> None:
    peter = Verifier.parse(PETER_VKEY)
    note, signed = open_note(PETER_NOTE, [peter])
    assert note.text == PETER_TEXT
    assert signed == [peter]
    assert note.signatures == (
        Signature(
            "PeterNeumann",
            bytes.fromhex("c74f20a3"),
            base64.b64decode(PETER_SIG.split()[2])[4:],
        ),
    )


def test_the_known_note_passes_the_independent_spec_verifier() -> None:
    public = Verifier.parse(PETER_VKEY).public_key.public_bytes_raw()
    assert spec_verify(PETER_NOTE, "PeterNeumann", public)
    assert not spec_verify(PETER_NOTE, "EnochRoot", public)


def test_known_doubly_signed_note_reports_only_the_trusted_signers() -> None:
    # TestOpen: "one signature verified, one not", then "both verified".
    peter, enoch = Verifier.parse(PETER_VKEY), Verifier.parse(ENOCH_VKEY)
    signed_note = PETER_TEXT + "\n" + PETER_SIG + ENOCH_SIG
    note, signed = open_note(signed_note, [peter])
    assert signed == [peter]
    assert [s.name for s in note.signatures] == ["PeterNeumann", "EnochRoot"]
    _, signed = open_note(signed_note, [enoch, peter])
    assert signed == [peter, enoch]


def test_known_note_without_a_trusted_signer_is_rejected() -> None:
    with pytest.raises(NoteError, match="no verifiable signatures"):
        open_note(PETER_TEXT + "\n" + PETER_SIG + ENOCH_SIG, [])


def test_known_note_with_a_corrupted_signature_from_a_known_key_is_rejected() -> None:
    # TestOpen "Invalid signature": four base64 characters spliced into the signature.
    bad = PETER_TEXT + "\n" + PETER_SIG[:60] + "ABCD" + PETER_SIG[60:]
    with pytest.raises(NoteError, match="invalid signature for key PeterNeumann\\+c74f20a3"):
        open_note(bad, [Verifier.parse(PETER_VKEY)])


def test_repeated_and_unknown_signature_lines_do_not_hide_the_valid_one() -> None:
    # TestOpen "Duplicated verified and unverified signatures".
    enoch_abcd = ENOCH_SIG[:60] + "ABCD" + ENOCH_SIG[60:]
    signed_note = PETER_TEXT + "\n" + PETER_SIG + PETER_SIG + ENOCH_SIG + ENOCH_SIG + enoch_abcd
    peter = Verifier.parse(PETER_VKEY)
    note, signed = open_note(signed_note, [peter])
    assert signed == [peter]
    assert len(note.signatures) == 5


def test_identical_duplicate_verifiers_are_one_key_not_an_ambiguity() -> None:
    peter, enoch = Verifier.parse(PETER_VKEY), Verifier.parse(ENOCH_VKEY)
    _, signed = open_note(PETER_TEXT + "\n" + ENOCH_SIG, [enoch, peter, enoch])
    assert signed == [enoch]


def test_exactly_100_signatures_are_accepted_and_101_rejected() -> None:
    # TestOpen "too many signatures": the reference implementation's limit is 100.
    peter = Verifier.parse(PETER_VKEY)
    _, signed = open_note(PETER_TEXT + "\n" + PETER_SIG * 100, [peter])
    assert signed == [peter]
    for verifiers in ([peter], []):
        with pytest.raises(NoteError, match="more than 100"):
            open_note(PETER_TEXT + "\n" + PETER_SIG * 101, verifiers)
    with pytest.raises(NoteError):
        sign_note(PETER_TEXT, *[peter_signer()] * 101)


@pytest.mark.parametrize(
    "bad",
    [
        PETER_TEXT,
        PETER_TEXT + "\n",
        PETER_TEXT + "\n" + PETER_SIG[:-1],
        "\x01" + PETER_TEXT + "\n" + PETER_SIG,
        # Go's "\xff" (invalid UTF-8): a str holds invalid UTF-8 as a lone surrogate.
        "\udcff" + PETER_TEXT + "\n" + PETER_SIG,
        PETER_TEXT + "\n" + "— Bad Name " + PETER_SIG.split()[2],
        PETER_TEXT + "\n" + PETER_SIG + "Unexpected line.\n",
    ],
    ids=[
        "no-signatures",
        "blank-line-only",
        "no-final-newline",
        "control-character",
        "invalid-utf8",
        "name-with-space",
        "trailing-line",
    ],
)
def test_malformed_notes_from_the_reference_tests_are_rejected(bad: str) -> None:
    with pytest.raises(NoteError):
        parse_note(bad)
    with pytest.raises(NoteError):
        open_note(bad, [Verifier.parse(PETER_VKEY)])


def test_signature_line_renamed_or_with_another_hash_is_ignored_not_trusted() -> None:
    # TestOpen: a misnamed signature and a wrong key hash are unknown keys.
    peter = Verifier.parse(PETER_VKEY)
    misnamed = PETER_SIG.replace("PeterNeumann", "CarmenSandiego")
    wrong_hash = PETER_SIG.replace("x08g", "xxxx")
    for sig in (misnamed, wrong_hash):
        note = parse_note(PETER_TEXT + "\n" + sig)  # well formed...
        assert len(note.signatures) == 1
        with pytest.raises(NoteError, match="no verifiable signatures"):
            open_note(PETER_TEXT + "\n" + sig, [peter])  # ...but not by a trusted key


# ---------------------------------------------------------------------------------------
# Known answers: real and specified checkpoints.


def test_real_sum_golang_org_checkpoint_verifies_with_the_key_go_pins() -> None:
    cp = open_checkpoint(SUMDB_NOTE, Verifier.parse(SUMDB_VKEY), "go.sum database tree")
    assert cp == Checkpoint(
        "go.sum database tree",
        6476701,
        base64.b64decode("mb8QLQIs0Z0yP5Cstq6guj87oXWeC9gEM8oVikmm9Wk="),
    )
    public = Verifier.parse(SUMDB_VKEY).public_key.public_bytes_raw()
    assert spec_verify(SUMDB_NOTE, "sum.golang.org", public)


def test_real_checkpoint_with_the_wrong_expected_origin_is_rejected() -> None:
    with pytest.raises(NoteError, match="origin"):
        open_checkpoint(SUMDB_NOTE, Verifier.parse(SUMDB_VKEY), "Go rocks but wrong ID")


def test_real_checkpoint_with_one_changed_digit_is_rejected() -> None:
    tampered = SUMDB_NOTE.replace("6476701", "6476702")
    with pytest.raises(NoteError, match="invalid signature"):
        open_checkpoint(tampered, Verifier.parse(SUMDB_VKEY))


def test_c2sp_checkpoint_example_parses_and_its_unknown_signer_is_not_trusted() -> None:
    note = parse_note(C2SP_CHECKPOINT_EXAMPLE)
    cp = Checkpoint.parse(note.text)
    assert cp.origin == "example.com/behind-the-sofa"
    assert cp.size == 20852163
    assert cp.root_hash == base64.b64decode("CsUYapGGPo4dkMgIAUqom/Xajj7h2fB2MPA3j2jxq2I=")
    assert cp.extensions == ()
    assert cp.body() == note.text
    # Same key ID as sum.golang.org but another name: an unknown key, ignored.
    assert note.signatures[0].key_hash == bytes.fromhex("033de0ae")
    with pytest.raises(NoteError, match="no verifiable signatures"):
        open_checkpoint(C2SP_CHECKPOINT_EXAMPLE, Verifier.parse(SUMDB_VKEY))


def test_c2sp_note_example_splits_at_the_last_blank_line() -> None:
    note = parse_note(C2SP_NOTE_EXAMPLE)
    assert note.text == (
        "Ognuno sta solo sul cuor della terra\ntrafitto da un raggio di sole:\n\n"
        "ed è subito sera.\n"
    )
    assert [s.name for s in note.signatures] == ["quasimodo.example/salvatore"]
    assert len(note.signatures[0].signature) == 64


def test_checkpoint_body_matches_the_spec_layout() -> None:
    cp = Checkpoint("example.com/log42", 20852163, ROOT, ("ext one", "ext two"))
    assert cp.body() == spec_checkpoint_text("example.com/log42", 20852163, ROOT, *cp.extensions)
    assert Checkpoint("o", 0, ROOT).body() == f"o\n0\n{base64.b64encode(ROOT).decode()}\n"


# ---------------------------------------------------------------------------------------
# Our signer, checked by the independent verifier.


def test_signed_checkpoint_from_a_fresh_key_passes_the_independent_verifier() -> None:
    signer = fresh_signer("ledger.example.org/log")
    cp = Checkpoint("ledger.example.org/log", 12345, ROOT)
    note = sign_checkpoint(cp, signer)
    assert note.startswith(spec_checkpoint_text("ledger.example.org/log", 12345, ROOT) + "\n")
    assert spec_verify(note, "ledger.example.org/log", raw_public(signer))
    assert open_checkpoint(note, signer.verifier, "ledger.example.org/log") == cp


def test_independent_verifier_rejects_another_key_so_its_agreement_means_something() -> None:
    signer, other = fresh_signer(), fresh_signer()
    note = sign_checkpoint(Checkpoint("o", 1, ROOT), signer)
    assert not spec_verify(note, signer.name, raw_public(other))
    assert not spec_verify(note.replace("o\n1\n", "o\n2\n", 1), signer.name, raw_public(signer))


def test_note_signed_by_several_fresh_keys_verifies_for_each_independently() -> None:
    signers = [fresh_signer(f"witness{i}.example") for i in range(3)]
    note = sign_note("hello\n\nworld\n", *signers)
    for s in signers:
        assert spec_verify(note, s.name, raw_public(s))
    _, signed = open_note(note, [s.verifier for s in reversed(signers)])
    assert signed == [s.verifier for s in signers]


# ---------------------------------------------------------------------------------------
# Tampering.


def test_changing_any_single_character_of_the_signed_text_is_rejected() -> None:
    signer = fresh_signer()
    cp = Checkpoint("log.example/test", 987654321, ROOT, ("extension",))
    note = sign_checkpoint(cp, signer)
    text_length = len(cp.body())
    for i in range(text_length):
        flipped = chr(ord(note[i]) ^ 0x01)
        tampered = note[:i] + flipped + note[i + 1 :]
        with pytest.raises(NoteError):
            open_checkpoint(tampered, signer.verifier)


def test_note_checked_against_another_key_with_the_same_name_is_rejected() -> None:
    signer = fresh_signer("log.example/test")
    note = sign_checkpoint(Checkpoint("log.example/test", 1, ROOT), signer)
    with pytest.raises(NoteError, match="no verifiable signatures"):
        open_checkpoint(note, fresh_signer("log.example/test").verifier)


def test_note_checked_against_the_same_key_under_another_name_is_rejected() -> None:
    signer = fresh_signer("log.example/test")
    note = sign_checkpoint(Checkpoint("log.example/test", 1, ROOT), signer)
    renamed = Signer("log.example/other", signer.private_key).verifier
    with pytest.raises(NoteError, match="no verifiable signatures"):
        open_checkpoint(note, renamed)


def test_truncated_signature_is_rejected() -> None:
    signer = fresh_signer()
    note = sign_note("text\n", signer)
    body, sig_line = note[:-1].rsplit("\n", 1)
    for cut in (1, 2, 4, 8, 80):
        with pytest.raises(NoteError):
            open_note(body + "\n" + sig_line[:-cut] + "\n", [signer.verifier])


def test_an_invalid_line_from_a_known_key_rejects_the_note_despite_a_valid_one() -> None:
    signer = fresh_signer()
    note = sign_note("text\n", signer)
    bad_line = sign_note("other text\n", signer).split("\n\n")[1]
    with pytest.raises(NoteError, match="invalid signature"):
        open_note(note + bad_line, [signer.verifier])


def test_unknown_signers_are_ignored_but_do_not_make_a_note_valid() -> None:
    log, witness = fresh_signer("log.example"), fresh_signer("witness.example")
    cp = Checkpoint("log.example", 7, ROOT)
    both = sign_note(cp.body(), log, witness)
    assert open_checkpoint(both, log.verifier) == cp
    _, signed = open_note(both, [log.verifier])
    assert signed == [log.verifier]
    only_witness = sign_checkpoint(cp, witness)
    with pytest.raises(NoteError, match="no verifiable signatures"):
        open_checkpoint(only_witness, log.verifier)


def test_a_validly_signed_note_that_is_no_checkpoint_is_rejected() -> None:
    signer = fresh_signer()
    note = sign_note("if this is a valid checkpoint then I'll eat my hat\n", signer)
    assert open_note(note, [signer.verifier])[1] == [signer.verifier]
    with pytest.raises(NoteError):
        open_checkpoint(note, signer.verifier)


@pytest.mark.parametrize(
    "mangle",
    [
        lambda n: n.replace("\n\n", "\n", 1),  # missing blank line
        lambda n: n[:-1],  # last signature line without newline
        lambda n: n.replace("— ", "- ", 1),  # hyphen instead of em dash
        lambda n: n.replace("— ", "\u2013 ", 1),  # en dash instead of em dash
        lambda n: n.replace("— ", "—", 1),  # em dash without the space
        lambda n: n.replace("— ", " — ", 1),  # indented signature line
        lambda n: n.replace("\n— ", "\n—\u00a0", 1),  # no-break space after the dash
        lambda n: n + "\n",  # blank line after the signatures
        lambda n: n + "trailing\n",  # a line that is no signature
        lambda n: n.replace("\n", "\r\n"),  # CRLF line ends
        lambda n: "\t" + n,  # control character
        lambda n: n.replace("\n\n", "\n\x00\n", 1),  # NUL
        lambda n: "\ud800" + n,  # lone surrogate: not UTF-8
        lambda n: n.rstrip("\n") + "==\n",  # over-padded base64
        lambda n: n.rstrip("=\n") + "\n",  # unpadded base64
        lambda n: n.replace("test ", "test  ", 1),  # two spaces before the signature
        lambda n: n.replace("test ", "test\u2003", 1),  # em space instead of space
        lambda n: n.split("— ")[0] + "— log.example/test AAAAAA==\n",  # 4-byte signature
        lambda n: n.split("— ")[0] + "— log.example/test \n",  # empty signature
        lambda n: n.split("— ")[0] + "— log.example/test\n",  # no signature at all
        lambda n: n.split("— ")[0] + "— a+b " + n.split()[-1] + "\n",  # '+' in name
    ],
)
def test_malformed_note_is_rejected(mangle: Callable[[str], str]) -> None:
    signer = fresh_signer("log.example/test")
    note = sign_checkpoint(Checkpoint("log.example/test", 3, ROOT), signer)
    bad = mangle(note)
    assert bad != note
    with pytest.raises(NoteError):
        parse_note(bad)
    with pytest.raises(NoteError):
        open_checkpoint(bad, signer.verifier)


def test_non_canonical_base64_signature_is_rejected() -> None:
    # 68 bytes encode to 92 characters ending in one "="; the last data character
    # carries 2 padding bits that must be zero.
    signer = fresh_signer()
    note = sign_note("text\n", signer)
    b64 = note.split()[-1]
    last = b64[-2]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
    sneaky = alphabet[alphabet.index(last) | 0x01]
    assert sneaky != last
    assert base64.b64decode(b64[:-2] + sneaky + "=") == base64.b64decode(b64)
    with pytest.raises(NoteError, match="base64"):
        parse_note(note.replace(b64, b64[:-2] + sneaky + "="))


def test_huge_notes_are_rejected_by_their_utf8_size() -> None:
    signer = fresh_signer()
    ascii_text = "a" * (MAX_NOTE_SIZE - 200) + "\n"
    assert open_note(sign_note(ascii_text, signer), [signer.verifier])[0].text == ascii_text
    with pytest.raises(NoteError, match="longer than"):
        sign_note("a" * MAX_NOTE_SIZE + "\n", signer)
    with pytest.raises(NoteError, match="longer than"):
        parse_note("a" * MAX_NOTE_SIZE + "\n\n" + PETER_SIG)
    # Fewer characters than the limit, but three UTF-8 bytes each.
    wide = "€" * (MAX_NOTE_SIZE // 3 + 1) + "\n"
    assert len(wide) < MAX_NOTE_SIZE
    with pytest.raises(NoteError, match="longer than"):
        parse_note(wide + "\n" + PETER_SIG)
    with pytest.raises(NoteError, match="longer than"):
        sign_note(wide, signer)


@pytest.mark.parametrize(
    "text",
    ["", "no final newline", "a\r\n", "tab\there\n", "bell\x07\n", "\ud83d\n", "esc\x1b[0m\n"],
)
def test_sign_note_refuses_text_that_is_no_valid_note_text(text: str) -> None:
    with pytest.raises(NoteError):
        sign_note(text, fresh_signer())


def test_sign_note_needs_a_signer() -> None:
    with pytest.raises(NoteError, match="at least one signer"):
        sign_note("text\n")


@pytest.mark.parametrize(
    "name",
    ["", "a b", "a+b", "tab\t", "nbsp\u00a0", "nel\u0085", "ideographic\u3000", "ctl\x1c"],
)
def test_invalid_key_names_are_rejected(name: str) -> None:
    with pytest.raises(NoteError):
        Signer(name, Ed25519PrivateKey.generate())
    with pytest.raises(NoteError):
        verifier_key(name, Ed25519PrivateKey.generate().public_key())


def test_key_names_may_hold_any_other_unicode() -> None:
    # Zero-width space and U+001C-adjacent printable characters are not White_Space.
    for name in ("sigsum.org/v1/tree/abc", "zero\u200bwidth", "ünïcödé/日本", "a=b"):
        signer = Signer(name, Ed25519PrivateKey.generate())
        assert Verifier.parse(signer.verifier.encode()) == signer.verifier
        assert spec_verify(sign_note("x\n", signer), name, raw_public(signer))


def test_verifier_key_hash_may_be_upper_case_hex_as_in_the_reference() -> None:
    upper = PETER_VKEY.replace("c74f20a3", "C74F20A3")
    assert Verifier.parse(upper) == Verifier.parse(PETER_VKEY)


def test_verifier_refuses_a_key_hash_that_does_not_match_its_key() -> None:
    v = Verifier.parse(PETER_VKEY)
    with pytest.raises(NoteError, match="does not match"):
        Verifier(v.name, bytes.fromhex("c74f20a4"), v.public_key)
    with pytest.raises(NoteError, match="does not match"):
        Verifier("EnochRoot", v.key_hash, v.public_key)


def test_verifiers_compare_and_hash_by_name_and_key() -> None:
    a, b = Verifier.parse(PETER_VKEY), Verifier.parse(PETER_VKEY)
    assert a == b
    assert len({a, b, Verifier.parse(ENOCH_VKEY)}) == 2


def test_signer_repr_shows_no_key_material() -> None:
    assert repr(peter_signer()) == "Signer(name='PeterNeumann')"


def test_verify_refuses_signatures_of_the_wrong_length() -> None:
    signer = fresh_signer()
    sig = signer.sign(b"msg")
    assert signer.verifier.verify(b"msg", sig)
    assert not signer.verifier.verify(b"msg", sig[:-1])
    assert not signer.verifier.verify(b"msg", sig + b"\x00")
    assert not signer.verifier.verify(b"msh", sig)


# ---------------------------------------------------------------------------------------
# Checkpoint bodies, strictly.

ROOT_B64 = base64.b64encode(ROOT).decode()


@pytest.mark.parametrize(
    "body",
    [
        f"log\n007\n{ROOT_B64}\n",  # leading zeroes
        f"log\n00\n{ROOT_B64}\n",
        f"log\n+7\n{ROOT_B64}\n",
        f"log\n-1\n{ROOT_B64}\n",
        f"log\n1_000\n{ROOT_B64}\n",
        f"log\n 7\n{ROOT_B64}\n",
        f"log\n7 \n{ROOT_B64}\n",
        f"log\n\u0663\n{ROOT_B64}\n",  # Arabic-Indic digit three: int() would accept it
        f"log\n0x10\n{ROOT_B64}\n",
        f"log\n\n{ROOT_B64}\n",
        f"log\n{2**64}\n{ROOT_B64}\n",  # past uint64
        f"log\n3438945738945739845734895735\n{ROOT_B64}\n",
        f"log\nbananas\n{ROOT_B64}\n",
        f"\n7\n{ROOT_B64}\n",  # empty origin
        f"log\n7\n{ROOT_B64}",  # no final newline
        "log\n7\n",  # no root
        "log\n7\nYmFuYW5hcw==\n",  # 7-byte root
        f"log\n7\n{base64.b64encode(ROOT[:31]).decode()}\n",  # 31-byte root
        f"log\n7\n{base64.b64encode(ROOT + b'x').decode()}\n",  # 33-byte root
        f"log\n7\n{ROOT_B64.rstrip('=')}\n",  # unpadded root
        f"log\n7\n{ROOT_B64[:-2]}B=\n",  # non-canonical padding bits
        "log\n7\nThisIsn'tBase64\n",
        f"log\n7\n{ROOT_B64}\n\n",  # empty extension line
        f"log\n7\n{ROOT_B64}\next\n\n",
        f"log\n7\n{ROOT_B64}\next\x01\n",  # control character in an extension
        f"lo\tg\n7\n{ROOT_B64}\n",  # control character in the origin
        f"log\r\n7\n{ROOT_B64}\n",
    ],
)
def test_checkpoint_parse_rejects_every_deviation(body: str) -> None:
    with pytest.raises(NoteError):
        Checkpoint.parse(body)


def test_checkpoint_parse_accepts_the_extremes() -> None:
    assert Checkpoint.parse(f"log\n0\n{ROOT_B64}\n").size == 0
    assert Checkpoint.parse(f"log\n{MAX_TREE_SIZE}\n{ROOT_B64}\n").size == 2**64 - 1
    assert Checkpoint.parse(f"a b+c\n1\n{ROOT_B64}\nx\ny\n").extensions == ("x", "y")


@pytest.mark.parametrize(
    "args",
    [
        ("", 1, ROOT, ()),
        ("a\nb", 1, ROOT, ()),
        ("log", -1, ROOT, ()),
        ("log", 2**64, ROOT, ()),
        ("log", True, ROOT, ()),
        ("log", 1, ROOT[:31], ()),
        ("log", 1, bytearray(ROOT), ()),
        ("log", 1, ROOT, ("",)),
        ("log", 1, ROOT, ("a\nb",)),
        ("log", 1, ROOT, ["list"]),
        ("log", 1, ROOT, ("bell\x07",)),
    ],
)
def test_checkpoint_refuses_fields_it_could_not_write(args: tuple[object, ...]) -> None:
    with pytest.raises(NoteError):
        Checkpoint(*args)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------
# Properties.

CONTROL = [chr(c) for c in range(0x20)]
WHITE_SPACE = list("\t\n\v\f\r \x85\xa0\u1680\u2028\u2029\u202f\u205f\u3000") + [
    chr(c) for c in range(0x2000, 0x200B)
]
line_text = st.text(st.characters(codec="utf-8", exclude_characters=CONTROL), min_size=1)
key_names = st.text(
    st.characters(codec="utf-8", exclude_characters=[*CONTROL, *WHITE_SPACE, "+"]),
    min_size=1,
    max_size=40,
)
note_texts = st.text(
    st.characters(codec="utf-8", exclude_characters=[c for c in CONTROL if c != "\n"])
).map(lambda t: t + "\n")
checkpoints = st.builds(
    Checkpoint,
    origin=line_text,
    size=st.integers(0, 2**63 - 1) | st.integers(0, MAX_TREE_SIZE),
    root_hash=st.binary(min_size=32, max_size=32),
    extensions=st.lists(line_text, max_size=4).map(tuple),
)


@given(checkpoints)
def test_checkpoint_body_round_trips(cp: Checkpoint) -> None:
    body = cp.body()
    assert Checkpoint.parse(body) == cp
    assert body == spec_checkpoint_text(cp.origin, cp.size, cp.root_hash, *cp.extensions)


@given(st.text())
def test_checkpoint_parse_accepts_only_canonical_bodies(body: str) -> None:
    try:
        cp = Checkpoint.parse(body)
    except NoteError:
        return
    assert cp.body() == body


@given(st.text(st.sampled_from("ab\n— +=/xAQ0\u2014 \x01é")) | st.text())
def test_parse_note_fails_only_with_note_error(note: str) -> None:
    try:
        parsed = parse_note(note)
    except NoteError:
        return
    assert isinstance(parsed, Note)
    assert note.startswith(parsed.text)
    assert parsed.signatures


@settings(deadline=None)
@given(note_texts, st.lists(key_names, min_size=1, max_size=4))
def test_sign_then_open_round_trips(text: str, names: list[str]) -> None:
    signers = [Signer(n, Ed25519PrivateKey.generate()) for n in names]
    note = sign_note(text, *signers)
    for s in signers:
        assert spec_verify(note, s.name, raw_public(s))
    opened, signed = open_note(note, [signers[-1].verifier])
    assert opened.text == text
    assert signed == [signers[-1].verifier]
    assert [s.name for s in opened.signatures] == names
    assert parse_note(note) == opened


@settings(deadline=None)
@given(checkpoints, key_names)
def test_sign_then_open_checkpoint_round_trips(cp: Checkpoint, name: str) -> None:
    signer = Signer(name, Ed25519PrivateKey.generate())
    note = sign_checkpoint(cp, signer)
    assert spec_verify(note, name, raw_public(signer))
    assert open_checkpoint(note, signer.verifier, cp.origin) == cp
    assert Verifier.parse(signer.verifier.encode()) == signer.verifier
