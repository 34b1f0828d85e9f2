"""RFC 9162 §2.1 Merkle trees over SHA-256: hashes, proof plans, verifiers, in-memory trees.

Vocabulary shared with `tiles`: a *node* `(level, index)` is the root of the perfect subtree over
leaves `[index * 2**level, (index + 1) * 2**level)`. Every hash in an RFC 9162 proof is the MTH of
a leaf range that is either one such node or a right-edge range; a right-edge range is the right
fold of the perfect nodes that cover it, largest first, because MTH splits at the largest power
of two below n. So a proof is *planned* as ranges (`inclusion_ranges`, `consistency_ranges`) and
*assembled* from whatever stores the nodes: `MemoryTree` here, stored tiles in `tiles`.

Verifiers follow RFC 9162 §2.1.3.2 and §2.1.4.2 step by step and raise `ProofError`; they enforce
32-byte hashes everywhere, roots included, so a truncated or garbage root can never "verify".
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from typing import Final

HASH_SIZE: Final = 32
EMPTY_ROOT: Final = hashlib.sha256(b"").digest()

# Bound into module globals once: the hot loops below run millions of times.
_sha256 = hashlib.sha256
_LEAF: Final = b"\x00"
_NODE: Final = b"\x01"

NodeId = tuple[int, int]
"""(level, index) of a perfect subtree."""
LeafRange = tuple[int, int]
"""[start, end) of leaf indexes."""


class ProofError(ValueError):
    """A proof did not verify, or its inputs (sizes, hash lengths) are impossible."""


def leaf_hash(data: bytes) -> bytes:
    """SHA-256(0x00 || data): the prefix keeps a leaf from ever equalling an interior node."""
    return _sha256(_LEAF + data).digest()


def node_hash(left: bytes, right: bytes) -> bytes:
    """SHA-256(0x01 || left || right)."""
    return _sha256(_NODE + left + right).digest()


def fold_right(hashes: Sequence[bytes]) -> bytes:
    """MTH of a range from the roots of its perfect subtrees (largest first)."""
    assert hashes, "a range has at least one perfect subtree"
    h = hashes[-1]
    for left in reversed(hashes[:-1]):
        h = _sha256(_NODE + left + h).digest()
    return h


def root_of(leaf_hashes: Iterable[bytes]) -> bytes:
    """MTH over leaf hashes; EMPTY_ROOT for none."""
    acc = RootAccumulator()
    acc.extend(leaf_hashes)
    return acc.root()


# -- proof plans ---------------------------------------------------------------------------------


def range_nodes(start: int, end: int) -> list[NodeId]:
    """The perfect subtrees covering [start, end), left to right, largest first.

    Only meaningful for the ranges MTH produces (start aligned to the range's own power of two),
    which is every range this module plans.
    """
    nodes: list[NodeId] = []
    while start < end:
        level = (end - start).bit_length() - 1
        assert start & ((1 << level) - 1) == 0, f"range [{start}, {end}) is not tree-aligned"
        nodes.append((level, start >> level))
        start += 1 << level
    return nodes


def inclusion_ranges(index: int, size: int) -> list[LeafRange]:
    """The ranges whose MTHs are PATH(index, D[0:size]), bottom-up (RFC 9162 §2.1.3.1).

    Walking up from the leaf, each level contributes its sibling's range unless that sibling lies
    wholly past the tree's right edge (then the node was lifted unchanged, with no hashing).
    """
    if not 0 <= index < size:
        raise ValueError(f"leaf index {index} is outside a tree of size {size}")
    ranges: list[LeafRange] = []
    for level in range((size - 1).bit_length()):
        start = ((index >> level) ^ 1) << level
        if start < size:
            end = start + (1 << level)
            ranges.append((start, end if end < size else size))
    return ranges


def consistency_ranges(size1: int, size2: int) -> list[LeafRange]:
    """The ranges whose MTHs are PROOF(size1, D[0:size2]), in proof order (RFC 9162 §2.1.4.1).

    SUBPROOF unrolled: descend from the root towards the old tree's right edge, taking the
    sibling at each split; when the descent ends at a node that is not the whole old tree, that
    node leads the proof.
    """
    if not 0 < size1 <= size2:
        raise ValueError(f"no consistency proof from size {size1} to size {size2}")
    ranges: list[LeafRange] = []
    start, m, n = 0, size1, size2
    whole_old_tree = True
    while m != n:
        k = 1 << ((n - 1).bit_length() - 1)
        if m <= k:
            ranges.append((start + k, start + n))
            n = k
        else:
            ranges.append((start, start + k))
            start, m, n = start + k, m - k, n - k
            whole_old_tree = False
    if not whole_old_tree:
        ranges.append((start, start + n))
    ranges.reverse()
    return ranges


# -- verifiers -----------------------------------------------------------------------------------


def _check_hash(value: bytes, what: str) -> None:
    if len(value) != HASH_SIZE:
        raise ProofError(f"{what} is {len(value)} bytes, not {HASH_SIZE}")


def _check_proof(proof: Sequence[bytes]) -> None:
    for i, p in enumerate(proof):
        if len(p) != HASH_SIZE:
            raise ProofError(f"proof hash {i} is {len(p)} bytes, not {HASH_SIZE}")


def root_from_inclusion(leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes]) -> bytes:
    """The root that `proof` implies for `leaf_hash` at `index` (RFC 9162 §2.1.3.2, steps 1-4)."""
    _check_hash(leaf_hash, "leaf hash")
    _check_proof(proof)
    if not 0 <= index < size:
        raise ProofError(f"leaf index {index} is outside a tree of size {size}")
    fn, sn = index, size - 1
    r = leaf_hash
    for p in proof:
        if sn == 0:
            raise ProofError("inclusion proof is too long")
        if fn & 1 or fn == sn:
            r = _sha256(_NODE + p + r).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            r = _sha256(_NODE + r + p).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("inclusion proof is too short")
    return r


def verify_inclusion(
    leaf_hash: bytes, index: int, size: int, proof: Sequence[bytes], root: bytes
) -> None:
    """Raise ProofError unless `proof` shows `leaf_hash` at `index` in the tree `root` of `size`."""
    _check_hash(root, "root")
    if root_from_inclusion(leaf_hash, index, size, proof) != root:
        raise ProofError("inclusion proof does not lead to the root")


def verify_consistency(
    size1: int, size2: int, proof: Sequence[bytes], root1: bytes, root2: bytes
) -> None:
    """Raise ProofError unless `proof` shows tree (size1, root1) is a prefix of (size2, root2).

    RFC 9162 §2.1.4.2, with transparency-dev's edges: from size 0 is an error (0 → 0 included),
    equal sizes need an empty proof and equal roots, and size1 > size2 is an error.
    """
    _check_hash(root1, "first root")
    _check_hash(root2, "second root")
    _check_proof(proof)
    if size1 < 0 or size2 < 0:
        raise ProofError(f"negative tree size ({size1}, {size2})")
    if size1 > size2:
        raise ProofError(f"first size {size1} is larger than second size {size2}")
    if size1 == 0:
        raise ProofError("a consistency proof from an empty tree is meaningless")
    if size1 == size2:
        if proof:
            raise ProofError("equal sizes need an empty consistency proof")
        if root1 != root2:
            raise ProofError("equal sizes but different roots")
        return
    if not proof:
        raise ProofError("consistency proof is empty")
    path = list(proof)
    if size1 & (size1 - 1) == 0:
        path.insert(0, root1)  # the old tree is a perfect subtree: its root starts the path
    fn, sn = size1 - 1, size2 - 1
    while fn & 1:
        fn >>= 1
        sn >>= 1
    fr = sr = path[0]
    for c in path[1:]:
        if sn == 0:
            raise ProofError("consistency proof is too long")
        if fn & 1 or fn == sn:
            fr = _sha256(_NODE + c + fr).digest()
            sr = _sha256(_NODE + c + sr).digest()
            if not fn & 1:
                while fn and not fn & 1:
                    fn >>= 1
                    sn >>= 1
        else:
            sr = _sha256(_NODE + sr + c).digest()
        fn >>= 1
        sn >>= 1
    if sn != 0:
        raise ProofError("consistency proof is too short")
    if fr != root1:
        raise ProofError("consistency proof does not lead to the first root")
    if sr != root2:
        raise ProofError("consistency proof does not lead to the second root")


# -- trees ---------------------------------------------------------------------------------------


class MemoryTree:
    """An append-only tree keeping the hash of every complete subtree, level by level.

    Level k is one bytearray of 32-byte hashes: compact, no object per hash. Appending only
    hashes the leaf; the interior nodes it completes are hashed on the next read, in one pass per
    level over everything pending, which keeps the per-node bookkeeping out of the append path
    (the hashing itself, two SHA-256 per leaf, is the floor either way). Complete nodes never
    change, so roots and proofs for any past size come from the same levels. Not thread-safe:
    reads settle pending nodes.
    """

    __slots__ = ("_levels",)

    def __init__(self) -> None:
        self._levels: list[bytearray] = [bytearray()]

    @property
    def size(self) -> int:
        return len(self._levels[0]) >> 5

    def append(self, data: bytes) -> int:
        """Add one leaf; returns its index."""
        leaves = self._levels[0]
        leaves += _sha256(_LEAF + data).digest()
        return (len(leaves) >> 5) - 1

    def append_leaf_hash(self, leaf_hash: bytes) -> int:
        if len(leaf_hash) != HASH_SIZE:
            raise ValueError(f"leaf hash is {len(leaf_hash)} bytes, not {HASH_SIZE}")
        leaves = self._levels[0]
        leaves += leaf_hash
        return (len(leaves) >> 5) - 1

    def extend(self, datas: Iterable[bytes]) -> int:
        """Add leaves in bulk; returns the index of the first."""
        sha = _sha256
        first = self.size
        self._levels[0] += b"".join([sha(_LEAF + d).digest() for d in datas])
        return first

    def extend_leaf_hashes(self, leaf_hashes: Iterable[bytes]) -> int:
        hashes = list(leaf_hashes)
        for i, h in enumerate(hashes):
            if len(h) != HASH_SIZE:
                raise ValueError(f"leaf hash {i} is {len(h)} bytes, not {HASH_SIZE}")
        first = self.size
        self._levels[0] += b"".join(hashes)
        return first

    def _settle(self) -> None:
        """Hash every interior node the pending leaves complete; O(1) when none are pending.

        Invariant afterwards: each level holds exactly the parents of its level below's pairs.
        So the first level with no new pair ends the pass: nothing above it changed.
        """
        sha = _sha256
        levels = self._levels
        k = 0
        while True:
            children = levels[k]
            start = len(levels[k + 1]) << 1 if k + 1 < len(levels) else 0  # first unpaired byte
            if len(children) - start < 64:
                return
            if k + 1 == len(levels):
                levels.append(bytearray())
            unpaired = bytes(children[start:])
            levels[k + 1] += b"".join(
                [
                    sha(_NODE + unpaired[i : i + 64]).digest()
                    for i in range(0, len(unpaired) - 63, 64)
                ]
            )
            k += 1

    def _node(self, level: int, index: int) -> bytes:
        offset = index << 5
        levels = self._levels
        row = levels[level] if level < len(levels) else b""
        if index < 0 or offset + 32 > len(row):
            raise IndexError(f"node ({level}, {index}) is not in a tree of size {self.size}")
        return bytes(row[offset : offset + 32])

    def _range_hash(self, start: int, end: int) -> bytes:
        node = self._node
        return fold_right([node(level, index) for level, index in range_nodes(start, end)])

    def node(self, level: int, index: int) -> bytes:
        """The root of a complete subtree; IndexError if it is not complete yet."""
        self._settle()
        return self._node(level, index)

    def root(self, size: int | None = None) -> bytes:
        """The root at `size` leaves (default: now); any past size works."""
        if size is None:
            size = self.size
        if not 0 <= size <= self.size:
            raise ValueError(f"size {size} is outside 0..{self.size}")
        self._settle()
        return self._range_hash(0, size) if size else EMPTY_ROOT

    def inclusion_proof(self, index: int, size: int | None = None) -> list[bytes]:
        if size is None:
            size = self.size
        if size > self.size:
            raise ValueError(f"size {size} is past the tree's size {self.size}")
        ranges = inclusion_ranges(index, size)
        self._settle()
        return [self._range_hash(a, b) for a, b in ranges]

    def consistency_proof(self, size1: int, size2: int | None = None) -> list[bytes]:
        if size2 is None:
            size2 = self.size
        if size2 > self.size:
            raise ValueError(f"size {size2} is past the tree's size {self.size}")
        ranges = consistency_ranges(size1, size2)
        self._settle()
        return [self._range_hash(a, b) for a, b in ranges]


class RootAccumulator:
    """The roots of the perfect subtrees of a growing tree (a compact range): O(log n) memory.

    Made for streaming a log out of the database and checking the root at every stored
    checkpoint without holding the tree.
    """

    __slots__ = ("_size", "_stack")

    def __init__(self) -> None:
        self._size = 0
        self._stack: list[bytes] = []

    @property
    def size(self) -> int:
        return self._size

    def append(self, leaf_hash: bytes) -> None:
        self.extend((leaf_hash,))

    def extend(self, leaf_hashes: Iterable[bytes]) -> None:
        sha = _sha256
        stack = self._stack
        size = self._size
        try:
            for h in leaf_hashes:
                if len(h) != HASH_SIZE:
                    raise ValueError(f"leaf hash {size} is {len(h)} bytes, not {HASH_SIZE}")
                i = size
                size += 1
                while i & 1:  # merge every perfect subtree this leaf completes
                    h = sha(_NODE + stack.pop() + h).digest()
                    i >>= 1
                stack.append(h)
        finally:
            self._size = size

    def root(self) -> bytes:
        return fold_right(self._stack) if self._stack else EMPTY_ROOT
