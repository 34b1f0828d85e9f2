"""zstd frames: compressing a blob before it is stored, and reading one back within a bound.

One place for both, so that every reader of a stored blob (the audit log's bundles, the
compliance card-number scan that searches every column as stored) opens a frame the same way
and none can be made to allocate more than its bound by a hand-edited header."""

from __future__ import annotations

import threading
from typing import Final

import zstandard

# The first bytes of every zstd frame (RFC 8878, 3.1.1).
MAGIC: Final = b"\x28\xb5\x2f\xfd"

# zstd contexts are not thread-safe: one of each per thread and level, made once (making one
# costs more than compressing a few hundred bytes).
_contexts = threading.local()


def compress(data: bytes, level: int) -> bytes:
    """One frame holding `data`, recording its size and a checksum (a changed byte fails to
    decompress instead of reading as other data)."""
    compressors: dict[int, zstandard.ZstdCompressor] | None = getattr(
        _contexts, "compressors", None
    )
    if compressors is None:
        compressors = _contexts.compressors = {}
    found = compressors.get(level)
    if found is None:
        found = compressors[level] = zstandard.ZstdCompressor(level=level, write_checksum=True)
    return found.compress(data)


def is_frame(data: bytes) -> bool:
    return data[:4] == MAGIC


def decompress(data: bytes, limit: int) -> bytes:
    """What the frame `data` holds. ValueError, saying why, if its header says it holds more
    than `limit` bytes (nothing is allocated then) or does not say, if it does not decompress
    or fails its checksum (found once decompressed: at most `limit` bytes were), if bytes
    follow it, or if it is not a frame."""
    try:
        size = zstandard.frame_content_size(data)
    except zstandard.ZstdError:
        raise ValueError("a compressed frame has no readable header") from None
    if size < 0:  # zstandard answers -1 for a frame that does not record its size
        raise ValueError("a compressed frame does not record its size")
    if size > limit:
        raise ValueError(f"a compressed frame says it holds {size} bytes, over {limit}")
    decompressor: zstandard.ZstdDecompressor | None = getattr(_contexts, "decompressor", None)
    if decompressor is None:
        decompressor = _contexts.decompressor = zstandard.ZstdDecompressor()
    try:
        out = decompressor.decompress(data, allow_extra_data=False)
    except zstandard.ZstdError as exc:
        raise ValueError(f"a compressed frame does not decompress ({exc})") from None
    if len(out) != size:
        raise ValueError("a compressed frame holds another size than its header says")
    return out
