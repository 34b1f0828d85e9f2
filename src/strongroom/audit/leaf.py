"""The canonical bytes of a leaf: version 1.

A leaf is UTF-8 JSON with its members in a fixed order and no whitespace; integers for money
and times (epoch microseconds); `null` for what does not apply. Verifiers need no schema to
check a proof (they hash the bytes), and a person can read a leaf. The encoding is frozen: a
change to it is a new `v`, and readers keep reading every version ever written.

A ledger change (docs/audit.md has the full description):

    {"v":1,"type":"transfer.created","transfer":{...the transfer row...},
     "entries":[[account_id,version,direction,amount,pending_delta,
                 debits_posted,credits_posted,debits_pending,credits_pending,at],...]}

`entries` are the account entries the change wrote, with each account's gap-free version, its
four counters after the entry and the entry's time: what an account statement's completeness
proof rests on (audit/statement.py).

Any other action (`record`): {"v":1,"type":"...","at":<us>,"actor":"...","data":{...}}.

It is on the ledger's hot path (one leaf per transfer, 8,190 per bulk batch): rows in, text
formatted directly, json.dumps only for strings that need escaping.
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from typing import Any, Final

from strongroom.ledger.engine import EntryRow
from strongroom.ledger.model import Action, Status, TransferRow

VERSION: Final = 1
_ACTIONS: Final = tuple(a.name.lower() for a in sorted(Action))
_STATUSES: Final = tuple(s.label for s in sorted(Status))
_DIRECTIONS: Final = ("debit", "credit")


class LeafError(ValueError):
    """Bytes that are not a leaf this code can read."""


def _safe(text: str) -> bool:
    """Printable ASCII without quote or backslash is its own JSON string body."""
    return text.isascii() and text.isprintable() and '"' not in text and "\\" not in text


def _str(value: str | None) -> str:
    if value is None:
        return "null"
    return f'"{value}"' if _safe(value) else json.dumps(value)


def _int(value: int | None) -> str:
    return "null" if value is None else str(int(value))


# transfer_leaf's output for the bulk shape: a two-account transfer without legs, target,
# expiry, effective time or metadata, and its two entries. One formatting operation instead of
# a dozen; test_leaf checks it gives the same bytes as the general path.
_SIMPLE: Final = (
    '{"v":1,"type":"%s","transfer":{"id":"%s","ledger_id":"%s","action":"%s","status":"%s",'
    '"debit_account_id":"%s","credit_account_id":"%s","amount":%d,"legs":null,'
    '"target_id":null,"pending":%s,"timeout_s":%d,"expires_at":null,"effective_at":null,'
    '"metadata":null,"created_at":%d},"entries":[["%s",%d,"%s",%d,%d,%d,%d,%d,%d,%d],'
    '["%s",%d,"%s",%d,%d,%d,%d,%d,%d,%d]]}'
)


def transfer_leaf(event_type: str, row: TransferRow, entries: Sequence[EntryRow]) -> bytes:
    """The leaf of one ledger change: the transfer row as stored (after the change) and the
    entries it wrote."""
    if (
        len(entries) == 2
        and row[8] is None
        and row[9] is None
        and row[12] is None
        and row[13] is None
        and row[15] is None
        and row[5] is not None
        and row[6] is not None
    ):
        d, c = entries
        text = row[1] + row[2] + d[1] + c[1]
        if text.isascii() and text.isprintable() and '"' not in text and "\\" not in text:
            return (
                _SIMPLE
                % (
                    event_type,
                    row[1],
                    row[2],
                    _ACTIONS[row[3]],
                    _STATUSES[row[4]],
                    row[5],
                    row[6],
                    row[7],
                    "true" if row[10] else "false",
                    row[11],
                    row[14],
                    d[1],
                    d[2],
                    _DIRECTIONS[d[5]],
                    d[6],
                    d[7],
                    d[8],
                    d[9],
                    d[10],
                    d[11],
                    d[12],
                    c[1],
                    c[2],
                    _DIRECTIONS[c[5]],
                    c[6],
                    c[7],
                    c[8],
                    c[9],
                    c[10],
                    c[11],
                    c[12],
                )
            ).encode()
    return _general(event_type, row, entries)


def _general(event_type: str, row: TransferRow, entries: Sequence[EntryRow]) -> bytes:
    (
        _seq,
        tid,
        ledger_id,
        action,
        status,
        debit,
        credit,
        amount,
        legs,
        target,
        pending,
        timeout_s,
        expires_at,
        metadata,
        created_at,
        effective_at,
    ) = row
    ids = tid + ledger_id + (debit or "") + (credit or "") + (target or "")
    if _safe(ids):
        head = (
            f'{{"v":1,"type":"{event_type}","transfer":{{"id":"{tid}","ledger_id":"{ledger_id}",'
            f'"action":"{_ACTIONS[action]}","status":"{_STATUSES[status]}",'
            f'"debit_account_id":{"null" if debit is None else chr(34) + debit + chr(34)},'
            f'"credit_account_id":{"null" if credit is None else chr(34) + credit + chr(34)},'
            f'"amount":{amount},"legs":{"null" if legs is None else legs},'
            f'"target_id":{"null" if target is None else chr(34) + target + chr(34)},'
        )
    else:
        head = (
            f'{{"v":1,"type":{_str(event_type)},"transfer":{{"id":{_str(tid)},'
            f'"ledger_id":{_str(ledger_id)},"action":"{_ACTIONS[action]}",'
            f'"status":"{_STATUSES[status]}","debit_account_id":{_str(debit)},'
            f'"credit_account_id":{_str(credit)},"amount":{amount},'
            f'"legs":{"null" if legs is None else legs},"target_id":{_str(target)},'
        )
    tail = (
        f'"pending":{"true" if pending else "false"},"timeout_s":{timeout_s},'
        f'"expires_at":{_int(expires_at)},"effective_at":{_int(effective_at)},'
        f'"metadata":{"null" if metadata is None else metadata},"created_at":{created_at}}},'
        f'"entries":[{",".join([_entry(e) for e in entries])}]}}'
    )
    return (head + tail).encode()


def _entry(e: EntryRow) -> str:
    account = e[1] if _safe(e[1]) else None
    return (
        f"[{_str(e[1]) if account is None else chr(34) + account + chr(34)},{e[2]},"
        f'"{_DIRECTIONS[e[5]]}",{e[6]},{e[7]},{e[8]},{e[9]},{e[10]},{e[11]},{e[12]}]'
    )


def record_leaf(event_type: str, at_us: int, actor: str, data: Mapping[str, Any]) -> bytes:
    """The leaf of an action outside the ledger (a key created, an endpoint deleted, a key
    rotation). `data` holds no secret: it is what the log proves forever."""
    body = json.dumps(dict(data), sort_keys=True, separators=(",", ":"), allow_nan=False)
    return (
        f'{{"v":1,"type":{_str(event_type)},"at":{int(at_us)},"actor":{_str(actor)},"data":{body}}}'
    ).encode()


def parse(data: bytes) -> dict[str, Any]:
    """A leaf's content, for display and for the statement verifier."""
    try:
        value = json.loads(data)
    except (UnicodeDecodeError, ValueError) as exc:
        raise LeafError(f"a leaf is JSON text: {exc}") from None
    if not isinstance(value, dict) or value.get("v") != VERSION or "type" not in value:
        raise LeafError("not a version 1 leaf")
    return value
