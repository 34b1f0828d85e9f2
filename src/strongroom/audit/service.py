"""The audit log: one append-only RFC 9162 Merkle log per tenant, in the ledger's database.

- Appends run inside the transaction of the change they record (the ledger calls this object
  as its audit sink right before its commit), so the log holds a leaf for a change if and only
  if the change committed. The log's row is locked for the append: leaf indexes follow commit
  order, on SQLite and PostgreSQL alike.
- The tree is kept as tiles (audit/tiles.py) updated in the same transaction: any proof or
  root for any size up to the log's is one query for a handful of tiles.
- Checkpoints (C2SP tlog-checkpoint, signed as C2SP signed notes with Ed25519) are published
  on demand and by `serve` at an interval; every one is kept.
- `verify` recomputes every log from its leaves against its tiles and every checkpoint, and
  checks the ledger's transfers against their leaves."""

from __future__ import annotations

import operator
from typing import Final

from strongroom.audit import leaf as leaves_
from strongroom.audit.base import (
    KEY_ROTATED,
    LEAVES_PAGE_MAX,
    TILE_HEIGHT,
    AuditBase,
    SignedCheckpoint,
    TenantLookup,
)
from strongroom.audit.reads import AuditReads
from strongroom.audit.verify import AuditVerify, VerifyReport
from strongroom.db.uow import UnitOfWork
from strongroom.ledger.pipeline import TR_CREATED_AT, TR_ID, TR_LEDGER_ID, CommittedBatch
from strongroom.ledger.service import EXPIRED_EVENT

_LEDGER_ID: Final = operator.itemgetter(TR_LEDGER_ID)
_CREATED_AT: Final = operator.itemgetter(TR_CREATED_AT)


class AuditLog(AuditReads, AuditVerify, AuditBase):
    """The transfer pipeline's last sink (ledger.pipeline.Sink), the ledger's Recorder, and
    everything else about the logs: the write side and keys in audit/base.py, reads and
    proofs in audit/reads.py, the verifier in audit/verify.py."""

    def __call__(self, uow: UnitOfWork, batch: CommittedBatch) -> None:
        """A sink of the transfer pipeline, the last: one leaf per ledger change, in the
        ledger's transaction, to its tenant's log (appending locks the log's row).

        The hot path of a bulk batch: entries are matched to their transfers two by two as
        the leaves are packed (the engine writes both in the same order, leaf.batch_leaves),
        and each log gets one bundle. A transfer's leaf is found later by the transfer's
        created_at, the bundle's time (the batch's); an expiry's (the transfer row keeps its
        creation time) by reference."""
        rows = batch.transfers
        if not rows:
            return
        tenants = self._tenants
        ledgers = set(map(_LEDGER_ID, rows))
        if not ledgers <= tenants.keys():
            tenants = self._tenants_of(uow, ledgers)
        at = batch.at_us
        kinds = batch.kinds
        datas = leaves_.batch_leaves(
            kinds, rows, batch.entries, wide=batch.wide, actor=batch.actor, actors=batch.actors
        )
        # A leaf not found by the bundle's time (an expiry: its row keeps its creation time)
        # is indexed by reference.
        if len(ledgers) == 1:  # the usual case: one log, no per-event look-up
            refs: list[tuple[str, int]] = []
            # A bulk batch creates every one of its transfers: no refs, found without a loop.
            if EXPIRED_EVENT in kinds or list(map(_CREATED_AT, rows)).count(at) != len(rows):
                refs = [
                    (row[TR_ID], i)
                    for i, (k, row) in enumerate(zip(kinds, rows, strict=True))
                    if k == EXPIRED_EVENT or row[TR_CREATED_AT] != at
                ]
            self._append(uow, tenants[rows[0][TR_LEDGER_ID]], datas, refs, at)
            return
        by_log: dict[str, tuple[list[bytes], list[tuple[str, int]]]] = {}
        for kind, row, data in zip(kinds, rows, datas, strict=True):
            mine, refs = by_log.setdefault(tenants[row[TR_LEDGER_ID]], ([], []))
            if kind == EXPIRED_EVENT or row[TR_CREATED_AT] != at:
                refs.append((row[TR_ID], len(mine)))
            mine.append(data)
        for log_id in sorted(by_log):
            self._append(uow, log_id, *by_log[log_id], at)


__all__ = [
    "KEY_ROTATED",
    "LEAVES_PAGE_MAX",
    "TILE_HEIGHT",
    "AuditLog",
    "SignedCheckpoint",
    "TenantLookup",
    "VerifyReport",
]
