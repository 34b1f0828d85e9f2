"""An event's data: the transfer as the API renders it (`transfer_to_dict`), as it was when the
event happened.

It is rendered when the event is read (listed, fetched, delivered), not when it is written: the
outbox row names its transfer, and a transfer row changes after its event only in its status,
which the event's type gives back (a pending transfer's `transfer.created` says `pending`
whatever came after; every other event's transfer never changes status again). The outbox
write stays small on the ledger's hot path, and the data is rendered once per read.

Rows, not dicts, and a formatter for the common shape: its output is exactly
`json.dumps(transfer_to_dict(record), separators=(",", ":"))`, which every other shape uses.
"""

from __future__ import annotations

import json

from strongroom.core import clock
from strongroom.ledger.model import Action, Status, TransferRow, record_from_row
from strongroom.ledger.service import transfer_to_dict

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


_PENDING = int(Status.PENDING)


def event_data(event_type: str, row: TransferRow) -> str:
    """The data of an event of `event_type` about the transfer `row` (as stored now)."""
    if event_type == "transfer.created" and row[10] and row[4] != _PENDING:
        row = (*row[:4], _PENDING, *row[5:])
    return render_transfer(row)
