"""What a third party runs with no database and no server: a receipt checked against the
log's public key, and a whole exported log recomputed against its signed checkpoints.

An export is one directory per log in the C2SP tlog-tiles layout (height-8 tiles under
`tile/<L>/...`, entry bundles under `tile/entries/...`, the latest signed checkpoint in
`checkpoint`), plus every checkpoint ever published in `checkpoints/<size>` and the public keys
in `keys.txt` at the top. Any tlog-tiles client can read it; `verify_export` is ours.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from strongroom.audit import leaf as leaves_
from strongroom.audit import note as notes
from strongroom.audit.checkpoint import Checkpoint, CheckpointError
from strongroom.audit.checkpoint import parse as parse_checkpoint
from strongroom.audit.merkle import ProofError, RootAccumulator, leaf_hash, verify_inclusion
from strongroom.audit.tiles import (
    ENTRY_SIZE_MAX,
    TLOG_TILE_HEIGHT,
    TileLayout,
    read_tlog_entries,
    tlog_entries_path,
    tlog_tile_path,
)

# The layout version of receipts and statements (the documents proved_leaves reads).
DOCUMENT_VERSION: Final = 1


class ReceiptError(ValueError):
    """A receipt that does not prove what it claims."""


@dataclass(frozen=True, slots=True)
class ReceiptCheck:
    origin: str
    tree_size: int
    leaves: list[dict[str, Any]]  # each leaf's index and parsed content


def _b64(text: object, what: str, error: type[ValueError]) -> bytes:
    if not isinstance(text, str):
        raise error(f"{what} must be base64 text")
    try:
        return base64.b64decode(text, validate=True)
    except binascii.Error:
        raise error(f"{what} is not base64") from None


def proved_leaves(
    document: Any, kind: str, verifier_keys: Iterable[str], error: type[ValueError]
) -> tuple[Checkpoint, list[tuple[int, dict[str, Any]]]]:
    """What receipts and statements share: the document is a version-1 `kind`, its
    checkpoint is signed by one of the keys and is of the document's `origin`, and each of its
    `leaves` is in that checkpoint's tree. Returns the checkpoint and each leaf's index and
    decoded content; raises `error` naming what failed."""
    if not isinstance(document, dict) or document.get("object") != kind:
        raise error(f"not an {kind}")
    if document.get("version") != DOCUMENT_VERSION:
        raise error(f"{kind} version {document.get('version')!r} is not supported")
    try:
        verifiers = [notes.Verifier(k) for k in verifier_keys]
        checkpoint = parse_checkpoint(
            notes.open(str(document.get("checkpoint", "")), verifiers).text
        )
    except (notes.NoteError, CheckpointError) as exc:
        raise error(f"the checkpoint does not verify: {exc}") from None
    if checkpoint.origin != document.get("origin"):
        raise error(
            f"the checkpoint is of log {checkpoint.origin!r}, not {document.get('origin')!r}"
        )
    items = document.get("leaves")
    if not isinstance(items, list):
        raise error("leaves must be a list")
    proved = []
    for n, item in enumerate(items):
        if not isinstance(item, dict):
            raise error(f"leaves[{n}] is not an object")
        data = _b64(item.get("leaf"), f"leaves[{n}].leaf", error)
        index = item.get("index")
        proof_items = item.get("inclusion_proof")
        if type(index) is not int or not isinstance(proof_items, list):
            raise error(f"leaves[{n}] needs an integer index and an inclusion_proof list")
        proof = [_b64(h, f"leaves[{n}].inclusion_proof", error) for h in proof_items]
        try:
            verify_inclusion(leaf_hash(data), index, checkpoint.size, proof, checkpoint.root_hash)
        except ProofError as exc:
            raise error(f"leaf {index} is not in the checkpoint's tree: {exc}") from None
        try:
            proved.append((index, leaves_.parse(data)))
        except leaves_.LeafError as exc:
            raise error(f"leaf {index}: {exc}") from None
    return checkpoint, proved


def verify_receipt(receipt: Any, verifier_keys: Iterable[str]) -> ReceiptCheck:
    """Check a receipt (GET /v1/transfers/{id}/receipt) with the log's public key(s) only:
    the checkpoint is signed by one of them, names the receipt's origin, and every leaf is in
    the tree it commits to and is a change of the receipt's transfer. Raises ReceiptError
    naming what failed."""
    checkpoint, proved = proved_leaves(receipt, "audit_receipt", verifier_keys, ReceiptError)
    if not proved:
        raise ReceiptError("the receipt holds no leaf")
    ref = receipt.get("ref")
    for index, content in proved:
        transfer = content.get("transfer")
        if not isinstance(transfer, dict) or transfer.get("id") != ref:
            raise ReceiptError(f"leaf {index} is not a change of transfer {ref!r}")
    checked = [{"index": index, "leaf": content} for index, content in proved]
    return ReceiptCheck(checkpoint.origin, checkpoint.size, checked)


# -- export ---------------------------------------------------------------------------------


def write_log(
    directory: Path,
    leaves: Iterator[bytes],
    checkpoints: Iterable[tuple[int, str]],
) -> int:
    """One log as tlog-tiles: entry bundles and height-8 tiles from the leaves (in order),
    and every checkpoint note. Returns the number of leaves written."""
    layout = TileLayout(TLOG_TILE_HEIGHT)
    width = 1 << TLOG_TILE_HEIGHT
    tiles: dict[tuple[int, int], bytes] = {}
    bundle: list[bytes] = []
    size = 0

    def flush(final: bool) -> None:
        nonlocal tiles, bundle
        if not bundle:
            return
        start = size - len(bundle)
        partial = len(bundle) if len(bundle) < width else None
        path = directory / tlog_entries_path(start // width, partial)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(b"".join(len(d).to_bytes(2, "big") + d for d in bundle))
        bundle = []
        if final:
            for (level, index), hashes in tiles.items():
                count = len(hashes) // 32
                tile_path = directory / tlog_tile_path(
                    level, index, count if count < width else None
                )
                tile_path.parent.mkdir(parents=True, exist_ok=True)
                tile_path.write_bytes(hashes)

    pending: list[bytes] = []  # leaf hashes not yet in the tiles

    def grow() -> None:
        start = size - len(pending)
        edge = {t: tiles[t] for t in layout.edge_tiles(start)}
        tiles.update(layout.append(start, edge, pending))
        pending.clear()

    for data in leaves:
        if len(data) > ENTRY_SIZE_MAX:
            raise ValueError(
                f"leaf {size} is over {ENTRY_SIZE_MAX} bytes: tlog-tiles cannot hold it"
            )
        pending.append(leaf_hash(data))
        size += 1
        bundle.append(data)
        if len(bundle) == width:
            grow()
            flush(final=False)
    if pending:
        grow()
    flush(final=True)
    latest = None
    for tree_size, note in checkpoints:
        path = directory / "checkpoints" / str(tree_size)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(note)
        latest = note
    if latest is not None:
        (directory / "checkpoint").write_text(latest)
    return size


@dataclass(slots=True)
class ExportCheck:
    logs: int = 0
    leaves: int = 0
    checkpoints: int = 0
    problems: list[str] = field(default_factory=list)


def verify_export(directory: Path, verifier_keys: Iterable[str]) -> ExportCheck:
    """Recompute every exported log from its entries and check each checkpoint's signature,
    origin (it must be the log of its directory) and root, and the exported tiles against the
    entries. A log without a checkpoint proves nothing and is a problem."""
    verifiers = [notes.Verifier(k) for k in verifier_keys]
    result = ExportCheck()
    for log_dir in sorted(p for p in directory.iterdir() if p.is_dir()):
        result.logs += 1
        name = log_dir.name
        cps: list[Checkpoint] = []
        for path in sorted((log_dir / "checkpoints").glob("*")):
            try:
                checkpoint = parse_checkpoint(notes.open(path.read_text(), verifiers).text)
            except (notes.NoteError, CheckpointError, ValueError, OSError) as exc:
                result.problems.append(f"{name}: checkpoint {path.name}: {exc}")
                continue
            if path.name != str(checkpoint.size):
                result.problems.append(
                    f"{name}: checkpoint {path.name} is of size {checkpoint.size}"
                )
            elif not checkpoint.origin.endswith("/" + name):
                result.problems.append(
                    f"{name}: checkpoint {path.name} is of log {checkpoint.origin}"
                )
            else:
                cps.append(checkpoint)
        if not cps:
            result.problems.append(f"{name}: no checkpoint that verifies")
            continue
        size = max(cp.size for cp in cps)
        try:
            entries = read_tlog_entries(log_dir, size)
        except (OSError, ValueError) as exc:
            result.problems.append(f"{name}: entries: {exc}")
            continue
        acc = RootAccumulator()
        by_size = {cp.size: cp for cp in cps}
        hashes = []
        for i, data in enumerate(entries):
            h = leaf_hash(data)
            hashes.append(h)
            acc.append(h)
            cp = by_size.get(i + 1)
            if cp is not None:
                result.checkpoints += 1
                if cp.root_hash != acc.root():
                    result.problems.append(
                        f"{name}: the entries up to {cp.size} do not give its root"
                    )
        result.leaves += len(entries)
        width_full = 1 << TLOG_TILE_HEIGHT
        for (level, index), row in TileLayout(TLOG_TILE_HEIGHT).append(0, {}, hashes).items():
            width = len(row) // 32
            path = log_dir / tlog_tile_path(level, index, width if width < width_full else None)
            if not path.is_file() or path.read_bytes() != row:
                result.problems.append(f"{name}: tile {path.relative_to(log_dir)} does not match")
                break
    return result


def load_receipt(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ReceiptError(f"cannot read {path}: {exc}") from None
