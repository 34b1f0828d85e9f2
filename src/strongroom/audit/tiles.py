"""Proofs from stored tiles, whatever stores them, plus a reader for C2SP tlog-tiles on disk.

A tile (level L, index i) of height H holds the 32-byte hashes of the complete tree nodes at
tree level L*H with node indexes i*2**H .. i*2**H + w - 1, concatenated; w (the width) is 2**H
for a full tile and less at the right edge. Only that bottom row is stored: a node at tree level
L*H + r inside the tile costs 2**r - 1 hashes to recompute. Hence the trade-off in H:

- small H: more rows (about n / (2**H - 1) tiles) but cheap proofs, and each append rewrites
  small edge tiles (at most 2**H * 32 bytes per tile level);
- H = 8 (tlog-tiles): few rows, but a proof may recompute up to ~247 hashes per tile level.

The contract with a store: ask which tiles an operation needs (`*_tiles`), fetch them in one
query, then assemble in memory. A tile read today may be wider than the tree size a proof is for;
only its first hashes are used, and those are the same nodes they were then (complete nodes never
change), so proofs for past sizes work from current tiles.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Final

from strongroom.audit.merkle import (
    EMPTY_ROOT,
    HASH_SIZE,
    LeafRange,
    NodeId,
    consistency_ranges,
    fold_right,
    inclusion_ranges,
    range_nodes,
)

TILE_HEIGHT_MIN: Final = 1
TILE_HEIGHT_MAX: Final = 8  # 8 KiB tiles; tlog-tiles' height
TLOG_TILE_HEIGHT: Final = 8
TLOG_WIDTH_FULL: Final = 1 << TLOG_TILE_HEIGHT
TLOG_TILE_LEVEL_MAX: Final = 63
ENTRY_SIZE_MAX: Final = 0xFFFF  # tlog-tiles entry bundles use a uint16 length prefix

_sha256 = hashlib.sha256
_NODE: Final = b"\x01"


TileId = tuple[int, int]
"""(tile level, tile index): a plain tuple, the key a store's rows map to."""


class TileError(ValueError):
    """A tile the operation needs is missing or shorter than the tree size requires."""


def _perfect_root(row: bytes) -> bytes:
    """MTH of 2**r consecutive hashes (r >= 1). Unrolled for r <= 3, the rows most proofs need;
    halving above that. Both beat pairing the whole row level by level (fewer temporaries)."""
    sha, node = _sha256, _NODE
    n = len(row)
    if n == 64:
        return sha(node + row).digest()
    if n == 128:
        return sha(node + sha(node + row[:64]).digest() + sha(node + row[64:]).digest()).digest()
    if n == 256:
        left = sha(node + sha(node + row[:64]).digest() + sha(node + row[64:128]).digest())
        right = sha(node + sha(node + row[128:192]).digest() + sha(node + row[192:]).digest())
        return sha(node + left.digest() + right.digest()).digest()
    half = n >> 1
    return sha(node + _perfect_root(row[:half]) + _perfect_root(row[half:])).digest()


class TileLayout:
    """The pure arithmetic of tiles of one height: what to fetch, what to write, how to prove."""

    __slots__ = ("_full_bytes", "_mask", "height", "width_max")

    def __init__(self, height: int) -> None:
        if not TILE_HEIGHT_MIN <= height <= TILE_HEIGHT_MAX:
            raise ValueError(
                f"tile height {height} is outside {TILE_HEIGHT_MIN}..{TILE_HEIGHT_MAX}"
            )
        self.height = height
        self.width_max = 1 << height
        self._mask = self.width_max - 1
        self._full_bytes = self.width_max * HASH_SIZE

    def __repr__(self) -> str:
        return f"TileLayout(height={self.height})"

    # -- where things are ------------------------------------------------------------------------

    def tile_of(self, level: int, index: int) -> tuple[TileId, int, int]:
        """The tile holding node (level, index), the byte offset of its row, and its row length."""
        tile_level, r = divmod(level, self.height)
        first = index << r  # the node's leftmost descendant in the tile's bottom row
        offset = (first & self._mask) * HASH_SIZE
        return (tile_level, first >> self.height), offset, HASH_SIZE << r

    def width(self, tile: TileId, size: int) -> int:
        """How many hashes `tile` holds once the tree has `size` leaves (0: not yet written)."""
        count = size >> (tile[0] * self.height)  # complete nodes at the tile's tree level
        return max(0, min(self.width_max, count - (tile[1] << self.height)))

    def _nodes_tiles(self, nodes: Iterable[NodeId]) -> list[TileId]:
        height = self.height
        return sorted(
            {(level // height, index >> (height - level % height)) for level, index in nodes}
        )

    def _node(self, level: int, index: int, tiles: Mapping[TileId, bytes]) -> bytes:
        """Node (level, index) from its tile: a slice, plus 2**r - 1 hashes r levels up the row."""
        height = self.height
        tile_level, r = divmod(level, height)
        first = index << r
        tile = tiles.get((tile_level, first >> height))
        offset = (first & self._mask) * HASH_SIZE
        end = offset + (HASH_SIZE << r)
        if tile is None or len(tile) < end:
            raise TileError(self._tile_problem((tile_level, first >> height), tile, end))
        return tile[offset:end] if r == 0 else _perfect_root(tile[offset:end])

    @staticmethod
    def _tile_problem(tile_id: TileId, tile: bytes | None, end: int) -> str:
        if tile is None:
            return f"tile {tile_id} is missing"
        return f"tile {tile_id} has {len(tile) // HASH_SIZE} hashes, needs {end // HASH_SIZE}"

    def _range_hash(self, start: int, end: int, tiles: Mapping[TileId, bytes]) -> bytes:
        node = self._node
        return fold_right([node(level, index, tiles) for level, index in range_nodes(start, end)])

    def _ranges_nodes(self, ranges: Iterable[LeafRange]) -> Iterator[NodeId]:
        for start, end in ranges:
            yield from range_nodes(start, end)

    # -- appending -------------------------------------------------------------------------------

    def edge_tiles(self, size: int) -> list[TileId]:
        """The partial tiles at the right edge of a tree of `size`: what `append` must be given."""
        edge: list[TileId] = []
        count, level = size, 0
        while count:
            if count & self._mask:
                edge.append((level, count >> self.height))
            count >>= self.height
            level += 1
        return edge

    def append(
        self, size: int, edge: Mapping[TileId, bytes], new_leaf_hashes: Sequence[bytes]
    ) -> dict[TileId, bytes]:
        """Every tile, new or grown, to upsert after appending `new_leaf_hashes` at `size`.

        `edge` holds the current content of `edge_tiles(size)`. Each tile completed here adds its
        root to the tile level above, computed one level at a time over all completed tiles.
        """
        if set(map(len, new_leaf_hashes)) - {HASH_SIZE}:
            i, h = next((i, h) for i, h in enumerate(new_leaf_hashes) if len(h) != HASH_SIZE)
            raise ValueError(f"leaf hash {i} is {len(h)} bytes, not {HASH_SIZE}")
        height, full_bytes, width = self.height, self._full_bytes, self.width_max
        sha, prefix = _sha256, _NODE
        written: dict[TileId, bytes] = {}
        added = list(new_leaf_hashes)  # the new nodes at this tile level's tree level
        count, level = size, 0  # complete nodes at this tile level's tree level, before
        while added:
            first_tile = count >> height
            kept = count & self._mask
            if kept:
                tile_id = (level, first_tile)
                prev = edge.get(tile_id)
                if prev is None or len(prev) != kept * HASH_SIZE:
                    found = "missing" if prev is None else f"{len(prev) // HASH_SIZE} hashes"
                    raise TileError(f"edge tile {tile_id} should hold {kept} hashes: {found}")
                prev = bytes(prev)
                nodes = [prev[i : i + HASH_SIZE] for i in range(0, len(prev), HASH_SIZE)]
                nodes += added
            else:
                nodes = added
            row = b"".join(nodes)
            for j, offset in enumerate(range(0, len(row), full_bytes)):
                written[level, first_tile + j] = row[offset : offset + full_bytes]
            # The roots of every completed tile, one tree level at a time, from the list of
            # nodes (no slicing of a joined row).
            completed = nodes[: len(nodes) // width * width]
            for _ in range(height):
                completed = [
                    sha(prefix + left + right).digest()
                    for left, right in zip(completed[0::2], completed[1::2], strict=True)
                ]
            added = completed
            count >>= height
            level += 1
        return written

    # -- proofs ----------------------------------------------------------------------------------

    def inclusion_tiles(self, index: int, size: int) -> list[TileId]:
        return self._nodes_tiles(self._ranges_nodes(inclusion_ranges(index, size)))

    def inclusion_proof(self, index: int, size: int, tiles: Mapping[TileId, bytes]) -> list[bytes]:
        """PATH(index, D[0:size]); the hot path, so perfect siblings skip the range machinery."""
        if not 0 <= index < size:
            raise ValueError(f"leaf index {index} is outside a tree of size {size}")
        node = self._node
        proof: list[bytes] = []
        for level in range((size - 1).bit_length()):
            sibling = (index >> level) ^ 1
            start = sibling << level
            if start + (1 << level) <= size:
                proof.append(node(level, sibling, tiles))
            elif start < size:  # the one sibling cut by the right edge
                proof.append(self._range_hash(start, size, tiles))
        return proof

    def consistency_tiles(self, size1: int, size2: int) -> list[TileId]:
        return self._nodes_tiles(self._ranges_nodes(consistency_ranges(size1, size2)))

    def consistency_proof(
        self, size1: int, size2: int, tiles: Mapping[TileId, bytes]
    ) -> list[bytes]:
        node = self._node
        proof: list[bytes] = []
        for start, end in consistency_ranges(size1, size2):
            length = end - start
            if length & (length - 1) == 0:
                level = length.bit_length() - 1
                proof.append(node(level, start >> level, tiles))
            else:
                proof.append(self._range_hash(start, end, tiles))
        return proof

    def root_tiles(self, size: int) -> list[TileId]:
        return self._nodes_tiles(range_nodes(0, size))

    def root(self, size: int, tiles: Mapping[TileId, bytes]) -> bytes:
        if size < 0:
            raise ValueError(f"negative tree size {size}")
        return self._range_hash(0, size, tiles) if size else EMPTY_ROOT

    def leaf_hash(self, index: int, tiles: Mapping[TileId, bytes]) -> bytes:
        return self._node(0, index, tiles)


# -- C2SP tlog-tiles on disk ---------------------------------------------------------------------


def tlog_index_path(index: int) -> str:
    """A tile index as tlog-tiles path elements: 1234067 -> x001/x234/067."""
    if index < 0:
        raise ValueError(f"negative tile index {index}")
    groups = [f"{index % 1000:03d}"]
    index //= 1000
    while index:
        groups.append(f"x{index % 1000:03d}")
        index //= 1000
    return "/".join(reversed(groups))


def _width_suffix(width: int | None) -> str:
    if width is None or width == TLOG_WIDTH_FULL:
        return ""
    if not 1 <= width < TLOG_WIDTH_FULL:
        raise ValueError(f"tile width {width} is outside 1..{TLOG_WIDTH_FULL}")
    return f".p/{width}"


def tlog_tile_path(level: int, index: int, width: int | None = None) -> str:
    """`tile/<L>/<N>[.p/<W>]`; width None or 256 names the full tile."""
    if not 0 <= level <= TLOG_TILE_LEVEL_MAX:
        raise ValueError(f"tile level {level} is outside 0..{TLOG_TILE_LEVEL_MAX}")
    return f"tile/{level}/{tlog_index_path(index)}{_width_suffix(width)}"


def tlog_entries_path(index: int, width: int | None = None) -> str:
    """`tile/entries/<N>[.p/<W>]`."""
    return f"tile/entries/{tlog_index_path(index)}{_width_suffix(width)}"


def parse_entry_bundle(data: bytes) -> list[bytes]:
    """The entries of a bundle: each a big-endian uint16 length, then that many bytes."""
    entries: list[bytes] = []
    offset = 0
    while offset < len(data):
        if offset + 2 > len(data):
            raise ValueError(f"entry bundle ends inside a length prefix at byte {offset}")
        length = int.from_bytes(data[offset : offset + 2], "big")
        offset += 2
        if offset + length > len(data):
            raise ValueError(f"entry {len(entries)} runs past the end of the bundle")
        entries.append(data[offset : offset + length])
        offset += length
    return entries


def encode_entry_bundle(entries: Iterable[bytes]) -> bytes:
    """The inverse of `parse_entry_bundle`, for serving a log as tlog-tiles."""
    parts: list[bytes] = []
    for i, entry in enumerate(entries):
        if len(entry) > ENTRY_SIZE_MAX:
            raise ValueError(f"entry {i} is {len(entry)} bytes, over {ENTRY_SIZE_MAX}")
        parts += (len(entry).to_bytes(2, "big"), entry)
    return b"".join(parts)


def _read_tlog_file(directory: Path, full: str, partial: str | None) -> bytes:
    """The exact partial file for this size, else the full one (tlog-tiles allows that fallback)."""
    for relative in (partial, full) if partial else (full,):
        path = directory / relative
        if path.is_file():
            return path.read_bytes()
    raise TileError(f"{partial or full} is missing under {directory}")


def read_tlog_tiles(directory: Path, size: int) -> dict[TileId, bytes]:
    """Every tile of a tlog-tiles log at `size`, keyed for `TileLayout(8)`, widths trimmed."""
    layout = TileLayout(TLOG_TILE_HEIGHT)
    tiles: dict[TileId, bytes] = {}
    count, level = size, 0
    while count:
        for index in range((count + TLOG_WIDTH_FULL - 1) // TLOG_WIDTH_FULL):
            tile_id = (level, index)
            width = layout.width(tile_id, size)
            full = tlog_tile_path(level, index)
            partial = tlog_tile_path(level, index, width) if width < TLOG_WIDTH_FULL else None
            data = _read_tlog_file(directory, full, partial)
            if len(data) < width * HASH_SIZE:
                raise TileError(f"{full}: {len(data)} bytes, needs {width * HASH_SIZE}")
            tiles[tile_id] = data[: width * HASH_SIZE]
        count >>= TLOG_TILE_HEIGHT
        level += 1
    return tiles


def read_tlog_entries(directory: Path, size: int) -> list[bytes]:
    """The first `size` entries of a tlog-tiles log, from its entry bundles."""
    entries: list[bytes] = []
    for index in range((size + TLOG_WIDTH_FULL - 1) // TLOG_WIDTH_FULL):
        width = min(TLOG_WIDTH_FULL, size - index * TLOG_WIDTH_FULL)
        full = tlog_entries_path(index)
        partial = tlog_entries_path(index, width) if width < TLOG_WIDTH_FULL else None
        bundle = parse_entry_bundle(_read_tlog_file(directory, full, partial))
        if len(bundle) < width:
            raise TileError(f"entry bundle {index} has {len(bundle)} entries, needs {width}")
        entries.extend(bundle[:width])
    return entries
