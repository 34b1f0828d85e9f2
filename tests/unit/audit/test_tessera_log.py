"""A real C2SP tlog-tiles log written by Tessera: 15 entries, a signed checkpoint after each.

Every checkpoint must open as a signed note under the log's published key and parse strictly;
the tiles, entry bundles and our own tree must all give the checkpoint's root, including roots
for old sizes computed from today's wider tile.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from strongroom.audit import checkpoint, note
from strongroom.audit.merkle import MemoryTree, leaf_hash, verify_consistency, verify_inclusion
from strongroom.audit.tiles import (
    TLOG_TILE_HEIGHT,
    TileLayout,
    encode_entry_bundle,
    parse_entry_bundle,
    read_tlog_entries,
    read_tlog_tiles,
    tlog_entries_path,
    tlog_tile_path,
)

CHECKPOINTS = 16  # checkpoint.0 .. checkpoint.15


@pytest.fixture
def published(shared_data: Path) -> dict[str, Any]:
    vectors = json.loads((shared_data / "merkle" / "signed_note_vectors.json").read_text())
    log: dict[str, Any] = vectors["tessera_testlog"]
    return log


@pytest.fixture
def log_dir(shared_data: Path) -> Path:
    return shared_data / "merkle" / "tessera-testlog"


def _open_checkpoint(path: Path, verifier: note.Verifier) -> checkpoint.Checkpoint:
    opened = note.open(path.read_bytes(), [verifier])
    assert [s.name for s in opened.verified] == [verifier.name]
    return checkpoint.parse(opened.text)


def test_every_checkpoint_is_signed_by_the_log(log_dir: Path, published: dict[str, Any]) -> None:
    verifier = note.Verifier(published["vkey"])
    for size in range(CHECKPOINTS):
        cp = _open_checkpoint(log_dir / f"checkpoint.{size}", verifier)
        assert (cp.origin, cp.size, cp.extensions) == (published["origin"], size, ())
    latest = _open_checkpoint(log_dir / "checkpoint", verifier)
    assert latest.size == CHECKPOINTS - 1


def test_checkpoints_round_trip_byte_for_byte(log_dir: Path, published: dict[str, Any]) -> None:
    signer = note.Signer(published["skey_test_only"])
    assert signer.verifier_key == published["vkey"]
    for size in range(CHECKPOINTS):
        stored = (log_dir / f"checkpoint.{size}").read_text()
        cp = _open_checkpoint(log_dir / f"checkpoint.{size}", signer.verifier())
        assert note.sign(cp.to_text(), [signer]) == stored  # Ed25519 is deterministic


def test_tiles_give_every_checkpoint_root(log_dir: Path, published: dict[str, Any]) -> None:
    verifier = note.Verifier(published["vkey"])
    layout = TileLayout(TLOG_TILE_HEIGHT)
    latest = _open_checkpoint(log_dir / "checkpoint", verifier)
    today = read_tlog_tiles(log_dir, latest.size)
    for size in range(CHECKPOINTS):
        cp = _open_checkpoint(log_dir / f"checkpoint.{size}", verifier)
        assert layout.root(size, read_tlog_tiles(log_dir, size)) == cp.root_hash
        assert layout.root(size, today) == cp.root_hash  # a past root from a wider tile


def test_entry_bundles_hash_to_the_level_0_tile(log_dir: Path, published: dict[str, Any]) -> None:
    for size in range(1, CHECKPOINTS):
        entries = read_tlog_entries(log_dir, size)
        assert [e.decode() for e in entries] == published["entries_in_order"][:size]
        level_0 = read_tlog_tiles(log_dir, size)[0, 0]
        assert b"".join(leaf_hash(e) for e in entries) == level_0
        bundle = (log_dir / tlog_entries_path(0, size)).read_bytes()
        assert encode_entry_bundle(entries) == bundle


def test_malformed_entry_bundles_are_refused() -> None:
    assert parse_entry_bundle(b"") == []
    assert parse_entry_bundle(b"\x00\x00\x00\x01x") == [b"", b"x"]
    with pytest.raises(ValueError, match="length prefix"):
        parse_entry_bundle(b"\x00\x01x\x00")
    with pytest.raises(ValueError, match="past the end"):
        parse_entry_bundle(b"\x00\x02x")
    with pytest.raises(ValueError, match="over"):
        encode_entry_bundle([bytes(1 << 16)])


def test_proofs_from_tiles_verify_against_checkpoints(
    log_dir: Path, published: dict[str, Any]
) -> None:
    verifier = note.Verifier(published["vkey"])
    layout = TileLayout(TLOG_TILE_HEIGHT)
    entries = read_tlog_entries(log_dir, CHECKPOINTS - 1)
    tiles = read_tlog_tiles(log_dir, CHECKPOINTS - 1)
    tree = MemoryTree()
    tree.extend(entries)
    roots = [_open_checkpoint(log_dir / f"checkpoint.{n}", verifier).root_hash for n in range(16)]
    for size in range(1, CHECKPOINTS):
        assert tree.root(size) == roots[size]
        for index in range(size):
            proof = layout.inclusion_proof(index, size, tiles)
            assert proof == tree.inclusion_proof(index, size)
            verify_inclusion(leaf_hash(entries[index]), index, size, proof, roots[size])
        for old in range(1, size + 1):
            proof = layout.consistency_proof(old, size, tiles)
            verify_consistency(old, size, proof, roots[old], roots[size])


def test_tlog_paths() -> None:
    assert tlog_tile_path(0, 0, 15) == "tile/0/000.p/15"
    assert tlog_tile_path(1, 1234067) == "tile/1/x001/x234/067"
    assert tlog_tile_path(2, 5, 256) == "tile/2/005"
    assert tlog_entries_path(0, 15) == "tile/entries/000.p/15"
    assert tlog_entries_path(1000) == "tile/entries/x001/000"
    with pytest.raises(ValueError, match="width"):
        tlog_tile_path(0, 0, 0)
    with pytest.raises(ValueError, match="level"):
        tlog_tile_path(64, 0)
