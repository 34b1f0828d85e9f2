"""Reads of the audit logs: inclusion and consistency proofs, leaves, receipts, account
statements in bounded pages, and the C2SP tlog-tiles export."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from strongroom.audit import leaf as leaves_
from strongroom.audit import offline, store
from strongroom.audit import statement as statement_
from strongroom.audit.base import AuditBase, _b64
from strongroom.audit.merkle import leaf_hash
from strongroom.core.errors import InvalidRequest, NotFound
from strongroom.core.limits import (
    STATEMENT_PAGE_ENTRIES_MAX,
)
from strongroom.db.uow import UnitOfWork
from strongroom.ledger.service import EXPIRED_EVENT


def content_of(data: bytes) -> dict[str, Any] | None:
    """A leaf decoded for people; None when it does not decode (verify says why)."""
    try:
        return leaves_.parse(data)
    except leaves_.LeafError:
        return None


class AuditReads(AuditBase):
    """Proofs, leaves, receipts, account statements and exports: reads of the logs."""

    def _size_for(self, uow: UnitOfWork, log_id: str, tree_size: int | None) -> int:
        size = store.log_size(uow, log_id)
        if tree_size is None:
            return size
        if not 0 < tree_size <= size:
            raise InvalidRequest(
                f"tree_size must be 1 to {size}, the log's size", param="tree_size"
            )
        return tree_size

    def inclusion(self, log_id: str, index: int, tree_size: int) -> list[bytes]:
        with self._uow(write=False) as uow:
            size = self._size_for(uow, log_id, tree_size)
            if not 0 <= index < size:
                raise InvalidRequest(
                    f"leaf_index must be 0 to {size - 1} for tree size {size}",
                    param="leaf_index",
                )
            layout = self.layout
            tiles = store.read_tiles(uow, log_id, layout.inclusion_tiles(index, size))
        return layout.inclusion_proof(index, size, tiles)

    def consistency(self, log_id: str, first: int, second: int) -> list[bytes]:
        with self._uow(write=False) as uow:
            size = self._size_for(uow, log_id, second)
            if not 0 < first <= size:
                raise InvalidRequest(f"first must be 1 to {size}", param="first")
            layout = self.layout
            if first == size:
                return []
            tiles = store.read_tiles(uow, log_id, layout.consistency_tiles(first, size))
        return layout.consistency_proof(first, size, tiles)

    def leaf_indexes(self, log_id: str, ref: str) -> list[int]:
        """The leaves of a transfer (its change, and its expiry if it expired) or of another
        object recorded with a ref, oldest first."""
        return [index for index, _ in self._ref_leaves(log_id, ref)]

    def _ref_leaves(self, log_id: str, ref: str) -> list[tuple[int, bytes]]:
        """(index, leaf) of `leaf_indexes`; NotFound when there is none."""
        with self._uow(write=False) as uow:
            found = self._leaves_of(uow, log_id, [ref]).get(ref, [])
        if not found:
            raise NotFound(f"no leaf for {ref} in this log", param="transfer_id")
        return found

    def _leaves_of(
        self, uow: UnitOfWork, log_id: str, refs: Sequence[str]
    ) -> dict[str, list[tuple[int, bytes]]]:
        """(index, leaf) of each ref's leaves, oldest first: by reference (expiries, other
        actions), and for transfers by their time, each bundle of that time read once."""
        out: dict[str, list[tuple[int, bytes]]] = {}
        by_time: dict[int, set[bytes]] = {}
        for ref in refs:
            prefix = leaves_.transfer_id_prefix(ref)
            for index in store.ref_indexes(uow, log_id, ref):
                for found, data in store.leaves(uow, log_id, index, index + 1):
                    # Refs are shared by every kind of object: only this transfer's leaves.
                    if leaves_.is_ledger_change(data) and data[3 : 3 + len(prefix)] == prefix:
                        out.setdefault(ref, []).append((found, data))
            at = store.transfer_created_at(uow, ref)
            if at is not None:
                by_time.setdefault(at, set()).add(leaves_.transfer_id_prefix(ref))
        for at, prefixes in by_time.items():
            for first, data in store.bundles_at(uow, log_id, at):
                opened = store.open_named(log_id, first, data)
                for k, leaf in store.leaves_holding_named(log_id, first, opened, prefixes):
                    if (
                        not leaves_.is_ledger_change(leaf)
                        or leaves_.leaf_type(leaf) == EXPIRED_EVENT
                    ):
                        continue
                    end = 5 + int.from_bytes(leaf[3:5], "big")
                    if leaf[3:end] in prefixes:
                        ref = leaf[5:end].decode()
                        out.setdefault(ref, []).append((first + k, leaf))
        for found_leaves in out.values():
            found_leaves.sort()
        return out

    def records_for(self, log_id: str, refs: Sequence[str]) -> dict[str, list[dict[str, Any]]]:
        """The record leaves (every kind but ledger changes) written with each of `refs`,
        decoded ({"type", "at", "actor", "data"}), oldest first; a ref with none is absent."""
        out: dict[str, list[dict[str, Any]]] = {}
        with self._uow(write=False) as uow:
            for ref in refs:
                for index in store.ref_indexes(uow, log_id, ref):
                    for _found, data in store.leaves(uow, log_id, index, index + 1):
                        if leaves_.is_ledger_change(data):
                            continue
                        content = content_of(data)
                        if content is not None:
                            out.setdefault(ref, []).append(content)
        return out

    def record_leaves(
        self, types: frozenset[str], log_ids: Sequence[str] | None = None
    ) -> Iterator[tuple[str, int, dict[str, Any]]]:
        """(log id, index, content) of every record leaf whose type is in `types`, log by log,
        in order (every log when `log_ids` is None): what other domains' verifiers replay their
        rows against. Ledger changes are skipped from their first bytes, without decoding; a
        bundle that does not unpack is skipped (`verify` names it)."""
        with self._uow(write=False) as uow:
            logs = store.log_ids(uow) if log_ids is None else list(log_ids)
            for log_id in logs:
                for first, _count, data in store.iter_bundles(uow, log_id, page=2):
                    try:
                        bundle = store.unpack_bundle(data)
                    except ValueError:
                        continue
                    for k, leaf in enumerate(bundle):
                        if leaves_.is_ledger_change(leaf) or leaves_.leaf_type(leaf) not in types:
                            continue
                        content = content_of(leaf)
                        if content is not None:
                            yield log_id, first + k, content

    def leaves(self, log_id: str, start: int, limit: int) -> tuple[list[dict[str, Any]], int]:
        """Leaves from `start`, at most `limit`; and the log's size."""
        with self._uow(write=False) as uow:
            size = store.log_size(uow, log_id)
            rows = store.leaves(uow, log_id, start, min(start + limit, size))
        return [self._leaf_out(i, data) for i, data in rows], size

    @staticmethod
    def _leaf_out(index: int, data: bytes) -> dict[str, Any]:
        return {
            "object": "audit_leaf",
            "index": index,
            "type": leaves_.leaf_type(data),
            "content": content_of(data),
            "leaf": _b64(data),
            "leaf_hash": _b64(leaf_hash(data)),
        }

    def receipt(self, log_id: str, ref: str, *, publish: bool = True) -> dict[str, Any]:
        """A self-contained proof that `ref`'s leaves are in the log: the leaves, their
        inclusion proofs and the signed checkpoint they are proved against. Checked offline by
        `strongroom audit verify-receipt` with the log's public key only. With `publish` false
        only a published checkpoint is used (CheckpointPending when none holds the leaves)."""
        # The leaves as found (not read again by index: a bulk bundle is walked once).
        rows = dict(self._ref_leaves(log_id, ref))
        indexes = sorted(rows)
        checkpoint = self.covering(log_id, indexes[-1], publish=publish)
        with self._uow(write=False) as uow:
            layout = self.layout
            wanted = [t for i in indexes for t in layout.inclusion_tiles(i, checkpoint.size)]
            tiles = store.read_tiles(uow, log_id, wanted)
        return {
            "object": "audit_receipt",
            "version": offline.DOCUMENT_VERSION,
            "origin": self.origin_of(log_id),
            "ref": ref,
            "checkpoint": checkpoint.note,
            "leaves": [
                {
                    "index": i,
                    "type": leaves_.leaf_type(rows[i]),
                    "leaf": _b64(rows[i]),
                    "inclusion_proof": [
                        _b64(h) for h in layout.inclusion_proof(i, checkpoint.size, tiles)
                    ],
                }
                for i in indexes
            ],
        }

    def statement(
        self,
        log_id: str,
        account_id: str,
        from_us: int,
        to_us: int,
        *,
        limit: int = STATEMENT_PAGE_ENTRIES_MAX,
        cursor: str | None = None,
        publish: bool = True,
    ) -> dict[str, Any]:
        """One page of the account's statement for (from, to]: the entries from the one in
        force at `from` to the first after `to`, `limit` at most a page, each leaf proved in
        a signed checkpoint (audit/statement.py says what a verifier concludes from the
        pages). The first page fixes the statement's versions; `next_cursor` carries them to
        the next, so the pages join without a gap or an overlap. `publish` as for receipts."""
        ledger = self.ledger
        if ledger is None:
            raise RuntimeError(
                "statements need the ledger: build the log with runtime.build_ledger"
            )
        if from_us > to_us:
            raise InvalidRequest("from must not be after to", param="from")
        if (
            isinstance(limit, bool)
            or not isinstance(limit, int)
            or not 1 <= limit <= STATEMENT_PAGE_ENTRIES_MAX
        ):
            raise InvalidRequest(
                f"limit must be an integer from 1 to {STATEMENT_PAGE_ENTRIES_MAX}",
                param="limit",
                code="invalid_limit",
            )
        account = ledger.get_account(account_id)
        if ledger.ledger_tenants([account.ledger_id]).get(account.ledger_id) != log_id:
            raise NotFound(f"no account {account_id}", param="account_id")
        if cursor is None:
            opening = ledger.balance_at(account_id, as_of_us=from_us)[0]
            closing = ledger.balance_at(account_id, as_of_us=to_us)[0]
            boundary = closing < account.version
            start = max(opening, 1)
        else:
            page = statement_.parse_cursor(cursor, from_us, to_us, account.version)
            opening, closing, boundary, start = page
        last = closing + (1 if boundary else 0)
        stop = min(start + limit - 1, last)
        wanted = ledger.entry_transfers(account_id, start, stop) if stop >= start else {}
        datas = self._entry_leaves(log_id, account_id, wanted)
        indexes = sorted(datas)
        checkpoint = self.covering(log_id, max(indexes, default=-1), publish=publish)
        size = checkpoint.size
        with self._uow(write=False) as uow:
            layout = self.layout
            tiles = store.read_tiles(
                uow, log_id, [t for i in indexes for t in layout.inclusion_tiles(i, size)]
            )
        has_more = stop < last
        return {
            "object": "audit_statement",
            "version": offline.DOCUMENT_VERSION,
            "origin": self.origin_of(log_id),
            "account_id": account_id,
            "from": from_us,
            "to": to_us,
            "opening_version": opening,
            "closing_version": closing,
            "boundary": boundary,
            "first_version": start,
            "last_version": stop,
            "has_more": has_more,
            "next_cursor": (
                statement_.cursor(from_us, to_us, opening, closing, boundary, stop + 1)
                if has_more
                else None
            ),
            "checkpoint": checkpoint.note,
            "leaves": [
                {
                    "index": i,
                    "leaf": _b64(datas[i]),
                    "inclusion_proof": [_b64(h) for h in layout.inclusion_proof(i, size, tiles)],
                }
                for i in sorted(indexes)
            ],
        }

    def _entry_leaves(
        self, log_id: str, account_id: str, wanted: dict[int, str]
    ) -> dict[int, bytes]:
        """index -> leaf, for the leaf of each (version -> transfer id) entry of the account."""
        found: dict[int, bytes] = {}
        with self._uow(write=False) as uow:
            by_transfer = self._leaves_of(uow, log_id, sorted(set(wanted.values())))
        for version, transfer_id in sorted(wanted.items()):
            for index, data in by_transfer.get(transfer_id, []):
                entries = leaves_.parse(data).get("entries") or []
                if any(e[0] == account_id and e[1] == version for e in entries):
                    found[index] = data
                    break
            else:
                raise RuntimeError(
                    f"entry {version} of {account_id} has no leaf: run `strongroom audit verify`"
                )
        return found

    def export(self, directory: Path, progress: Callable[[str], None] | None = None) -> int:
        """Every log as tlog-tiles with all its checkpoints, and the public keys in keys.txt
        (audit/offline.py). Returns the number of leaves written."""
        say = progress or (lambda _m: None)
        directory.mkdir(parents=True, exist_ok=True)
        self.publish()  # every leaf exported is under a signed checkpoint
        total = 0
        with self._uow(write=False) as uow:
            keys = [r[2] for r in store.keys(uow)]
            (directory / "keys.txt").write_text("".join(k + "\n" for k in keys))
            for log_id in store.log_ids(uow):
                say(f"log {log_id} ...")
                leaves = (data for _i, data in store.iter_leaves(uow, log_id))
                cps = [(size, note) for size, _root, note, _at in store.checkpoints(uow, log_id)]
                total += offline.write_log(directory / log_id, leaves, cps)
        return total
