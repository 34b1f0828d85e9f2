"""The transactional outbox: a sink of the ledger's transfer pipeline (ledger/pipeline.py).

LedgerService calls it inside each write transaction, right before the commit, with the
transfer rows the transaction wrote; it appends one `events` row per transfer through the same
unit of work. So an event exists if and only if its ledger change committed: a refused transfer
writes no row, and a rolled-back transaction takes its events with it.

The row names its transfer; the event's data is rendered when it is read (events/render.py).
It is on the ledger's hot path (8,190 events per bulk batch): rows, not dicts.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from strongroom.core import clock, ids
from strongroom.db.uow import UnitOfWork
from strongroom.events import store
from strongroom.events.render import render_transfer
from strongroom.ledger.pipeline import TR_ID, TR_LEDGER_ID, CommittedBatch

if TYPE_CHECKING:
    from strongroom.ledger.pipeline import Sink

__all__ = ["Outbox", "render_transfer"]


class Outbox:
    """A sink of the transfer pipeline (ledger.pipeline.Sink): one event per change."""

    def __call__(self, uow: UnitOfWork, batch: CommittedBatch) -> None:
        changes = batch.transfers
        if not changes:
            return
        now = clock.now_us()
        event_ids = ids.new_ids("evt", len(changes))
        store.insert_events(
            uow,
            [
                (event_id, row[TR_LEDGER_ID], kind, None, now, row[TR_ID])
                for event_id, kind, row in zip(event_ids, batch.kinds, changes, strict=True)
            ],
        )


if TYPE_CHECKING:
    _implements: Sink = Outbox()
