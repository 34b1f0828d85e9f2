"""The transactional outbox: the ledger's EventSink.

LedgerService calls it inside each write transaction, right before the commit, with the
transfer rows the transaction wrote; it appends one `events` row per transfer through the same
unit of work. So an event exists if and only if its ledger change committed: a refused transfer
writes no row, and a rolled-back transaction takes its events with it.

The row names its transfer; the event's data is rendered when it is read (events/render.py).
It is on the ledger's hot path (8,190 events per bulk batch): rows, not dicts.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

from strongroom.core import clock, ids
from strongroom.db.uow import UnitOfWork
from strongroom.events import store
from strongroom.events.render import render_transfer
from strongroom.ledger.model import TransferRow

if TYPE_CHECKING:
    from strongroom.ledger.service import EventSink

__all__ = ["Outbox", "render_transfer"]


class Outbox:
    """Implements ledger.service.EventSink."""

    def __call__(self, uow: UnitOfWork, events: Sequence[tuple[str, TransferRow]]) -> None:
        if not events:
            return
        now = clock.now_us()
        event_ids = ids.new_ids("evt", len(events))
        store.insert_events(
            uow,
            [
                (event_id, row[2], event_type, None, now, row[1])
                for event_id, (event_type, row) in zip(event_ids, events, strict=True)
            ],
        )


if TYPE_CHECKING:
    _implements: EventSink = Outbox()
