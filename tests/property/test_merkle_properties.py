"""Merkle trees, proofs and tiles on random shapes, checked against the RFC's own recursion.

The oracle below is RFC 9162 §2.1 transcribed literally (MTH, PATH, SUBPROOF on lists): slow,
but independent of the iterative code under test. Everything else is cross-checked against it:
MemoryTree built in random chunks, tiles of heights 1, 2, 4 and 8 built in random batches (and
read back at past sizes from today's wider tiles), RootAccumulator, and the verifiers, which
must accept every proof made here and reject every corruption of one.
"""

from __future__ import annotations

from functools import cache

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from strongroom.audit.merkle import (
    EMPTY_ROOT,
    MemoryTree,
    ProofError,
    RootAccumulator,
    leaf_hash,
    node_hash,
    root_of,
    verify_consistency,
    verify_inclusion,
)
from strongroom.audit.tiles import TileError, TileLayout

LEAVES_MAX = 3_000
HEIGHTS = (1, 2, 4, 8)
LEAVES = [leaf_hash(i.to_bytes(4, "big")) for i in range(LEAVES_MAX)]
SETTINGS = settings(max_examples=60, deadline=None)


# -- the oracle: RFC 9162 §2.1, literally ------------------------------------------------------


def _split(n: int) -> int:
    """The largest power of two smaller than n (n > 1)."""
    k = 1
    while k << 1 < n:
        k <<= 1
    return k


@cache
def mth(lo: int, hi: int) -> bytes:
    """MTH(LEAVES[lo:hi]); cached because PATH and PROOF ask for the same subtrees again."""
    if hi - lo == 0:
        return EMPTY_ROOT
    if hi - lo == 1:
        return LEAVES[lo]
    k = _split(hi - lo)
    return node_hash(mth(lo, lo + k), mth(lo + k, hi))


def path(m: int, lo: int, hi: int) -> list[bytes]:
    if hi - lo == 1:
        return []
    k = _split(hi - lo)
    if m < k:
        return [*path(m, lo, lo + k), mth(lo + k, hi)]
    return [*path(m - k, lo + k, hi), mth(lo, lo + k)]


def subproof(m: int, lo: int, hi: int, whole: bool) -> list[bytes]:
    if m == hi - lo:
        return [] if whole else [mth(lo, hi)]
    k = _split(hi - lo)
    if m <= k:
        return [*subproof(m, lo, lo + k, whole), mth(lo + k, hi)]
    return [*subproof(m - k, lo + k, hi, False), mth(lo, lo + k)]


@cache
def full_tree() -> MemoryTree:
    tree = MemoryTree()
    tree.extend_leaf_hashes(LEAVES)
    return tree


# -- strategies ----------------------------------------------------------------------------------

sizes = st.integers(1, LEAVES_MAX)
chunks = st.lists(st.integers(1, 400), min_size=1, max_size=25)


@st.composite
def index_in_tree(draw: st.DrawFn, size_max: int = LEAVES_MAX) -> tuple[int, int]:
    size = draw(st.integers(1, size_max))
    return draw(st.integers(0, size - 1)), size


@st.composite
def two_sizes(draw: st.DrawFn, size_max: int = LEAVES_MAX) -> tuple[int, int]:
    size2 = draw(st.integers(1, size_max))
    return draw(st.integers(1, size2)), size2


def _flip(h: bytes, bit: int) -> bytes:
    return h[: bit // 8] + bytes([h[bit // 8] ^ (1 << bit % 8)]) + h[bit // 8 + 1 :]


# -- MemoryTree and RootAccumulator --------------------------------------------------------------


@SETTINGS
@given(chunks=chunks, singles=st.booleans())
def test_tree_built_in_any_chunks_matches_the_rfc(chunks: list[int], singles: bool) -> None:
    tree, acc, done = MemoryTree(), RootAccumulator(), 0
    for chunk in chunks:
        batch = LEAVES[done : min(done + chunk, LEAVES_MAX)]
        if singles:
            for h in batch:
                tree.append_leaf_hash(h)
        else:
            assert tree.extend_leaf_hashes(batch) == done
        acc.extend(batch)
        done += len(batch)
        assert tree.size == acc.size == done
        assert tree.root() == acc.root() == mth(0, done) == root_of(LEAVES[:done])


@SETTINGS
@given(chunks=chunks)
def test_append_of_data_hashes_the_leaf(chunks: list[int]) -> None:
    datas = [i.to_bytes(4, "big") for i in range(min(sum(chunks), LEAVES_MAX))]
    tree, done = MemoryTree(), 0
    for chunk in chunks:
        batch = datas[done : done + chunk]
        if len(batch) == 1:
            assert tree.append(batch[0]) == done
        elif batch:
            assert tree.extend(batch) == done
        done += len(batch)
    assert tree.root() == mth(0, len(datas))


@SETTINGS
@given(case=index_in_tree())
def test_inclusion_proofs_are_the_rfc_path_and_verify(case: tuple[int, int]) -> None:
    index, size = case
    proof = full_tree().inclusion_proof(index, size)
    assert proof == path(index, 0, size)
    verify_inclusion(LEAVES[index], index, size, proof, mth(0, size))


@SETTINGS
@given(case=two_sizes())
def test_consistency_proofs_are_the_rfc_proof_and_verify(case: tuple[int, int]) -> None:
    size1, size2 = case
    proof = full_tree().consistency_proof(size1, size2)
    assert proof == subproof(size1, 0, size2, True)
    verify_consistency(size1, size2, proof, mth(0, size1), mth(0, size2))


@SETTINGS
@given(case=index_in_tree(), data=st.data())
def test_corrupted_inclusion_proofs_are_rejected(
    case: tuple[int, int], data: st.DataObject
) -> None:
    index, size = case
    proof, root, leaf = full_tree().inclusion_proof(index, size), mth(0, size), LEAVES[index]
    bit = data.draw(st.integers(0, 255))
    corrupted = [(leaf, proof, _flip(root, bit)), (_flip(leaf, bit), proof, root)]
    corrupted.append((leaf, [*proof, data.draw(st.sampled_from(LEAVES))], root))
    if proof:
        at = data.draw(st.integers(0, len(proof) - 1))
        corrupted.append((leaf, [*proof[:at], _flip(proof[at], bit), *proof[at + 1 :]], root))
        corrupted.append((leaf, proof[:-1], root))
    for bad_leaf, bad_proof, bad_root in corrupted:
        with pytest.raises(ProofError):
            verify_inclusion(bad_leaf, index, size, bad_proof, bad_root)


@SETTINGS
@given(case=two_sizes(), data=st.data())
def test_corrupted_consistency_proofs_are_rejected(
    case: tuple[int, int], data: st.DataObject
) -> None:
    size1, size2 = case
    proof = full_tree().consistency_proof(size1, size2)
    root1, root2 = mth(0, size1), mth(0, size2)
    bit = data.draw(st.integers(0, 255))
    corrupted = [(proof, _flip(root1, bit), root2), (proof, root1, _flip(root2, bit))]
    corrupted.append(([*proof, data.draw(st.sampled_from(LEAVES))], root1, root2))
    if proof:
        at = data.draw(st.integers(0, len(proof) - 1))
        corrupted.append(([*proof[:at], _flip(proof[at], bit), *proof[at + 1 :]], root1, root2))
        corrupted.append((proof[:-1], root1, root2))
    for bad_proof, bad_root1, bad_root2 in corrupted:
        with pytest.raises(ProofError):
            verify_consistency(size1, size2, bad_proof, bad_root1, bad_root2)


# -- tiles ---------------------------------------------------------------------------------------


def _build_tiles(
    layout: TileLayout, chunks: list[int]
) -> tuple[dict[tuple[int, int], bytes], list[tuple[int, dict[tuple[int, int], bytes]]]]:
    """Append in batches as a store would; also keep a snapshot of the store after each batch."""
    store: dict[tuple[int, int], bytes] = {}
    snapshots: list[tuple[int, dict[tuple[int, int], bytes]]] = []
    size = 0
    for chunk in chunks:
        batch = LEAVES[size : min(size + chunk, LEAVES_MAX)]
        if not batch:
            break
        edge = {t: store[t] for t in layout.edge_tiles(size)}
        store.update(layout.append(size, edge, batch))
        size += len(batch)
        snapshots.append((size, dict(store)))
    return store, snapshots


@settings(max_examples=40, deadline=None)
@given(height=st.sampled_from(HEIGHTS), chunks=chunks, data=st.data())
def test_tiles_give_the_same_roots_and_proofs_as_the_tree(
    height: int, chunks: list[int], data: st.DataObject
) -> None:
    layout = TileLayout(height)
    store, snapshots = _build_tiles(layout, chunks)
    size = snapshots[-1][0]
    tree = full_tree()

    # Every tile is the bottom row it should be, as wide as the tree size says, and no other.
    width_max = 1 << height
    for (level, index), tile in store.items():
        width = layout.width((level, index), size)
        first = index * width_max
        row = [tree.node(level * height, first + j) for j in range(width)]
        assert tile == b"".join(row)
        assert width > 0

    def fetch(wanted: list[tuple[int, int]]) -> dict[tuple[int, int], bytes]:
        return {t: store[t] for t in wanted}  # a missing tile is a KeyError: a planning bug

    # Roots at every past size, each from the tiles the plan names (today's, wider ones).
    for past, snapshot in snapshots:
        assert layout.root(past, fetch(layout.root_tiles(past))) == mth(0, past)
        assert layout.root(past, snapshot) == mth(0, past)

    for _ in range(5):
        index, n = data.draw(index_in_tree(size))
        proof = layout.inclusion_proof(index, n, fetch(layout.inclusion_tiles(index, n)))
        assert proof == tree.inclusion_proof(index, n)
        size1, size2 = data.draw(two_sizes(size))
        proof = layout.consistency_proof(
            size1, size2, fetch(layout.consistency_tiles(size1, size2))
        )
        assert proof == tree.consistency_proof(size1, size2)


@SETTINGS
@given(height=st.sampled_from(HEIGHTS), chunks=chunks)
def test_past_sizes_from_wider_tiles_equal_the_store_as_it_was(
    height: int, chunks: list[int]
) -> None:
    layout = TileLayout(height)
    store, snapshots = _build_tiles(layout, chunks)
    for past, snapshot in snapshots:
        index = past // 2
        assert layout.inclusion_proof(index, past, store) == layout.inclusion_proof(
            index, past, snapshot
        )
        assert layout.consistency_proof(1, past, store) == layout.consistency_proof(
            1, past, snapshot
        )


@SETTINGS
@given(height=st.sampled_from(HEIGHTS), size=st.integers(1, 600))
def test_append_refuses_a_wrong_edge(height: int, size: int) -> None:
    layout = TileLayout(height)
    store, _ = _build_tiles(layout, [size])
    edge = {t: store[t] for t in layout.edge_tiles(size)}
    # Enough new leaves to complete every edge tile, so each of them is needed.
    top_level = max(level for level, _ in edge)
    new = [LEAVES[0]] * (-size % (1 << (height * (top_level + 1))))
    grown = layout.append(size, edge, new)
    assert set(edge) <= set(grown)
    for tile in edge:
        with pytest.raises(TileError):
            layout.append(size, {**edge, tile: edge[tile][:-32]}, new)
        with pytest.raises(TileError):
            layout.append(size, {t: b for t, b in edge.items() if t != tile}, new)
