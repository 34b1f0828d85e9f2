"""C2SP signed notes and checkpoints against the spec's and Go's vectors, plus the spec's rules.

Valid notes verify; malformed ones, bad signatures by known keys and notes with no known
signature are refused; unknown keys (even sharing a name or a key ID) are ignored.
"""

from __future__ import annotations

import base64
import json
from pathlib import Path
from typing import Any

import pytest

from strongroom.audit import checkpoint, note
from strongroom.audit.checkpoint import Checkpoint, CheckpointError
from strongroom.audit.note import NoteError, Signer, Verifier, generate_signer

DASH = "\u2014"


@pytest.fixture
def vectors(shared_data: Path) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(
        (shared_data / "merkle" / "signed_note_vectors.json").read_text(encoding="utf-8")
    )
    return loaded


@pytest.fixture
def go(vectors: dict[str, Any]) -> dict[str, Any]:
    section: dict[str, Any] = vectors["go_sumdb_note_vectors"]
    return section


def _key_pairs(vectors: dict[str, Any]) -> list[tuple[str, str]]:
    go, tessera = vectors["go_sumdb_note_vectors"], vectors["tessera_testlog"]
    pairs = [(go["peter_skey"], go["peter_vkey"]), (tessera["skey_test_only"], tessera["vkey"])]
    pairs += [(s, v) for s, v in vectors["transparency_dev_formats_test_keys"]["pairs"]]
    return pairs


# -- keys ----------------------------------------------------------------------------------------


def test_key_ids_and_verifier_keys_derive_from_private_keys(vectors: dict[str, Any]) -> None:
    for skey, vkey in _key_pairs(vectors):
        signer, verifier = Signer(skey), Verifier(vkey)
        assert signer.verifier_key == vkey == verifier.vkey
        assert signer.skey == skey
        assert (signer.name, signer.key_id) == (verifier.name, verifier.key_id)
        assert note.key_id(verifier.name, verifier.public_key) == int(vkey.split("+", 2)[1], 16)


def test_malformed_keys_are_refused(go: dict[str, Any]) -> None:
    name, id_hex, key = go["peter_vkey"].split("+", 2)
    other_id = f"{(int(id_hex, 16) + 1) % 2**32:08x}"
    for bad in [
        f"{name}+{other_id}+{key}",  # the ID does not match the key
        f"{name}+{id_hex[:7]}+{key}",
        f"{name}+{id_hex}+{key[:-4]}",  # truncated key
        f"{name}+{id_hex}+" + base64.b64encode(b"\x02" + base64.b64decode(key)[1:]).decode(),
        f"{name}+{id_hex}",
        f"Peter Neumann+{id_hex}+{key}",
        f"+{id_hex}+{key}",
    ]:
        with pytest.raises(NoteError):
            Verifier(bad)
    with pytest.raises(NoteError):
        Signer(go["peter_vkey"])  # a verifier key is not a signer key
    with pytest.raises(NoteError):
        generate_signer("has space")


def test_signer_repr_never_shows_the_private_key(go: dict[str, Any]) -> None:
    signer = Signer(go["peter_skey"])
    assert go["peter_skey"].split("+", 4)[-1] not in repr(signer)


# -- the published notes -------------------------------------------------------------------------


def test_c2sp_example_note_verifies(vectors: dict[str, Any]) -> None:
    example = vectors["c2sp_signed_note_example"]
    opened = note.open(example["note"], [Verifier(example["vkey"])])
    assert opened.text == "This is an example message.\n"
    assert [s.name for s in opened.verified] == ["example.com/foo"]
    assert opened.unverified == ()


def test_go_note_is_signed_exactly_as_go_signs_it(go: dict[str, Any]) -> None:
    signed = note.sign(go["text"], [Signer(go["peter_skey"])])
    assert signed == go["signed_by_peter_expected_exactly"]
    opened = note.open(signed.encode(), [Verifier(go["peter_vkey"])])
    assert opened.text == go["text"]


def test_unknown_keys_are_ignored_but_one_known_key_must_verify(go: dict[str, Any]) -> None:
    both = go["signed_by_peter_expected_exactly"] + go["enoch_sig_line"]
    peter, enoch = Verifier(go["peter_vkey"]), Verifier(go["enoch_vkey"])

    opened = note.open(both, [peter])
    assert [s.name for s in opened.verified] == ["PeterNeumann"]
    assert [s.name for s in opened.unverified] == ["EnochRoot"]

    opened = note.open(both, [enoch, peter, peter])  # a repeated identical key is harmless
    assert sorted(s.name for s in opened.verified) == ["EnochRoot", "PeterNeumann"]

    with pytest.raises(NoteError, match="no signature by a known key"):
        note.open(both, [])
    with pytest.raises(NoteError, match="no signature by a known key"):
        note.open(both, [generate_signer("other").verifier()])


def test_a_signature_sharing_only_name_or_only_key_id_is_unknown(go: dict[str, Any]) -> None:
    peter = Signer(go["peter_skey"])
    text = go["text"]
    same_name = generate_signer(peter.name)  # same name, another key (so another key ID)
    signed = note.sign(text, [same_name])
    with pytest.raises(NoteError, match="no signature by a known key"):
        note.open(signed, [peter.verifier()])
    # Same key ID under another name: rewrite the name on Peter's own line.
    line = go["signed_by_peter_expected_exactly"][len(text) + 1 :]
    renamed = text + "\n" + line.replace("PeterNeumann", "PeterNeumannToo")
    with pytest.raises(NoteError, match="no signature by a known key"):
        note.open(renamed, [peter.verifier()])


def test_bad_signature_by_a_known_key_rejects_the_whole_note(go: dict[str, Any]) -> None:
    signed = go["signed_by_peter_expected_exactly"]
    peter, enoch = Verifier(go["peter_vkey"]), Verifier(go["enoch_vkey"])
    tampered_text = signed.replace("answer", "ANSWER")
    with pytest.raises(NoteError, match="invalid signature"):
        note.open(tampered_text, [peter])

    text, (sig,) = note.parse_unverified(signed)
    flipped = bytes([sig.signature[0] ^ 1]) + sig.signature[1:]
    tampered_sig = text + "\n" + note.Signature(sig.name, sig.key_id, flipped).line()
    with pytest.raises(NoteError, match="invalid signature"):
        note.open(tampered_sig, [peter])

    # A good signature by Enoch does not rescue a bad one by Peter.
    with pytest.raises(NoteError, match="invalid signature"):
        note.open(tampered_sig + go["enoch_sig_line"], [peter, enoch])


@pytest.mark.parametrize(
    ("case", "make"),
    [
        ("no blank line", lambda t, s: t + s),
        ("signature line without newline", lambda t, s: t + "\n" + s[:-1]),
        ("leading control byte", lambda t, s: "\x01" + t + "\n" + s),
        ("tab in the text", lambda t, s: t.replace(" ", "\t", 1) + "\n" + s),
        (
            "key name with a space",
            lambda t, s: t + "\n" + s.replace("PeterNeumann", "Peter Neumann"),
        ),
        ("extra line after signatures", lambda t, s: t + "\n" + s + "hello\n"),
        ("empty signature block", lambda t, s: t + "\n"),
        ("hyphen instead of em dash", lambda t, s: t + "\n" + s.replace(DASH, "-")),
        ("no space after the dash", lambda t, s: t + "\n" + s.replace(DASH + " ", DASH)),
        ("signature not base64", lambda t, s: t + "\n" + s.replace("=\n", "!\n")),
        ("signature only a key ID", lambda t, s: t + "\n" + f"{DASH} PeterNeumann AAAAAA==\n"),
        ("empty signature", lambda t, s: t + "\n" + f"{DASH} PeterNeumann \n"),
        ("too many signatures", lambda t, s: t + "\n" + s * (note.NOTE_SIGNATURES_MAX + 1)),
    ],
)
def test_malformed_notes_are_refused(go: dict[str, Any], case: str, make: Any) -> None:
    text = go["text"]
    sig_line = go["signed_by_peter_expected_exactly"][len(text) + 1 :]
    assert note.open(text + "\n" + sig_line, [Verifier(go["peter_vkey"])])  # the untouched note
    with pytest.raises(NoteError):
        note.open(make(text, sig_line), [Verifier(go["peter_vkey"])])


def test_invalid_utf8_is_refused(go: dict[str, Any]) -> None:
    raw = go["signed_by_peter_expected_exactly"].encode()
    with pytest.raises(NoteError, match="UTF-8"):
        note.open(b"\xff" + raw, [Verifier(go["peter_vkey"])])


def test_sign_then_open_round_trip() -> None:
    log, witness = generate_signer("example.com/log"), generate_signer("witness.example/w1")
    text = "line one\n\nline three after an empty line\n"
    signed = note.sign(text, [log, witness])
    opened = note.open(signed, [log.verifier(), witness.verifier()])
    assert opened.text == text
    assert [(s.name, s.key_id) for s in opened.verified] == [
        (log.name, log.key_id),
        (witness.name, witness.key_id),
    ]
    assert note.open(signed, [witness.verifier()]).unverified[0].name == log.name


def test_sign_refuses_what_open_would_refuse() -> None:
    signer = generate_signer("example.com/log")
    for text in ["no final newline", "bell \x07\n", ""]:
        with pytest.raises(NoteError):
            note.sign(text, [signer])
    with pytest.raises(NoteError, match="at least one signer"):
        note.sign("text\n", [])


# -- checkpoints ---------------------------------------------------------------------------------


def test_spec_checkpoint_parses(vectors: dict[str, Any]) -> None:
    example = vectors["c2sp_format_examples_unverifiable"]["checkpoint_with_cosignature"]
    text, signatures = note.parse_unverified(example)
    assert [s.name for s in signatures] == ["example.com/behind-the-sofa", "witness.example.com/w1"]
    cp = checkpoint.parse(text)
    assert (cp.origin, cp.size) == ("example.com/behind-the-sofa", 20852163)
    assert cp.to_text() == text
    with pytest.raises(NoteError, match="no signature by a known key"):
        note.open(example, [generate_signer("example.com/behind-the-sofa").verifier()])


def test_checkpoint_round_trip_with_extensions() -> None:
    cp = Checkpoint("example.com/log", 0, bytes(32), ("ext one", "ext two"))
    assert cp.to_text() == "example.com/log\n0\n" + base64.b64encode(bytes(32)).decode() + (
        "\next one\next two\n"
    )
    assert checkpoint.parse(cp.to_text()) == cp


@pytest.mark.parametrize(
    "text",
    [
        "origin\n1\nROOT",  # no final newline
        "origin\n1\n",  # no root line
        "\n1\nROOT\n",  # empty origin
        "origin\n01\nROOT\n",  # leading zero
        "origin\n-1\nROOT\n",
        "origin\n+1\nROOT\n",
        "origin\n 1\nROOT\n",
        "origin\n1.0\nROOT\n",
        "origin\n\u0661\nROOT\n",  # a non-ASCII digit
        f"origin\n{2**63}\nROOT\n",
        "origin\n1\n\n",  # empty root
        "origin\n1\nROOT\n\next\n",  # an empty extension line
        "origin\n1\nROOT\n\n",
        "origin\n1\n" + base64.b64encode(bytes(31)).decode() + "\n",
        "origin\n1\n" + base64.b64encode(bytes(33)).decode() + "\n",
        "origin\n1\n" + base64.b64encode(bytes(32)).decode().rstrip("=") + "\n",
        "origin\n1\nROOT \n",
        "ori\tgin\n1\nROOT\n",
    ],
)
def test_malformed_checkpoints_are_refused(text: str) -> None:
    root = base64.b64encode(bytes(32)).decode()
    with pytest.raises(CheckpointError):
        checkpoint.parse(text.replace("ROOT", root))


def test_checkpoint_fields_are_validated() -> None:
    with pytest.raises(CheckpointError):
        Checkpoint("origin\nsecond line", 1, bytes(32))
    with pytest.raises(CheckpointError):
        Checkpoint("origin", -1, bytes(32))
    with pytest.raises(CheckpointError):
        Checkpoint("origin", 1, bytes(31))
    with pytest.raises(CheckpointError):
        Checkpoint("origin", 1, bytes(32), ("",))
