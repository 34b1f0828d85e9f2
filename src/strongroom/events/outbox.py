"""The transactional outbox: the ledger's EventSink.

LedgerService calls it inside each write transaction, right before the commit, with the
transfer rows the transaction wrote; it appends one `events` row per transfer through the same
unit of work. So an event exists if and only if its ledger change committed: a refused transfer
writes no row, and a rolled-back transaction takes its events with it.

It is on the ledger's hot path (8,190 events per bulk batch), hence rows rather than dicts and a
renderer that formats the common shape directly; its output is exactly
`json.dumps(transfer_to_dict(record), separators=(",", ":"))`, which every other shape uses.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import TYPE_CHECKING

from strongroom.core import clock, ids
from strongroom.db.uow import UnitOfWork
from strongroom.events import store
from strongroom.ledger.model import Action, Status, TransferRow, record_from_row
from strongroom.ledger.service import transfer_to_dict

if TYPE_CHECKING:
    from strongroom.ledger.service import EventSink

_ACTIONS = tuple(a.name.lower() for a in sorted(Action))
_STATUSES = tuple(s.label for s in sorted(Status))
# transfer_to_dict's keys, in its order, for a two-account transfer without metadata, target,
# expiry or effective time (the bulk shape). Strings are inserted only when they need no JSON
# escaping.
_SIMPLE = (
    '{"id":"%s","object":"transfer","ledger_id":"%s","action":"%s","status":"%s",'
    '"amount":%d,"pending":%s,"metadata":{},"created_at":"%s","effective_at":"%s",'
    '"debit_account_id":"%s","credit_account_id":"%s"}'
)


def render_transfer(row: TransferRow, times: dict[int, str] | None = None) -> str:
    """The transfer as JSON text. `times` memoizes formatted timestamps (a batch's transfers
    share one)."""
    _seq, tid, ledger_id, action, status, debit, credit, amount, legs, target, pending = row[:11]
    if (
        legs is None
        and target is None
        and row[12] is None
        and row[13] is None
        and row[15] is None
        and debit is not None
        and credit is not None
        and type(amount) is int
    ):
        text = tid + ledger_id + debit + credit
        # Printable ASCII without quote or backslash is its own JSON string body.
        if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
            created = row[14]
            at = times.get(created) if times is not None else None
            if at is None:
                at = clock.format_us(created)
                if times is not None:
                    times[created] = at
            return _SIMPLE % (
                tid,
                ledger_id,
                _ACTIONS[action],
                _STATUSES[status],
                amount,
                "true" if pending else "false",
                at,
                at,
                debit,
                credit,
            )
    return json.dumps(transfer_to_dict(record_from_row(row)), separators=(",", ":"))


class Outbox:
    """Implements ledger.service.EventSink."""

    def __call__(self, uow: UnitOfWork, events: Sequence[tuple[str, TransferRow]]) -> None:
        if not events:
            return
        now = clock.now_us()
        times: dict[int, str] = {}
        event_ids = ids.new_ids("evt", len(events))
        store.insert_events(
            uow,
            [
                (event_id, row[2], event_type, render_transfer(row, times), now)
                for event_id, (event_type, row) in zip(event_ids, events, strict=True)
            ],
        )


if TYPE_CHECKING:
    _implements: EventSink = Outbox()
