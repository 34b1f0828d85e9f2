"""C2SP tlog-checkpoint: the note text that commits a log to its tree (origin, size, root hash).

Parsing is strict so that one tree head has exactly one text: a signature over a checkpoint is
then a commitment to that tree head and nothing else.
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Final

from strongroom.audit.merkle import HASH_SIZE

# Sizes are stored as signed 64-bit integers in both databases.
CHECKPOINT_SIZE_MAX: Final = 2**63 - 1
CHECKPOINT_LINE_CHARS_MAX: Final = 4_096
CHECKPOINT_EXTENSIONS_MAX: Final = 16

_SIZE = re.compile(r"0|[1-9][0-9]*")


class CheckpointError(ValueError):
    """The text is not a well-formed checkpoint."""


def _check_line(line: str, what: str) -> None:
    if not line:
        raise CheckpointError(f"{what} is empty")
    if len(line) > CHECKPOINT_LINE_CHARS_MAX:
        raise CheckpointError(f"{what} is longer than {CHECKPOINT_LINE_CHARS_MAX} characters")
    if any(c < "\x20" for c in line):
        raise CheckpointError(f"{what} contains a control character")


@dataclass(frozen=True, slots=True)
class Checkpoint:
    origin: str
    size: int
    root_hash: bytes
    extensions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        _check_line(self.origin, "origin")
        if isinstance(self.size, bool) or not 0 <= self.size <= CHECKPOINT_SIZE_MAX:
            raise CheckpointError(f"tree size {self.size} is outside 0..{CHECKPOINT_SIZE_MAX}")
        if len(self.root_hash) != HASH_SIZE:
            raise CheckpointError(f"root hash is {len(self.root_hash)} bytes, not {HASH_SIZE}")
        if len(self.extensions) > CHECKPOINT_EXTENSIONS_MAX:
            raise CheckpointError(f"more than {CHECKPOINT_EXTENSIONS_MAX} extension lines")
        for line in self.extensions:
            _check_line(line, "extension line")

    def to_text(self) -> str:
        """origin, size, base64(root), extension lines; each ending in a newline."""
        lines = [self.origin, str(self.size), base64.b64encode(self.root_hash).decode()]
        return "\n".join([*lines, *self.extensions]) + "\n"


def parse(text: str) -> Checkpoint:
    """The checkpoint in a note's text, or CheckpointError."""
    if not text.endswith("\n"):
        raise CheckpointError("checkpoint text must end with a newline")
    lines = text[:-1].split("\n")
    if len(lines) < 3:
        raise CheckpointError("checkpoint needs an origin, a size and a root hash")
    origin, size_text, root_text, *extensions = lines
    _check_line(size_text, "tree size")
    if not _SIZE.fullmatch(size_text):
        raise CheckpointError("tree size must be decimal digits without leading zeros")
    try:
        root_hash = base64.b64decode(root_text, validate=True)
    except (binascii.Error, ValueError) as e:
        raise CheckpointError("root hash is not valid base64") from e
    if base64.b64encode(root_hash).decode() != root_text:
        raise CheckpointError("root hash is not canonical base64")
    return Checkpoint(origin, int(size_text), root_hash, tuple(extensions))
